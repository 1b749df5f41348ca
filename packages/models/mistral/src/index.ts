// The public API. What the other peft-ts packages, the trainer and the tests share beyond it is exported by
// ./internal.ts as `@peft-ts/model-mistral/internal`, with no semver promise.
// What moved to @peft-ts/model-common (generation, the decoder blocks, checkpoints, the tokenizer) stays importable
// from here: its main entry, so none of its internals.
export * from '@peft-ts/model-common';
export {
  parseMistralConfig,
  MistralConfigError,
  mistralConfigSchema,
  type MistralConfig,
  type MistralConfigInput,
} from './mistral-config.js';
export {
  type MistralForCausalLMOptions,
  type MistralCausalInput,
  type MistralCausalOutput,
  MistralForCausalLM,
} from './mistral-model.js';
export { readMistralConfig, loadMistral, type LoadMistralOptions } from './load-mistral.js';
export { saveMistral, type SaveMistralOptions } from './save-mistral.js';
export { mistral7bV01Config } from './mistral-presets.js';
export { randomMistral, type RandomMistralOptions } from './random-mistral.js';
export { mistralFamily } from './mistral-family.js';
export {
  MistralTokenizer,
  MistralAttention,
  MistralMLP,
  MistralDecoderLayer,
  MistralTransformer,
  type MistralForwardInput,
} from './deprecated-names.js';
