// Helpers the other peft-ts packages, the trainer, benchmarks and tests share but users should not rely on:
// `@peft-ts/model-llama/internal` may change in any release. The public API is ./index.ts.
export { llamaHeadDimension } from './llama-config.js';
export { dynamicNtkBase, llamaRotaryFrequencies } from './llama-rope-scaling.js';
export { llamaDecoderConfig, llamaDefinition } from './llama-model.js';
