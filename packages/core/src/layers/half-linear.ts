import * as tf from '@tensorflow/tfjs-core';
import { brandClass } from '@peft-ts/config/internal';
import { PeftError } from '../errors.js';
import { matMul } from '../matmul.js';
import { Module } from '../module.js';
import { Parameter } from '../parameter.js';
import type { LinearLike, WeightAccess } from '../weight-access.js';
import { Linear, packedLinearForward } from './linear.js';
import { HalfWeight, halfWordsParameter, narrowToHalfBits, type HalfDtype, type HalfMatrix, type HalfWords } from './half-storage.js';

type CustomGradFunction = Parameters<typeof tf.customGrad>[0];

/** Largest float32 weight tile a product widens at once (64 MiB): a large head never exists whole in float. */
const MAX_WIDENED_ELEMENTS = 2 ** 24;

/** [start, count] ranges of whole rows, each at most `maxElements` values (at least one row). */
function rowTiles(rows: number, columns: number, maxElements: number): [number, number][] {
  const rowsPerTile = Math.max(1, Math.floor(maxElements / Math.max(columns, 1)));
  const tiles: [number, number][] = [];
  for (let start = 0; start < rows; start += rowsPerTile) tiles.push([start, Math.min(rowsPerTile, rows - start)]);
  return tiles.length ? tiles : [[0, 0]];
}

export type HalfLinearOptions = {
  /** float32 [out]; the layer keeps its own reference. */
  readonly bias?: tf.Tensor | null;
  /** A bias parameter to share (a replica). */
  readonly biasParameter?: Parameter | null;
  /** Most weight values a product widens at once; larger weights are multiplied in tiles of whole rows. */
  readonly maxWidenedElements?: number;
};

/**
 * A frozen Linear whose weight is float16 or bfloat16 (a half checkpoint loaded without widening): 2 bytes a
 * parameter, as int32 words. Each product widens the weight exactly to float32, multiplies, and frees it (in tiles
 * of whole rows for a weight above `maxWidenedElements`); the backward widens it again rather than keeping the
 * float weight alive until then. The gradient reaches the input
 * only (the weight is frozen; adapters train beside it). Merging rounds as torch does into a half weight.
 */
export class HalfLinear extends Module implements LinearLike {
  static {
    brandClass(this, '@peft-ts/core:HalfLinear');
  }

  readonly kind = 'linear' as const;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weightAccess: WeightAccess;
  readonly storage: HalfWeight;
  private readonly project: (input: tf.Tensor) => tf.Tensor;
  private readonly maxWidenedElements: number | undefined;

  /** Rounds a float32 [out, in] weight to `dtype` (to nearest even); reads it back synchronously (cpu, wasm). */
  static fromWeight(weight: tf.Tensor, dtype: HalfDtype, options: HalfLinearOptions = {}): HalfLinear {
    if (weight.rank !== 2) throw new PeftError(`HalfLinear: the weight must be [out, in], got [${weight.shape}]`);
    const [rows, columns] = weight.shape as [number, number];
    return new HalfLinear({ dtype, rows, columns, bits: narrowToHalfBits(weight.dataSync() as Float32Array, dtype) }, options);
  }

  /** Wraps half patterns [out, in], or words already held (tied embeddings, replicas share the parameter). */
  constructor(source: HalfMatrix | HalfWords, options: HalfLinearOptions = {}) {
    super();
    const { dtype, rows, columns } = source;
    [this.outFeatures, this.inFeatures] = [rows, columns];
    this.storage = new HalfWeight(dtype, rows, columns, () => this.parameter('weight'));
    const { bias = null, biasParameter = null } = options;
    this.maxWidenedElements = options.maxWidenedElements;
    if (bias && (bias.rank !== 1 || bias.shape[0] !== this.outFeatures)) {
      throw new PeftError(`HalfLinear: bias must be [${this.outFeatures}], got [${bias.shape}]`);
    }
    this.registerParameter('weight', 'parameter' in source ? source.parameter : halfWordsParameter(source));
    this.registerParameter('bias', biasParameter ?? (bias ? new Parameter(bias) : null));
    this.weightAccess = {
      supportsMerge: true,
      getBaseWeight: () => this.storage.widen(),
      setBaseWeight: (weight) => this.storage.merge(weight),
    };
    const tiles = rowTiles(rows, columns, options.maxWidenedElements ?? MAX_WIDENED_ELEMENTS);
    // Each tile's float rows live only for their own product.
    const tileWeight = ([start, count]: [number, number]) => (tiles.length === 1 ? this.storage.widen() : this.storage.widenRowRange(start, count));
    this.project = tf.customGrad(((input: tf.Tensor) => ({
      value: tf.tidy(() => {
        const flat = tf.reshape(input, [-1, this.inFeatures]);
        const parts = tiles.map((tile) => tf.tidy(() => matMul(flat, tileWeight(tile), false, true)));
        return tf.reshape(parts.length === 1 ? parts[0]! : tf.concat(parts, 1), [...input.shape.slice(0, -1), this.outFeatures]);
      }),
      gradFunc: (dy: tf.Tensor) =>
        tf.tidy(() => {
          const flat = tf.reshape(dy, [-1, this.outFeatures]);
          const parts = tiles.map((tile) =>
            tf.tidy(() => matMul(tiles.length === 1 ? flat : tf.slice(flat, [0, tile[0]], [-1, tile[1]]), tileWeight(tile))),
          );
          return tf.reshape(parts.length === 1 ? parts[0]! : tf.addN(parts), input.shape);
        }),
    })) as unknown as CustomGradFunction) as (input: tf.Tensor) => tf.Tensor;
  }

  get dtype(): HalfDtype {
    return this.storage.dtype;
  }

  get bias(): Parameter | null {
    return this.hasParameter('bias') ? this.parameter('bias') : null;
  }

  forward(input: tf.Tensor): tf.Tensor {
    return packedLinearForward('HalfLinear', this, input, this.project);
  }

  /** A replica over the same stored words (layer replication): no weight memory is added. */
  cloneSharingParameters(): HalfLinear {
    const clone = new HalfLinear(this.words(), { biasParameter: this.bias, maxWidenedElements: this.maxWidenedElements });
    clone.training = this.training;
    return clone;
  }

  /**
   * A trainable float32 copy (a `modules_to_save` copy): torch's deep copy of a half module trains in its dtype,
   * which tfjs has no kernels for, so the copy is widened.
   */
  deepCopy(): Linear {
    const copy = new Linear(this.inFeatures, this.outFeatures, { bias: this.bias !== null, meta: true });
    const weight = this.storage.widen();
    copy.weight.set(weight);
    weight.dispose();
    if (this.bias) copy.bias!.set(this.bias.value);
    copy.training = this.training;
    return copy;
  }

  /** The stored words with their layout, for a module sharing them. */
  words(): HalfWords {
    return { dtype: this.dtype, rows: this.outFeatures, columns: this.inFeatures, parameter: this.parameter('weight') };
  }
}
