// The public API. What the other peft-ts packages, the trainer and the tests share beyond it is exported by
// ./internal.ts as `@peft-ts/model-common/internal`, with no semver promise.
export type { DecoderConfig, DecoderVariant } from './decoder-config.js';
export { ModelConfigError } from './config-schema.js';
export { type RotaryFrequencies, defaultRotaryFrequencies, RotaryEmbedding } from './rotary-embedding.js';
export { KeyValueCache } from './key-value-cache.js';
export { causalLanguageModelLoss, IGNORE_INDEX } from './causal-language-model-loss.js';
export { DecoderAttention } from './decoder-attention.js';
export { SwiGluMlp } from './swiglu-mlp.js';
export { TransformerDecoderLayer } from './decoder-layer.js';
export { type DecoderForwardInput, DecoderStack } from './decoder-stack.js';
export {
  type FamilyConfig,
  type CausalLmDefinition,
  type CausalLmOptions,
  type CausalLmInput,
  type CausalLmOutput,
  DecoderForCausalLM,
} from './causal-lm.js';
export { decoderLinearWeightCount, type CausalLmFamily } from './causal-lm-family.js';
export {
  readConfigFile,
  loadCausalLm,
  type LinearWeightContext,
  type LoadCheckpointOptions,
  ConfigFileError,
} from './load-checkpoint.js';
export { saveCausalLm, type SaveCheckpointOptions } from './save-checkpoint.js';
export { randomCausalLm, type RandomCausalLmOptions } from './random-causal-lm.js';
export { generate, type GenerationOptions, GenerationError, type GenerationResult } from './generate.js';
export {
  TokenizerError,
  type ChatMessage,
  type ChatTemplateOptions,
  type TokenizerFiles,
  HfTokenizer,
} from './hf-tokenizer.js';
export { loadTokenizer } from './load-tokenizer.js';
