import * as tf from '@tensorflow/tfjs-core';
import { brandClass } from '@peft-ts/config/internal';
import { Module } from '../module.js';
import { Parameter } from '../parameter.js';
import { nextSeed } from '../random.js';
import { parameterWeightAccess, type WeightAccess } from '../weight-access.js';

export type EmbeddingOptions = { paddingIndex?: number | null; meta?: boolean };

/** Lookup table [numEmbeddings, embeddingDim]; input is int32 ids of any shape. */
export class Embedding extends Module {
  static {
    brandClass(this, '@peft-ts/core:Embedding');
  }

  readonly kind = 'embedding' as const;
  readonly paddingIndex: number | null;
  readonly weightAccess: WeightAccess = parameterWeightAccess(() => this.weight);

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    options: EmbeddingOptions = {},
  ) {
    super();
    this.paddingIndex = options.paddingIndex ?? null;
    const shape = [numEmbeddings, embeddingDim];
    if (options.meta) {
      this.registerParameter('weight', Parameter.meta(shape));
    } else {
      const init = tf.tidy(() => {
        const normal = tf.randomNormal(shape, 0, 1, 'float32', nextSeed());
        if (this.paddingIndex === null) return normal;
        // PyTorch zeroes the padding row at init.
        const keep = tf.reshape(tf.oneHot(tf.scalar(this.paddingIndex, 'int32'), numEmbeddings), [numEmbeddings, 1]);
        return tf.mul(normal, tf.sub(1, keep));
      });
      this.registerParameter('weight', new Parameter(init));
      init.dispose();
    }
  }

  get weight(): Parameter {
    return this.parameter('weight');
  }

  forward(ids: tf.Tensor): tf.Tensor {
    return embeddingLookup(this.weight.value, ids);
  }
}

/** `table[ids]` for ids of any shape: result shape [...ids.shape, dim]. */
export function embeddingLookup(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const flat = tf.gather(table, ids.rank === 1 ? ids : tf.reshape(ids, [-1]));
    return ids.rank === 1 ? flat : tf.reshape(flat, [...ids.shape, table.shape[1]!]);
  });
}
