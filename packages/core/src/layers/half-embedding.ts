import * as tf from '@tensorflow/tfjs-core';
import type { WeightAccess } from '../weight-access.js';
import { Embedding } from './embedding.js';
import { HalfWeight, type HalfDtype, type HalfMatrix } from './half-storage.js';

/**
 * A frozen Embedding whose table is float16 or bfloat16, 2 bytes a value in int32 words: a lookup gathers the
 * rows' words and widens only those. It is an `Embedding` (LoRA wraps it as one); its `weight` parameter holds the
 * words, so the float table is reached through `weightAccess`.
 */
export class HalfEmbedding extends Embedding {
  override readonly weightAccess: WeightAccess;
  readonly storage: HalfWeight;

  constructor(source: HalfMatrix | HalfWeight, options: { readonly paddingIndex?: number | null } = {}) {
    const storage = source instanceof HalfWeight ? source : HalfWeight.fromMatrix(source);
    super(storage.rows, storage.columns, { paddingIndex: options.paddingIndex, meta: true });
    this.storage = storage;
    this.setParameter('weight', storage.parameter);
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
    const clone = new HalfEmbedding(HalfWeight.sharing(this.storage, this.parameter('weight')), { paddingIndex: this.paddingIndex });
    clone.training = this.training;
    return clone;
  }
}
