import * as tf from '@tensorflow/tfjs-core';
import { brandClass } from '@peft-ts/config/internal';
import type { WeightAccess } from '../weight-access.js';
import { Embedding } from './embedding.js';
import { HalfWeight, halfWordsParameter, type HalfDtype, type HalfMatrix, type HalfWords } from './half-storage.js';

/**
 * A frozen Embedding whose table is float16 or bfloat16, 2 bytes a value in int32 words: a lookup gathers the
 * rows' words and widens only those. It is an `Embedding` (LoRA wraps it as one); its `weight` parameter holds the
 * words, so the float table is reached through `weightAccess`.
 */
export class HalfEmbedding extends Embedding {
  static {
    brandClass(this, '@peft-ts/core:HalfEmbedding');
  }

  override readonly weightAccess: WeightAccess;
  readonly storage: HalfWeight;

  constructor(source: HalfMatrix | HalfWords, options: { readonly paddingIndex?: number | null } = {}) {
    super(source.rows, source.columns, { paddingIndex: options.paddingIndex, meta: true });
    this.storage = new HalfWeight(source.dtype, source.rows, source.columns, () => this.parameter('weight'));
    this.setParameter('weight', 'parameter' in source ? source.parameter : halfWordsParameter(source));
    this.weightAccess = {
      supportsMerge: true,
      getBaseWeight: () => this.storage.widen(),
      setBaseWeight: (weight) => this.storage.merge(weight),
    };
  }

  get dtype(): HalfDtype {
    return this.storage.dtype;
  }

  override forward(ids: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const rows = this.storage.widenRows(tf.reshape(tf.cast(ids, 'int32'), [-1]) as tf.Tensor1D);
      return tf.reshape(rows, [...ids.shape, this.embeddingDim]);
    });
  }

  cloneSharingParameters(): HalfEmbedding {
    const clone = new HalfEmbedding(this.words(), { paddingIndex: this.paddingIndex });
    clone.training = this.training;
    return clone;
  }

  /** A trainable float32 copy (a `modules_to_save` copy; see `HalfLinear.deepCopy`). */
  deepCopy(): Embedding {
    const copy = new Embedding(this.numEmbeddings, this.embeddingDim, { paddingIndex: this.paddingIndex, meta: true });
    const weight = this.storage.widen();
    copy.weight.set(weight);
    weight.dispose();
    copy.training = this.training;
    return copy;
  }

  /** The stored words with their layout, for a module sharing them (a tied head). */
  words(): HalfWords {
    return { dtype: this.dtype, rows: this.numEmbeddings, columns: this.embeddingDim, parameter: this.parameter('weight') };
  }
}
