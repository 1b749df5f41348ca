import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { NATIVE_BACKEND_NAME, nativeBackendStatus, registerNativeBackend } from './index.js';
import { values } from './testing/compare-backends.js';

const available = nativeBackendStatus().available;

type Case = { leading: number[]; inFeatures: number; outFeatures: number; rank: number; bias: boolean; dropout: boolean; scaling: number };

/** Each case's tensors, the same values on every backend; `dropped` stands for x after a dropout (another tensor). */
function operands({ leading, inFeatures, outFeatures, rank, bias, dropout }: Case) {
  const tensor = (shape: number[], seed: number) => tf.tensor(values(tf.util.sizeFromShape(shape), seed), shape);
  return {
    x: tensor([...leading, inFeatures], 1),
    dropped: dropout ? tensor([...leading, inFeatures], 2) : null,
    weight: tensor([outFeatures, inFeatures], 3),
    bias: bias ? tensor([outFeatures], 4) : null,
    loraA: tensor([rank, inFeatures], 5),
    loraB: tensor([outFeatures, rank], 6),
    dy: tensor([...leading, outFeatures], 7),
  };
}

/** The forward and gradients as separate tf ops on 2-D rows: what the kernels fuse. */
function reference(testCase: Case) {
  const { x, dropped, weight, bias, loraA, loraB, dy } = operands(testCase);
  const { inFeatures, outFeatures, rank, scaling } = testCase;
  const rows = (tensor: tf.Tensor, width: number) => tf.reshape(tensor, [-1, width]);
  const branchInput = rows(dropped ?? x, inFeatures);
  const down = tf.matMul(branchInput, loraA, false, true);
  const base = tf.matMul(rows(x, inFeatures), weight, false, true);
  const y = tf.add(bias ? tf.add(base, bias) : base, tf.mul(tf.matMul(down, loraB, false, true), scaling));
  const dyRows = rows(dy, outFeatures);
  const g = tf.matMul(dyRows, loraB);
  const branchGradient = tf.mul(tf.matMul(g, loraA), scaling);
  const baseGradient = tf.matMul(dyRows, weight);
  const dA = tf.mul(tf.matMul(g, branchInput, true), scaling);
  const dB = tf.mul(tf.matMul(dyRows, down, true), scaling);
  const gradients = dropped ? [baseGradient, dA, dB, branchGradient] : [tf.add(baseGradient, branchGradient), dA, dB];
  return [y, tf.reshape(down, [-1, rank]), ...gradients];
}

function fused(testCase: Case) {
  const { x, dropped, weight, bias, loraA, loraB, dy } = operands(testCase);
  const [y, down] = tf.engine().runKernel(
    'PeftLoraLinear',
    { x, weight, loraA, loraB, ...(bias ? { bias } : {}), ...(dropped ? { dropped } : {}) },
    { scaling: testCase.scaling },
  ) as tf.Tensor[];
  const gradients = tf.engine().runKernel(
    'PeftLoraLinearGrad',
    { dy, weight, loraA, loraB, down, dropped: dropped ?? x },
    { scaling: testCase.scaling, dropout: testCase.dropout },
  ) as tf.Tensor[];
  expect(y.shape).toEqual([...testCase.leading, testCase.outFeatures]);
  expect(down.shape).toEqual([...testCase.leading, testCase.rank]);
  expect(gradients[0].shape).toEqual(x.shape);
  return [y, down, ...gradients];
}

/** Every output within `tolerance` of the reference's, relative to that output's largest magnitude. */
function expectRelativelyClose(actual: tf.Tensor[], expected: tf.Tensor[], tolerance = 1e-5) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((tensor, index) => {
    const [got, want] = [tensor.dataSync() as Float32Array, expected[index].dataSync() as Float32Array];
    expect(got.length).toBe(want.length);
    const magnitude = want.reduce((max, value) => Math.max(max, Math.abs(value)), 0);
    const worst = got.reduce((max, value, element) => Math.max(max, Math.abs(value - want[element])), 0);
    expect(worst).toBeLessThanOrEqual(tolerance * Math.max(magnitude, 1e-30));
  });
}

describe.skipIf(!available)('native LoRA linear kernels against separate products on cpu', () => {
  beforeAll(() => {
    registerNativeBackend({ threads: 2 });
  });

  const cases: [string, Case][] = [
    ['2-D input, no bias', { leading: [7], inFeatures: 13, outFeatures: 5, rank: 3, bias: false, dropout: false, scaling: 2 }],
    ['leading batch axes and a bias', { leading: [2, 3, 5], inFeatures: 16, outFeatures: 24, rank: 4, bias: true, dropout: false, scaling: 0.5 }],
    ['a dropped branch input', { leading: [3, 9], inFeatures: 33, outFeatures: 17, rank: 8, bias: true, dropout: true, scaling: 16 / Math.sqrt(8) }],
    ['LoRA-sized rows, rank 1', { leading: [2, 130], inFeatures: 64, outFeatures: 96, rank: 1, bias: false, dropout: true, scaling: 1 }],
  ];
  for (const [name, testCase] of cases) {
    it(`${name}: output, rank-r activations and gradients`, () => {
      tf.setBackend('cpu');
      const expected = tf.tidy(() => reference(testCase).map((tensor) => tensor.dataSync()));
      tf.setBackend(NATIVE_BACKEND_NAME);
      tf.tidy(() => {
        // Recycled outputs must be overwritten everywhere: fill the pool with garbage of every output's length first.
        tf.dispose(reference(testCase).map((tensor) => tf.add(tensor, 1e6)));
        const flatExpected = expected.map((data, index) => tf.tensor(data, [data.length]));
        expectRelativelyClose(fused(testCase).map((tensor) => tf.reshape(tensor, [-1])), flatExpected);
      });
    });
  }

  it('empty rows give empty outputs and zero factor gradients', () => {
    tf.setBackend(NATIVE_BACKEND_NAME);
    tf.tidy(() => {
      const [y, down, dx, dA, dB] = fused({ leading: [0], inFeatures: 4, outFeatures: 3, rank: 2, bias: true, dropout: false, scaling: 2 });
      expect([y.shape, down.shape, dx.shape]).toEqual([[0, 3], [0, 2], [0, 4]]);
      expect([...dA.dataSync(), ...dB.dataSync()]).toEqual(new Array(14).fill(0));
    });
  });

  it('names the operand whose shape does not fit', () => {
    tf.setBackend(NATIVE_BACKEND_NAME);
    tf.tidy(() => {
      const [x, weight, loraA] = [tf.zeros([2, 4]), tf.zeros([3, 4]), tf.zeros([2, 4])];
      expect(() => tf.engine().runKernel('PeftLoraLinear', { x, weight, loraA, loraB: tf.zeros([3, 5]) }, { scaling: 1 })).toThrow(
        'PeftLoraLinear: loraB must be [3,2], got [3,5]',
      );
      expect(() => tf.engine().runKernel('PeftLoraLinear', { x: tf.zeros([2, 5]), weight, loraA, loraB: tf.zeros([3, 2]) }, { scaling: 1 })).toThrow(
        'PeftLoraLinear: the last axis of [2,5] must be 4',
      );
    });
  });
});
