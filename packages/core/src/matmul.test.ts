import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { matMul } from './matmul.js';
import { describeWithBackends, maxAbsDifference } from './test/index.js';

describeWithBackends('matMul', () => {
  const shapes = (batch: number[], rows: number, inner: number, transposed: boolean) =>
    transposed ? [...batch, inner, rows] : [...batch, rows, inner];

  // Output widths on both sides of the inner size (5): the weight gradient is laid out either way.
  for (const [batch, columns] of [[[], 6], [[2, 3], 6], [[], 3], [[2, 3], 3]] as const) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        for (const frozen of ['none', 'a', 'b'] as const) {
          it(`matches tf.matMul and its gradients (batch [${batch}], N ${columns}, transposeA ${transposeA}, transposeB ${transposeB}, frozen ${frozen})`, () => {
            const a = tf.variable(tf.randomNormal(shapes([...batch], 4, 5, transposeA), 0, 1, 'float32', 1), frozen !== 'a');
            const b = tf.variable(tf.randomNormal(shapes([...batch], columns, 5, !transposeB), 0, 1, 'float32', 2), frozen !== 'b');
            // Non-frozen operands are intermediates, freed once the forward is done: the gradient must not read them unsaved.
            const operand = (variable: tf.Variable) => (variable.trainable ? tf.mul(variable, 1.5) : variable);
            const loss = (product: typeof matMul) => () => tf.sum(tf.square(product(operand(a), operand(b), transposeA, transposeB))) as tf.Scalar;
            const expected = tf.variableGrads(loss(tf.matMul));
            const actual = tf.variableGrads(loss(matMul));
            expect(maxAbsDifference(actual.value, expected.value)).toBeLessThan(1e-4);
            expect(Object.keys(actual.grads).sort()).toEqual(Object.keys(expected.grads).sort());
            for (const name of Object.keys(expected.grads)) expect(maxAbsDifference(actual.grads[name], expected.grads[name])).toBeLessThan(1e-4);
            tf.dispose([a, b, expected.value, actual.value, ...Object.values(expected.grads), ...Object.values(actual.grads)]);
          });
        }
      }
    }
  }

  for (const transposeB of [false, true]) {
    for (const frozen of [false, true]) {
      it(`multiplies [..., M, K] by a 2-D operand like tf.matMul (transposeB ${transposeB}, frozen ${frozen})`, () => {
        const a = tf.variable(tf.randomNormal([2, 3, 4, 5], 0, 1, 'float32', 6));
        const b = tf.variable(tf.randomNormal(transposeB ? [6, 5] : [5, 6], 0, 1, 'float32', 7), !frozen);
        const loss = (product: () => tf.Tensor) => () => tf.sum(tf.square(product())) as tf.Scalar;
        // tfjs' own matMul gets the gradient of a broadcast operand wrong: the reference flattens the rows itself.
        const reference = () => tf.reshape(tf.matMul(tf.reshape(a, [-1, 5]), b, false, transposeB), [2, 3, 4, 6]);
        const expected = tf.variableGrads(loss(reference));
        // An intermediate left operand, freed once the forward is done.
        const actual = tf.variableGrads(loss(() => tf.div(matMul(tf.mul(a, 2), b, false, transposeB), 2)));
        expect(maxAbsDifference(actual.value, expected.value)).toBeLessThan(1e-4);
        expect(Object.keys(actual.grads).sort()).toEqual(Object.keys(expected.grads).sort());
        for (const name of Object.keys(expected.grads)) expect(maxAbsDifference(actual.grads[name], expected.grads[name])).toBeLessThan(1e-4);
        tf.dispose([a, b, expected.value, actual.value, ...Object.values(expected.grads), ...Object.values(actual.grads)]);
      });
    }
  }

  it('sees a new value assigned to a frozen weight', () => {
    const input = tf.randomNormal([3, 4], 0, 1, 'float32', 3);
    const weight = tf.variable(tf.randomNormal([5, 4], 0, 1, 'float32', 4), false);
    matMul(input, weight, false, true).dispose();
    weight.assign(tf.randomNormal([5, 4], 0, 1, 'float32', 5));
    expect(maxAbsDifference(matMul(input, weight, false, true), tf.matMul(input, weight, false, true))).toBeLessThan(1e-5);
    tf.dispose([input, weight]);
  });
});
