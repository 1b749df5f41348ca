import * as tf from '@tensorflow/tfjs-core';

const detached = tf.customGrad(((input: tf.Tensor) => ({
  value: tf.clone(input),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as Parameters<typeof tf.customGrad>[0]);

/** The value of `input` with no gradient flowing back through it (PyTorch `.detach()`). */
export function stopGradient<T extends tf.Tensor>(input: T): T {
  return detached(input) as T;
}

/** L2 norm of each row of `matrix` reshaped to [rows, -1]: one value per output feature. */
export function rowNorms(matrix: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => tf.sqrt(tf.sum(tf.square(tf.reshape(matrix, [matrix.shape[0]!, -1])), 1)) as tf.Tensor1D);
}
