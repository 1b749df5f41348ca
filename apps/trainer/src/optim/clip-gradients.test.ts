import * as tf from '@tensorflow/tfjs-core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { expect, it } from 'vitest';
import { clipGradients, globalGradientNorm } from './clip-gradients.js';

describeWithBackends('clipGradients', () => {
  it('scales every gradient by max_norm/(total + 1e-6) when the global norm is larger', () => {
    // Global norm of [3, 4] and [12] is 13.
    const gradients = new Map<string, tf.Tensor>([
      ['a', tf.tensor1d([3, 4])],
      ['b', tf.tensor2d([12], [1, 1])],
    ]);
    const { gradients: clipped, totalNorm } = clipGradients(gradients, 1);
    expect(totalNorm.dataSync()[0]).toBeCloseTo(13, 5);
    const factor = 1 / (13 + 1e-6);
    expect(maxAbsDifference(clipped.get('a')!, [3 * factor, 4 * factor])).toBeLessThan(1e-7);
    expect(maxAbsDifference(clipped.get('b')!, [12 * factor])).toBeLessThan(1e-7);
    expect(clipped.get('b')!.shape).toEqual([1, 1]);
    tf.dispose([...gradients.values(), ...clipped.values(), totalNorm]);
  });

  it('leaves gradients unchanged when the norm is within the limit, and returns the norm', () => {
    const gradients = new Map<string, tf.Tensor>([['a', tf.tensor1d([0.3, -0.4])]]);
    const before = tf.memory().numTensors;
    const { gradients: clipped, totalNorm } = clipGradients(gradients, 1);
    expect(tf.memory().numTensors - before).toBe(2);
    expect(Array.from(clipped.get('a')!.dataSync())).toEqual(Array.from(gradients.get('a')!.dataSync()));
    expect(totalNorm.dataSync()[0]).toBeCloseTo(0.5, 6);
    tf.dispose([...gradients.values(), ...clipped.values(), totalNorm]);
  });

  it('reports a non-finite norm when a gradient is not finite', () => {
    const gradients = new Map<string, tf.Tensor>([['a', tf.tensor1d([NaN, 1])]]);
    const norm = globalGradientNorm(gradients);
    expect(Number.isFinite(norm.dataSync()[0])).toBe(false);
    tf.dispose([...gradients.values(), norm]);
  });
});
