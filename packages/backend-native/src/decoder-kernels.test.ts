import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { NATIVE_BACKEND_NAME, nativeBackendStatus, registerNativeBackend } from './index.js';
import { values } from './testing/compare-backends.js';

const available = nativeBackendStatus().available;

const run = (kernelName: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}) => {
  const result = tf.engine().runKernel(kernelName, inputs, attrs) as tf.Tensor | tf.Tensor[];
  return (Array.isArray(result) ? result : [result]).map((tensor) => Array.from(tensor.dataSync()));
};

function expectNear(actual: number[], expected: number[], tolerance = 1e-5) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((value, index) => expect(Math.abs(value - expected[index])).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(expected[index]))));
}

/** softmax of one row in double. */
function softmax(row: number[]): number[] {
  const maximum = Math.max(...row);
  const exps = row.map((value) => Math.exp(value - maximum));
  const total = exps.reduce((sum, value) => sum + value, 0);
  return exps.map((value) => value / total);
}

// The kernels against float64 references written from their formulas, for what the model-level tests (model-common's
// fused-layers.test.ts, against the tf-op composition) do not reach: per-batch angles and masks, and errors.
describe.skipIf(!available)('native decoder kernels', () => {
  beforeAll(async () => {
    registerNativeBackend({ threads: 2 });
    await tf.setBackend(NATIVE_BACKEND_NAME);
  });

  it('PeftCrossEntropy: mean NLL over counted rows, their log Σ exp, and a zero gradient on ignored rows', () => {
    tf.tidy(() => {
      const logitValues = Array.from(values(4 * 6, 1), (value) => value * 4);
      const targets = [2, -100, 5, 0];
      const rows = [0, 1, 2, 3].map((row) => logitValues.slice(row * 6, row * 6 + 6));
      const logSumExp = rows.map((row) => Math.log(row.reduce((sum, value) => sum + Math.exp(value), 0)));
      const counted = [0, 2, 3];
      const loss = counted.reduce((sum, row) => sum + logSumExp[row] - rows[row][targets[row]], 0) / counted.length;
      const logits = tf.tensor2d(logitValues, [4, 6]);
      const targetTensor = tf.tensor1d(targets, 'int32');
      const [value, savedLogSumExp] = run('PeftCrossEntropy', { logits, targets: targetTensor });
      expectNear(value, [loss]);
      expectNear(savedLogSumExp, logSumExp.map((lse, row) => (targets[row] === -100 ? 0 : lse)));
      const [gradient] = run('PeftCrossEntropyGrad', { dy: tf.scalar(3), logits, targets: targetTensor, logSumExp: tf.tensor1d(savedLogSumExp) });
      const expected = rows.flatMap((row, index) =>
        targets[index] === -100 ? row.map(() => 0) : softmax(row).map((p, column) => ((p - (column === targets[index] ? 1 : 0)) * 3) / counted.length),
      );
      expectNear(gradient, expected);
    });
  });

  it('PeftCrossEntropy names a label that is neither -100 nor a class', () => {
    tf.tidy(() => {
      expect(() => run('PeftCrossEntropy', { logits: tf.zeros([2, 3]), targets: tf.tensor1d([1, 3], 'int32') })).toThrow(/neither -100 \(ignored\) nor a class index/);
    });
  });

  it('PeftRotary with angles per batch row, forward and transposed', () => {
    tf.tidy(() => {
      const [batch, length, heads, dimension] = [2, 3, 2, 4];
      const x = Array.from(values(batch * length * heads * dimension, 2));
      const cos = Array.from(values(batch * length * dimension, 3));
      const sin = Array.from(values(batch * length * dimension, 4));
      const half = dimension / 2;
      const expected = (transposed: boolean) =>
        x.map((value, index) => {
          const column = index % dimension;
          const row = Math.floor(index / (heads * dimension));
          const angle = row * dimension + column;
          const partner = column < half ? index + half : index - half;
          const partnerAngle = column < half ? angle + half : angle - half;
          return value * cos[angle] + x[partner] * sin[transposed ? partnerAngle : angle];
        });
      const inputs = { x: tf.tensor4d(x, [batch, length, heads, dimension]), cos: tf.tensor4d(cos, [batch, length, 1, dimension]), sin: tf.tensor4d(sin, [batch, length, 1, dimension]) };
      for (const transposed of [false, true]) expectNear(run('PeftRotary', inputs, { transposed })[0], expected(transposed));
    });
  });

  it('PeftMaskedSoftmax with a mask per batch row: a fully masked row comes out uniform', () => {
    tf.tidy(() => {
      const [batch, heads, length, keys] = [2, 2, 2, 3];
      const scores = Array.from(values(batch * heads * length * keys, 5), (value) => value * 5);
      const min = -3.4028234663852886e38;
      const mask = [0, min, min, 0, 0, min, /* batch 1 */ min, min, min, 0, 0, 0];
      const [probabilities] = run('PeftMaskedSoftmax', { scores: tf.tensor4d(scores, [batch, heads, length, keys]), mask: tf.tensor4d(mask, [batch, 1, length, keys]) }, { scale: 2, perHead: [batch, heads, length, keys] });
      const expected = [...Array(batch * heads * length).keys()].flatMap((row) => {
        const maskRow = Math.floor(row / (heads * length)) * length + (row % length);
        const masked = scores.slice(row * keys, row * keys + keys).map((value, column) => Math.fround(value / 2) + mask[maskRow * keys + column]);
        return masked.every((value) => value === min) ? [1 / 3, 1 / 3, 1 / 3] : softmax(masked.map((value) => (value < -1e30 ? -Infinity : value)));
      });
      expectNear(probabilities, expected);
    });
  });
});
