import * as tf from '@tensorflow/tfjs-core';

/**
 * `body()` as a constant (PyTorch's `.detach()` of a computed value): run as a custom op without
 * inputs, nothing it computes is recorded for gradients, so its intermediates are not kept for the
 * backward pass and no gradient (not even a zero one) flows back through it.
 */
export function untracked<T extends tf.Tensor>(body: () => T): T {
  const run = tf.customGrad((() => ({ value: body(), gradFunc: () => [] })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (run as unknown as () => T)();
}

/** L2 norm of each row of `matrix` reshaped to [rows, -1]: one value per output feature. */
export function rowNorms(matrix: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => tf.sqrt(tf.sum(tf.square(tf.reshape(matrix, [matrix.shape[0]!, -1])), 1)) as tf.Tensor1D);
}
