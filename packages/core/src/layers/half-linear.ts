import * as tf from '@tensorflow/tfjs-core';
import { PeftError } from '../errors.js';
import { matMul } from '../matmul.js';
import { Module } from '../module.js';
import { Parameter } from '../parameter.js';
import type { LinearLike, WeightAccess } from '../weight-access.js';
import { Linear } from './linear.js';
import { HalfWeight, halfWordsParameter, narrowToHalfBits, type HalfDtype, type HalfMatrix, type HalfWords } from './half-storage.js';

type CustomGradFunction = Parameters<typeof tf.customGrad>[0];

/**
 * A frozen Linear whose weight is float16 or bfloat16 (a half checkpoint loaded without widening): 2 bytes a
 * parameter, as int32 words. Each product widens the weight exactly to float32, multiplies, and frees it; the
 * backward widens it again rather than keeping the float weight alive until then. The gradient reaches the input
 * only (the weight is frozen; adapters train beside it). Merging rounds as torch does into a half weight.
 */
export class HalfLinear extends Module implements LinearLike {
  readonly kind = 'linear' as const;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weightAccess: WeightAccess;
  readonly storage: HalfWeight;
  private readonly project: (input: tf.Tensor) => tf.Tensor;

  /** Rounds a float32 [out, in] weight to `dtype` (to nearest even); reads it back synchronously (cpu, wasm). */
  static fromWeight(weight: tf.Tensor, dtype: HalfDtype, options: { readonly bias?: tf.Tensor | null } = {}): HalfLinear {
    if (weight.rank !== 2) throw new PeftError(`HalfLinear: the weight must be [out, in], got [${weight.shape}]`);
    const [rows, columns] = weight.shape as [number, number];
    return new HalfLinear({ dtype, rows, columns, bits: narrowToHalfBits(weight.dataSync() as Float32Array, dtype) }, options);
  }

  /** Wraps half patterns [out, in], or words already held (tied embeddings, replicas share the parameter). */
  constructor(source: HalfMatrix | HalfWords, options: { readonly bias?: tf.Tensor | null; readonly biasParameter?: Parameter | null } = {}) {
    super();
    const { dtype, rows, columns } = source;
    [this.outFeatures, this.inFeatures] = [rows, columns];
    this.storage = new HalfWeight(dtype, rows, columns, () => this.parameter('weight'));
    const { bias = null, biasParameter = null } = options;
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
    this.project = tf.customGrad(((input: tf.Tensor) => ({
      value: tf.tidy(() => {
        const flat = tf.reshape(input, [-1, this.inFeatures]);
        return tf.reshape(matMul(flat, this.storage.widen(), false, true), [...input.shape.slice(0, -1), this.outFeatures]);
      }),
      gradFunc: (dy: tf.Tensor) => tf.tidy(() => tf.reshape(matMul(tf.reshape(dy, [-1, this.outFeatures]), this.storage.widen()), input.shape)),
    })) as unknown as CustomGradFunction) as (input: tf.Tensor) => tf.Tensor;
  }

  get dtype(): HalfDtype {
    return this.storage.dtype;
  }

  get bias(): Parameter | null {
    return this.hasParameter('bias') ? this.parameter('bias') : null;
  }

  forward(input: tf.Tensor): tf.Tensor {
    if (input.shape[input.rank - 1] !== this.inFeatures) {
      throw new PeftError(`HalfLinear: input has ${input.shape[input.rank - 1]} features, the layer takes ${this.inFeatures}`);
    }
    return tf.tidy(() => {
      const output = this.project(input);
      return this.bias ? tf.add(output, this.bias.value) : output;
    });
  }

  /** A replica over the same stored words (layer replication): no weight memory is added. */
  cloneSharingParameters(): HalfLinear {
    const clone = new HalfLinear(this.words(), { biasParameter: this.bias });
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
