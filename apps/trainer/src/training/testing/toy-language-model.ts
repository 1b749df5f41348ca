import * as tf from '@tensorflow/tfjs-core';
import { Dropout, Embedding, Linear, Module, type NamedParameter } from '@peft-ts/core';
import { IGNORE_INDEX } from '../../data/tokenized-example.js';
import type { TensorBatch, TrainableModel } from '../trainable-model.js';

/** A tiny next-token model (embedding → dropout → linear head) for exercising the training loop on cpu. */
export class ToyLanguageModel extends Module implements TrainableModel {
  readonly kind = 'toy_language_model';

  constructor(vocabularySize: number, hiddenSize: number, dropout: number) {
    super();
    this.registerModule('embed_tokens', new Embedding(vocabularySize, hiddenSize));
    this.registerModule('dropout', new Dropout(dropout));
    this.registerModule('lm_head', new Linear(hiddenSize, vocabularySize));
  }

  trainableParameters(): NamedParameter[] {
    return this.namedParameters().filter(([, parameter]) => parameter.requiresGrad);
  }

  /** Logits [batch, length, vocabulary]. */
  forward(inputIds: tf.Tensor2D): tf.Tensor3D {
    const hidden = this.child<Dropout>('dropout').forward(this.child<Embedding>('embed_tokens').forward(inputIds));
    return this.child<Linear>('lm_head').forward(hidden) as tf.Tensor3D;
  }

  /** Causal-LM cross-entropy: position t predicts label t+1, positions labelled −100 left out. */
  loss(batch: TensorBatch): tf.Scalar {
    return tf.tidy(() => {
      const logits = this.forward(batch.inputIds);
      const [size, length, vocabulary] = logits.shape;
      const predictions = tf.reshape(tf.slice(logits, [0, 0, 0], [size, length - 1, vocabulary]), [-1, vocabulary]);
      const targets = tf.reshape(tf.slice(batch.labels, [0, 1], [size, length - 1]), [-1]);
      const valid = tf.notEqual(targets, IGNORE_INDEX);
      const picked = tf.sum(
        tf.mul(tf.logSoftmax(predictions), tf.oneHot(tf.where(valid, targets, tf.zerosLike(targets)) as tf.Tensor1D, vocabulary)),
        1,
      );
      const weights = tf.cast(valid, 'float32');
      return tf.div(tf.neg(tf.sum(tf.mul(picked, weights))), tf.sum(weights)) as tf.Scalar;
    });
  }
}
