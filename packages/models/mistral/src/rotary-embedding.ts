import * as tf from '@tensorflow/tfjs-core';

/** cos and sign-folded sin rows for the positions of one forward, shaped [batch or 1, T, 1, headDim]. */
export type RotaryAngles = { readonly cos: tf.Tensor4D; readonly sin: tf.Tensor4D };

/**
 * Mistral's non-interleaved ("rotate-half") rotary position embedding. Dims j and j + d/2 rotate together by
 * `p · inv_freq[j]`, `inv_freq[j] = 1 / θ^(2j/d)`, computed in float32 as transformers does.
 *
 * `rotate_half(x)·sin` equals `swapHalves(x)·sinSigned` with the first half of `sinSigned` negated, so the table keeps
 * that sign folded in and the per-call work is one reverse, two multiplies and an add. Tables grow on demand and are
 * kept (outside any tidy scope) until `dispose()`.
 */
export class RotaryEmbedding {
  private length = 0;
  private cosTable: tf.Tensor2D | null = null;
  private sinTable: tf.Tensor2D | null = null;

  constructor(
    readonly headDimension: number,
    readonly theta: number,
  ) {}

  /** `inv_freq` as float32 values, rounded step by step like torch's float32 arithmetic. */
  inverseFrequencies(): Float32Array {
    const half = this.headDimension / 2;
    const result = new Float32Array(half);
    for (let index = 0; index < half; index++) {
      const exponent = Math.fround((2 * index) / this.headDimension);
      result[index] = Math.fround(1 / Math.fround(Math.pow(this.theta, exponent)));
    }
    return result;
  }

  /** Angles for positions `start … start+T−1`, shared by every row of the batch. */
  range(start: number, length: number): RotaryAngles {
    this.ensureLength(start + length);
    return tf.tidy(() => {
      const shape: [number, number, number, number] = [1, length, 1, this.headDimension];
      return {
        cos: tf.reshape(tf.slice(this.cosTable!, [start, 0], [length, -1]), shape) as tf.Tensor4D,
        sin: tf.reshape(tf.slice(this.sinTable!, [start, 0], [length, -1]), shape) as tf.Tensor4D,
      };
    });
  }

  /** Angles for explicit positions [B, T] (left-padded batches during generation). */
  gather(positions: Int32Array, batch: number, length: number): RotaryAngles {
    let largest = 0;
    for (const position of positions) largest = Math.max(largest, position);
    this.ensureLength(largest + 1);
    return tf.tidy(() => {
      const indices = tf.tensor1d(positions, 'int32');
      const shape: [number, number, number, number] = [batch, length, 1, this.headDimension];
      return {
        cos: tf.reshape(tf.gather(this.cosTable!, indices), shape) as tf.Tensor4D,
        sin: tf.reshape(tf.gather(this.sinTable!, indices), shape) as tf.Tensor4D,
      };
    });
  }

  private ensureLength(needed: number): void {
    if (needed <= this.length) return;
    // Grow geometrically so step-by-step generation does not rebuild the table every token.
    const length = Math.max(needed, 2 * this.length, 64);
    const dimension = this.headDimension;
    const half = dimension / 2;
    const inverse = this.inverseFrequencies();
    const cos = new Float32Array(length * dimension);
    const sin = new Float32Array(length * dimension);
    for (let position = 0; position < length; position++) {
      for (let index = 0; index < half; index++) {
        const angle = Math.fround(position * inverse[index]);
        const cosine = Math.cos(angle);
        const sine = Math.sin(angle);
        const row = position * dimension;
        cos[row + index] = cosine;
        cos[row + half + index] = cosine;
        sin[row + index] = -sine;
        sin[row + half + index] = sine;
      }
    }
    this.dispose();
    this.cosTable = tf.keep(tf.tensor2d(cos, [length, dimension]));
    this.sinTable = tf.keep(tf.tensor2d(sin, [length, dimension]));
    this.length = length;
  }

  dispose(): void {
    this.cosTable?.dispose();
    this.sinTable?.dispose();
    this.cosTable = null;
    this.sinTable = null;
    this.length = 0;
  }
}

/** `x·cos + rotate_half(x)·sin` for x of shape [B, T, heads, headDim]. */
export function applyRotary(input: tf.Tensor4D, angles: RotaryAngles): tf.Tensor4D {
  return tf.tidy(() => {
    const [batch, length, heads, dimension] = input.shape;
    // Reversing the size-2 axis of [.., 2, d/2] swaps the halves in one op.
    const swapped = tf.reshape(tf.reverse(tf.reshape(input, [batch, length, heads, 2, dimension / 2]), 3), input.shape);
    return tf.add(tf.mul(input, angles.cos), tf.mul(swapped, angles.sin)) as tf.Tensor4D;
  });
}
