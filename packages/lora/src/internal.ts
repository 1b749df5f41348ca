// Helpers the other peft-ts packages, the trainer, benchmarks and tests share but users should not rely on:
// `@peft-ts/lora/internal` may change in any release. The public API is ./index.ts.
export { loraScaling } from './lora-layer.js';
export { initialLoraFactors } from './lora-linear.js';
export { PEFT_KEY_PREFIX } from './lora-model.js';
export { resolvePatternKey, resolveLayerSettings } from './resolve-layer-settings.js';
export {
  toPeftKey,
  fromPeftKey,
  adapterStateSources,
  halfStorage,
  readAdapterStateSource,
  describeAdapterLoad,
  type AdapterStateSource,
} from './adapter-state-dict.js';
export { adapterDirectory } from './adapter-io.js';
export { taskArithmetic, magnitudePrune, randomPrune, majoritySignMask, disjointMerge } from './merge-utils.js';
export { addWeightedAdapter, quantile } from './weighted-adapter.js';
export { loftqLayerError, loftqFactors, splitLowRank, type LoftqSettings, type LoftqFactors } from './loftq.js';
