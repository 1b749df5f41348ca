import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { describeWithBackends } from '../test/index.js';

describeWithBackends('initBackend registers tfjs-core gradients and chained tensor methods', () => {
  it('differentiates matMul and a reduction', () => {
    const x = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    // d/dx sum(x·x) = 1·xᵀ + xᵀ·1 (row sums of x across, column sums down).
    const gradient = tf.grad((input: tf.Tensor) => tf.sum(tf.matMul(input as tf.Tensor2D, input as tf.Tensor2D)))(x);
    expect(Array.from(gradient.dataSync())).toEqual([7, 11, 9, 13]);
  });

  it('chains tensor methods, as the @tensorflow/tfjs bundle does', () => {
    expect(Array.from(tf.tensor1d([3, 1, 2]).abs().max().dataSync())).toEqual([3]);
  });
});
