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
  /** 2-D padding mask [batch, pastLength + queryLength] over absolute positions: 1 keep, 0 padding. */
  readonly paddingMask?: ArrayLike<number> | null;
  readonly slidingWindow: number | null;
};

/**
 * transformers 4.39's eager 4-D additive mask, [batch, 1, T, keys]: 0 where query i may see key j, float32 min
 * elsewhere. Key j is visible iff j ≤ i, j is not padding, and (with a window W) j ≥ i − W — that version's
 * `tril(diagonal = past − W − 1)` gives W+1 keys, self included. A fully masked (padding) query row holds float32 min
 * everywhere, so its softmax is uniform, as in transformers. Returns null when nothing is masked.
 */
export function buildAttentionMask(options: AttentionMaskOptions): tf.Tensor4D | null {
  const { batchSize, queryLength, pastLength, paddingMask, slidingWindow } = options;
  const keyStart = options.keyStart ?? 0;
  const totalLength = pastLength + queryLength;
  const keyLength = totalLength - keyStart;
  if (paddingMask && paddingMask.length !== batchSize * totalLength) {
    throw new PeftError(
      `attention mask: expected ${batchSize}×${totalLength} entries (past ${pastLength} + ${queryLength} new tokens), got ${paddingMask.length}`,
    );
  }
  const rows = paddingMask ? batchSize : 1;
  const values = new Float32Array(rows * queryLength * keyLength);
  let anyMasked = false;
  for (let row = 0; row < rows; row++) {
    for (let query = 0; query < queryLength; query++) {
      const position = pastLength + query;
      const offset = (row * queryLength + query) * keyLength;
      for (let column = 0; column < keyLength; column++) {
        const key = keyStart + column;
        const visible =
          key <= position &&
          (slidingWindow === null || key >= position - slidingWindow) &&
          (!paddingMask || paddingMask[row * totalLength + key] !== 0);
        if (!visible) {
          values[offset + column] = FLOAT32_MIN;
          anyMasked = true;
        }
      }
    }
  }
  return anyMasked ? tf.tensor4d(values, [rows, 1, queryLength, keyLength]) : null;
}
