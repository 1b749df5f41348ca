import * as tf from '@tensorflow/tfjs-core';
import { PeftError } from '@peft-ts/core';
import { runFusedKernel } from '@peft-ts/core/internal';

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
    // Shifting the labels instead of slicing the logits (the last position of each row predicts nothing) keeps the
    // logits whole: no copy of them, and no padded copy of their gradient.
    const following = tf.slice(tf.cast(labels, 'int32'), [0, 1], [batch, length - 1]);
    const targets = tf.reshape(tf.concat([following, tf.fill([batch, 1], IGNORE_INDEX, 'int32')], 1), [-1]) as tf.Tensor1D;
    return crossEntropy(logits, targets);
  });
}

/**
 * Mean of −log softmax(logits)[target] over rows whose target is not −100, with the gradient
 * `(softmax − onehot)·dy/count` (0 on ignored rows) written out. A backend with `PeftCrossEntropy` computes it in one
 * pass per row and keeps the logits and each row's log Σ exp; the tf-op composition keeps only the probabilities, where
 * autodiff of logSoftmax, gather and the sums kept several [rows, vocab] tensors (and wasm's exp is slow: ~3× the time).
 */
function crossEntropy(logits: tf.Tensor, targets: tf.Tensor1D): tf.Scalar {
  const vocabulary = logits.shape[logits.rank - 1]!;
  const rows = logits.size / vocabulary;
  // Rows are flattened in here: a reshape outside would keep the logits alive for its own gradient.
  const run = tf.customGrad(((input: tf.Tensor, save: (tensors: tf.Tensor[]) => void) => {
    const predictions = tf.reshape(input, [rows, vocabulary]);
    const fused = runFusedKernel('PeftCrossEntropy', { logits: predictions, targets });
    if (fused) {
      save([predictions, targets, fused[1]]);
      return {
        value: fused[0],
        gradFunc: (dy: tf.Tensor, [savedLogits, savedTargets, logSumExp]: tf.Tensor[]) =>
          tf.tidy(() => tf.reshape(runFusedKernel('PeftCrossEntropyGrad', { dy, logits: savedLogits, targets: savedTargets, logSumExp })![0], logits.shape)),
      };
    }
    const valid = tf.notEqual(targets, IGNORE_INDEX);
    const classes = tf.where(valid, targets, tf.zerosLike(targets));
    const weights = tf.cast(valid, 'float32');
    const probabilities = tf.softmax(predictions);
    const flatIndices = tf.add(tf.mul(tf.range(0, rows, 1, 'int32'), tf.scalar(vocabulary, 'int32')), classes);
    const picked = tf.gather(tf.reshape(predictions, [-1]), flatIndices);
    // log p = x − max(x) − log Σexp(x − max(x)), and the largest probability is 1 / Σexp(x − max(x)).
    const logProbabilities = tf.add(tf.sub(picked, tf.max(predictions, -1)), tf.log(tf.max(probabilities, -1)));
    const total = tf.sum(weights);
    save([probabilities, classes, weights, total]);
    return {
      value: tf.div(tf.neg(tf.sum(tf.mul(logProbabilities, weights))), total),
      gradFunc: (dy: tf.Tensor, [savedProbabilities, savedClasses, savedWeights, savedTotal]: tf.Tensor[]) =>
        tf.tidy(() => {
          const rowScale = tf.reshape(tf.div(tf.mul(savedWeights, dy), savedTotal), [rows, 1]);
          // wasm's oneHot ignores its dtype (it writes int32 bits into a float32 tensor): cast an int32 one instead.
          const oneHot = tf.cast(tf.oneHot(savedClasses as tf.Tensor1D, vocabulary), 'float32');
          const gradient = tf.mul(tf.sub(savedProbabilities, oneHot), rowScale);
          return tf.reshape(gradient, logits.shape);
        }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (input: tf.Tensor) => tf.Scalar;
  return run(logits);
}
