// Helpers the other peft-ts packages, the trainer, benchmarks and tests share but users should not rely on:
// `@peft-ts/model-common/internal` may change in any release. The public API is ./index.ts.
export { positionLimit, headDimensionOf, lineageDecoderFields, type LineageConfigFields } from './decoder-config.js';
export { checkHeadCounts, parseConfigJson, configFields, resolveKeyValueHeads } from './config-schema.js';
export { buildAttentionMask, FLOAT32_MIN, type AttentionMaskOptions } from './attention-mask.js';
export { applyRotary, type RotaryAngles } from './rotary-embedding.js';
export { groupedAttention } from './grouped-attention.js';
export { maskedSoftmax } from './masked-softmax.js';
export { swiGlu } from './swiglu.js';
export type { AttentionContext } from './decoder-attention.js';
export { initialParameterValue } from './causal-lm.js';
export { selectNextToken, type TokenSelectionSettings } from './next-token-selection.js';
