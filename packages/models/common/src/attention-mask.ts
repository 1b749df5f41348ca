import * as tf from '@tensorflow/tfjs-core';
import { PeftError } from '@peft-ts/core';

/** torch.finfo(torch.float32).min: the value transformers writes into masked score slots (not −inf). */
export const FLOAT32_MIN = -3.4028234663852886e38;

export type AttentionMaskOptions = {
  readonly batchSize: number;
  readonly queryLength: number;
  /** Absolute position of the first query (tokens already processed). */
  readonly pastLength: number;
  /** Absolute position of the first key held (later than 0 once a sliding-window cache has dropped keys). */
  readonly keyStart?: number;
  /**
   * Padding mask [batch, pastLength + queryLength] over absolute positions: non-zero keep, 0 padding. Combined on the
   * device, so it may be a tensor computed there (device backends cannot read it back synchronously).
   */
  readonly paddingMask?: tf.Tensor | null;
  readonly slidingWindow: number | null;
};

/**
 * transformers 4.39's eager 4-D additive mask, [batch or 1, 1, T, keys]: 0 where query i may see key j, float32 min
 * elsewhere. Key j is visible iff j ≤ i, j is not padding, and (with a window W) j ≥ i − W — that version's
 * `tril(diagonal = past − W − 1)` gives W+1 keys, self included. A fully masked (padding) query row holds float32 min
 * everywhere, so its softmax is uniform, as in transformers. Returns null when nothing is masked; with a padding mask
 * that is not known without reading it, so a (possibly all-zero) mask is returned, which adds nothing to the scores.
 */
export function buildAttentionMask(options: AttentionMaskOptions): tf.Tensor4D | null {
  const { batchSize, queryLength, pastLength, paddingMask, slidingWindow } = options;
  const keyStart = options.keyStart ?? 0;
  const totalLength = pastLength + queryLength;
  const keyLength = totalLength - keyStart;
  if (paddingMask && paddingMask.size !== batchSize * totalLength) {
    throw new PeftError(`attentionMask: expected shape [${batchSize}, ${totalLength}] (past + new tokens), got [${paddingMask.shape}]`);
  }
  // Causality and the window depend on positions only, known here.
  const positionallyVisible = new Uint8Array(queryLength * keyLength);
  let anyHidden = false;
  for (let query = 0; query < queryLength; query++) {
    const position = pastLength + query;
    for (let column = 0; column < keyLength; column++) {
      const key = keyStart + column;
      const visible = key <= position && (slidingWindow === null || key >= position - slidingWindow);
      positionallyVisible[query * keyLength + column] = visible ? 1 : 0;
      anyHidden ||= !visible;
    }
  }
  if (!paddingMask && !anyHidden) return null;
  return tf.tidy(() => {
    let visible = tf.tensor4d(positionallyVisible, [1, 1, queryLength, keyLength], 'bool');
    if (paddingMask) {
      const keys = tf.slice(tf.reshape(paddingMask, [batchSize, totalLength]), [0, keyStart], [batchSize, keyLength]);
      visible = tf.logicalAnd(visible, tf.reshape(tf.notEqual(keys, 0), [batchSize, 1, 1, keyLength]));
    }
    return tf.where<tf.Tensor4D>(visible, 0, FLOAT32_MIN);
  });
}
