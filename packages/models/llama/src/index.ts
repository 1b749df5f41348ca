// The public API. What the other peft-ts packages, the trainer and the tests share beyond it is exported by
// ./internal.ts as `@peft-ts/model-llama/internal`, with no semver promise.
export {
  parseLlamaConfig,
  LlamaConfigError,
  type LlamaRopeScaling,
  llamaConfigSchema,
  type LlamaConfig,
  type LlamaConfigInput,
} from './llama-config.js';
export { LlamaForCausalLM } from './llama-model.js';
export { readLlamaConfig, loadLlama, type LoadLlamaOptions } from './load-llama.js';
export { saveLlama } from './save-llama.js';
export { randomLlama } from './random-llama.js';
export { llama2_7bConfig, tinyLlamaConfig } from './llama-presets.js';
export { llamaFamily } from './llama-family.js';
