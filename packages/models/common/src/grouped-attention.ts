import * as tf from '@tensorflow/tfjs-core';
import { hasFusedKernel, matMul, nextSeed, runFusedKernel } from '@peft-ts/core/internal';
import { fusableMask, maskedSoftmax } from './masked-softmax.js';

export type GroupedAttentionOptions = {
  /** Divisor of the scores, √d. */
  readonly scale: number;
  /** [1 or B, 1, T, keys] additive mask, or null. */
  readonly mask: tf.Tensor | null;
  /** [B, heads, T, keys]: the per-head shape of the scores. */
  readonly perHead: number[];
  /** Dropout rate on the probabilities (training only; 0 for none). */
  readonly dropout: number;
};

/**
 * `softmax(Q·Kᵀ / scale + mask)·V` with query heads grouped per key-value head: query [B, kv, G·T, d], keys and
 * values [B, kv, keys, d] → [B, kv, G·T, d]. A backend with `PeftAttention` runs it as one kernel each way, which
 * never multiplies keys a whole block of queries cannot see (a causal mask halves the work) and keeps only the
 * probabilities for the gradient; dropout on the probabilities takes the composed path.
 */
export function groupedAttention(query: tf.Tensor4D, keys: tf.Tensor4D, values: tf.Tensor4D, options: GroupedAttentionOptions): tf.Tensor4D {
  const { scale, mask, perHead, dropout } = options;
  if (dropout > 0 || !fusableMask(mask, perHead) || !hasFusedKernel('PeftAttention')) {
    let probabilities = maskedSoftmax(matMul(query, keys, false, true), scale, mask, perHead);
    // Dropout is elementwise, so the grouped layout takes the same mask.
    if (dropout > 0) probabilities = tf.dropout(probabilities, dropout, undefined, nextSeed());
    return matMul(probabilities, values) as tf.Tensor4D;
  }
  const attrs = { scale, perHead };
  const run = tf.customGrad(((q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, save: (tensors: tf.Tensor[]) => void) => {
    const [output, probabilities] = runFusedKernel('PeftAttention', { query: q, keys: k, values: v, ...(mask && { mask }) }, attrs)!;
    // The mask too: the forward's scope disposes it before the gradient runs.
    save(mask ? [q, k, v, probabilities, mask] : [q, k, v, probabilities]);
    return {
      value: output,
      gradFunc: (dy: tf.Tensor, [savedQuery, savedKeys, savedValues, savedProbabilities, savedMask]: tf.Tensor[]) =>
        runFusedKernel(
          'PeftAttentionGrad',
          { dy, query: savedQuery, keys: savedKeys, values: savedValues, probabilities: savedProbabilities, ...(savedMask && { mask: savedMask }) },
          attrs,
        )!,
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor;
  return run(query, keys, values) as tf.Tensor4D;
}
