// The public API. What the other peft-ts packages, the trainer and the tests share beyond it is exported by
// ./internal.ts as `@peft-ts/lora/internal`, with no semver promise.
export { type InitLoraWeights, type LoraAdapterSettings, type LoraVariant, LoraLayer } from './lora-layer.js';
export { LoraLinear } from './lora-linear.js';
export { LoraEmbedding } from './lora-embedding.js';
export { LoraConv2d } from './lora-conv2d.js';
export {
  registerLoraVariant,
  createLoraMethod,
  type LoraVariantsByKind,
  type DoraVariants,
  type LoraVariantName,
  loraMethod,
} from './lora-method.js';
export { type LoraModelOptions, LoraModel } from './lora-model.js';
export { adapterStateDict, loadAdapterStateDict, type AdapterLoadResult } from './adapter-state-dict.js';
export {
  saveAdapter,
  readAdapterConfig,
  loadLoraModel,
  loadAdapter,
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type AutoMappingSource,
  type LoadAdapterOptions,
} from './adapter-io.js';
/** Moved to core with the rest of the generic adapter machinery; still exported here for existing imports. */
export { ModulesToSaveWrapper } from '@peft-ts/core';
export { mergeTaskTensors, type MajoritySignMethod, type MergeRule, type MergeRuleOptions } from './merge-utils.js';
export { combinationTypes, type CombinationType, type WeightedAdapterOptions } from './weighted-adapter.js';
export { replaceLoraWeightsLoftq, type ReplaceLoraWeightsLoftqOptions } from './replace-lora-weights-loftq.js';
