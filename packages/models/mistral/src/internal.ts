// Helpers the other peft-ts packages, the trainer, benchmarks and tests share but users should not rely on:
// `@peft-ts/model-mistral/internal` may change in any release. The public API is ./index.ts.
export { headDimension } from './mistral-config.js';
export { mistralDecoderConfig, mistralDefinition } from './mistral-model.js';
export { smallBenchmarkConfig } from './mistral-presets.js';
