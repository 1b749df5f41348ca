import * as tf from '@tensorflow/tfjs-core';
import { PeftError } from '@peft-ts/core';
import { runFusedKernel } from '@peft-ts/core/internal';

/** cos and sign-folded sin rows for the positions of one forward, shaped [batch or 1, T, 1, headDim]. */
export type RotaryAngles = { readonly cos: tf.Tensor4D; readonly sin: tf.Tensor4D };

/**
 * The `headDim / 2` inverse frequencies for a forward that covers `positions` positions (past + new). A family with
 * scaled RoPE supplies its own (Llama's `rope_scaling`: linear divides them by the factor, dynamic NTK raises θ once
 * `positions` passes the trained length); the table is rebuilt whenever the values change.
 */
export type RotaryFrequencies = (request: { readonly headDimension: number; readonly theta: number; readonly positions: number }) => Float32Array;

/** `inv_freq[j] = 1 / θ^(2j/d)` as float32 values, rounded step by step like torch's float32 arithmetic. */
export const defaultRotaryFrequencies: RotaryFrequencies = ({ headDimension, theta }) => {
  const half = headDimension / 2;
  const result = new Float32Array(half);
  for (let index = 0; index < half; index++) {
    const exponent = Math.fround((2 * index) / headDimension);
    result[index] = Math.fround(1 / Math.fround(Math.pow(theta, exponent)));
  }
  return result;
};

/**
 * Non-interleaved ("rotate-half") rotary position embedding, as Llama and Mistral use it. Dims j and j + d/2 rotate
 * together by `p · inv_freq[j]` (see `RotaryFrequencies`), computed in float32 as transformers does.
 *
 * `rotate_half(x)·sin` equals `swapHalves(x)·sinSigned` with the first half of `sinSigned` negated, so the table keeps
 * that sign folded in and the per-call work is one swap of halves, two multiplies and an add. Tables grow on demand and are
 * kept (outside any tidy scope) until `dispose()`.
 */
export class RotaryEmbedding {
  private length = 0;
  private cosTable: tf.Tensor2D | null = null;
  private sinTable: tf.Tensor2D | null = null;
  private tableFrequencies: Float32Array | null = null;

  constructor(
    readonly headDimension: number,
    readonly theta: number,
    private readonly frequencies: RotaryFrequencies = defaultRotaryFrequencies,
  ) {}

  /** `inv_freq` for a forward covering `positions` positions (the default frequencies do not depend on it). */
  inverseFrequencies(positions = 0): Float32Array {
    const result = this.frequencies({ headDimension: this.headDimension, theta: this.theta, positions });
    if (result.length !== this.headDimension / 2) {
      throw new PeftError(`rotary frequencies: expected ${this.headDimension / 2} values (head dimension / 2), got ${result.length}`);
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

  /**
   * Angles for explicit positions [B, T] (left-padded batches during generation), looked up on the device: the
   * positions may have been computed there, where they cannot be read back synchronously. Positions must lie in
   * `[0, limit)`, as transformers 4.39 indexes a table of `past + T` rows; checking that would need a host read, so any
   * other position gets NaN angles (and NaN outputs) rather than a wrong rotation.
   */
  gather(positionIds: tf.Tensor, batch: number, length: number, limit: number): RotaryAngles {
    this.ensureLength(limit);
    return tf.tidy(() => {
      const positions = tf.cast(tf.reshape(positionIds, [-1]), 'int32');
      const inRange = tf.logicalAnd(tf.greaterEqual(positions, 0), tf.less(positions, limit));
      const indices = tf.where(inRange, positions, tf.zerosLike(positions));
      const outOfRange = tf.reshape(tf.where(inRange, 0, NaN), [-1, 1]);
      const shape: [number, number, number, number] = [batch, length, 1, this.headDimension];
      return {
        cos: tf.reshape(tf.add(tf.gather(this.cosTable!, indices), outOfRange), shape) as tf.Tensor4D,
        sin: tf.reshape(tf.add(tf.gather(this.sinTable!, indices), outOfRange), shape) as tf.Tensor4D,
      };
    });
  }

  private ensureLength(needed: number): void {
    const inverse = this.inverseFrequencies(needed);
    const sameFrequencies = this.tableFrequencies !== null && inverse.every((value, index) => value === this.tableFrequencies![index]);
    if (needed <= this.length && sameFrequencies) return;
    // Grow geometrically so step-by-step generation does not rebuild the table every token; new frequencies (dynamic
    // scaling past the trained length) rebuild it at its current size.
    const length = Math.max(needed, sameFrequencies ? 2 * this.length : this.length, 64);
    const dimension = this.headDimension;
    const half = dimension / 2;
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
    this.tableFrequencies = inverse;
  }

  dispose(): void {
    this.cosTable?.dispose();
    this.sinTable?.dispose();
    this.cosTable = null;
    this.sinTable = null;
    this.tableFrequencies = null;
    this.length = 0;
  }
}

/** `x·cos + rotate_half(x)·sin` for x of shape [B, T, heads, headDim]. */
export function applyRotary(input: tf.Tensor4D, angles: RotaryAngles): tf.Tensor4D {
  // A custom gradient (`dy·cos + swap(dy·sin)`: swapping halves is its own transpose) keeps nothing but the angles,
  // which it saves because the caller frees them once the forward is done. A backend with `PeftRotary` does either
  // direction in one pass.
  const rotate = tf.customGrad(((x: tf.Tensor4D, save: (tensors: tf.Tensor[]) => void) => {
    save([angles.cos, angles.sin]);
    const fused = runFusedKernel('PeftRotary', { x, cos: angles.cos, sin: angles.sin }, { transposed: false });
    return {
      value: fused ? fused[0] : tf.add(tf.mul(x, angles.cos), tf.mul(swapHalves(x), angles.sin)),
      gradFunc: (dy: tf.Tensor, [cos, sin]: tf.Tensor[]) =>
        tf.tidy(() => {
          const fusedGradient = runFusedKernel('PeftRotary', { x: dy, cos, sin }, { transposed: true });
          return fusedGradient ? fusedGradient[0] : tf.add(tf.mul(dy, cos), swapHalves(tf.mul(dy, sin)));
        }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor4D) => tf.Tensor4D;
  return tf.tidy(() => rotate(input));
}

/**
 * The two halves of the last axis swapped. Moving the half axis outermost makes each half one
 * contiguous block, so the swap is two block copies: with the transposes ~6× faster on wasm than
 * `reverse` on the size-2 axis, which that backend computes element by element.
 */
function swapHalves(input: tf.Tensor): tf.Tensor {
  const dimension = input.shape[input.rank - 1];
  const halvesOutermost = tf.transpose(tf.reshape(input, [-1, 2, dimension / 2]), [1, 0, 2]);
  const [first, second] = tf.split(halvesOutermost, 2, 0);
  return tf.reshape(tf.transpose(tf.concat([second, first], 0), [1, 0, 2]), input.shape);
}
