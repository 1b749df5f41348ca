import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { gradientCheckpoint, scopedBackward } from './gradient-checkpointing.js';
import { Dropout } from './layers/dropout.js';
import { Linear } from './layers/linear.js';
import { manualSeed } from './random.js';
import { describeWithBackends, maxAbsDifference } from './test/index.js';

/**
 * Two Linear layers with dropout between them, and a loss over the block run either plainly or
 * through `wrap` (checkpoint or scopedBackward), which must not change the value or the gradients.
 */
function dropoutBlock(wrap: typeof scopedBackward) {
  manualSeed(4);
  const first = new Linear(6, 8);
  const second = new Linear(8, 6);
  const dropout = new Dropout(0.3);
  const block = (input: tf.Tensor) => second.forward(tf.relu(dropout.forward(first.forward(input))));
  const x = tf.variable(tf.randomNormal([5, 6], 0, 1, 'float32', 1));
  const weights = [first.weight.value, first.bias!.value, second.weight.value];
  const loss = (wrapped: boolean) => () => {
    const hidden = tf.tanh(x);
    const output = wrapped ? wrap(([input]) => block(input), [hidden], { variables: weights }) : block(hidden);
    return tf.sum(tf.square(output)) as tf.Scalar;
  };
  return { first, x, weights, loss };
}

describeWithBackends('gradient checkpointing', () => {
  it('gives the same gradients (inputs and weights, dropout included) as the plain computation', () => {
    const { x, weights, loss } = dropoutBlock(gradientCheckpoint);
    manualSeed(9);
    const plain = tf.variableGrads(loss(false), [x, ...weights]);
    manualSeed(9);
    const recomputed = tf.variableGrads(loss(true), [x, ...weights]);
    expect(maxAbsDifference(recomputed.value, plain.value)).toBeLessThan(1e-6);
    for (const variable of [x, ...weights]) {
      expect(maxAbsDifference(recomputed.grads[variable.name], plain.grads[variable.name])).toBeLessThan(1e-5);
    }
    expect(maxAbsDifference(plain.grads[x.name], tf.zerosLike(x))).toBeGreaterThan(0);
  });

  it('scopedBackward gives the plain gradients and frees what it recorded, even when its gradient is never taken', () => {
    const { first, x, weights, loss } = dropoutBlock(scopedBackward);
    manualSeed(9);
    const plain = tf.variableGrads(loss(false), [x, ...weights]);
    manualSeed(9);
    const before = tf.memory().numTensors;
    const scoped = tf.variableGrads(loss(true), [x, ...weights]);
    expect(tf.memory().numTensors - before).toBe(1 + 4);
    expect(maxAbsDifference(scoped.value, plain.value)).toBeLessThan(1e-6);
    for (const variable of [x, ...weights]) {
      expect(maxAbsDifference(scoped.grads[variable.name], plain.grads[variable.name])).toBeLessThan(1e-6);
    }
    // Only a weight outside the block trains: the block's gradient is never taken.
    const scale = tf.variable(tf.scalar(2));
    const constant = tf.randomNormal([5, 6], 0, 1, 'float32', 2);
    const start = tf.memory().numTensors;
    const outside = tf.variableGrads(() => tf.mul(scale, tf.sum(scopedBackward(([input]) => first.forward(input), [constant], { variables: [] }))) as tf.Scalar, [scale]);
    expect(tf.memory().numTensors - start).toBe(2);
    tf.dispose([outside.value, outside.grads[scale.name], scale, constant]);
  });
});
