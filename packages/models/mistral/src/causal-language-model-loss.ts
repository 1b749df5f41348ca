import * as tf from '@tensorflow/tfjs-core';
import { PeftError } from '@peft-ts/core';

/** Label value excluded from the loss (PyTorch CrossEntropyLoss's default ignore_index). */
export const IGNORE_INDEX = -100;

/**
 * transformers' causal-LM loss: position t predicts label t+1 (`logits[:, :-1]` vs `labels[:, 1:]`), mean
 * cross-entropy over labels that are not −100. NaN when every label is ignored, as in PyTorch. Differentiable in
 * `logits`.
 */
export function causalLanguageModelLoss(logits: tf.Tensor3D, labels: tf.Tensor): tf.Scalar {
  const [batch, length, vocabulary] = logits.shape;
  if (labels.rank !== 2 || labels.shape[0] !== batch || labels.shape[1] !== length) {
    throw new PeftError(`labels: expected shape [${batch}, ${length}] like inputIds, got [${labels.shape}]`);
  }
  return tf.tidy(() => {
    const rows = batch * (length - 1);
    const predictions = tf.reshape(tf.slice(logits, [0, 0, 0], [batch, length - 1, vocabulary]), [rows, vocabulary]);
    const targets = tf.reshape(tf.slice(tf.cast(labels, 'int32'), [0, 1], [batch, length - 1]), [rows]);
    const valid = tf.notEqual(targets, IGNORE_INDEX);
    // Pick log p(target) by flat index: lighter than a one-hot [rows, vocabulary] mask.
    const flatIndices = tf.add(tf.mul(tf.range(0, rows, 1, 'int32'), tf.scalar(vocabulary, 'int32')), tf.where(valid, targets, tf.zerosLike(targets)));
    const picked = tf.gather(tf.reshape(tf.logSoftmax(predictions), [-1]), flatIndices);
    const weights = tf.cast(valid, 'float32');
    return tf.div(tf.neg(tf.sum(tf.mul(picked, weights))), tf.sum(weights)) as tf.Scalar;
  });
}
