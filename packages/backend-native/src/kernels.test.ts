import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node entry registers no gradients; vitest resolves its ES module registration directly.
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { NATIVE_BACKEND_NAME, nativeBackendStatus, registerNativeBackend } from './index.js';
import { expectClose, onBothBackends, values } from './testing/compare-backends.js';

const available = nativeBackendStatus().available;

describe.skipIf(!available)('native kernels against cpu', () => {
  beforeAll(() => {
    registerNativeBackend({ threads: 2 });
  });

  const shapes: [string, number[], number[], boolean, boolean][] = [
    ['2-D', [7, 13], [13, 5], false, false],
    ['transposed a', [13, 7], [13, 5], true, false],
    ['transposed b', [7, 13], [5, 13], false, true],
    ['both transposed', [13, 7], [5, 13], true, true],
    ['a batch against a 2-D b', [3, 2, 9, 11], [11, 6], false, false],
    ['batches of both', [4, 9, 11], [4, 11, 6], false, false],
    ['a broadcast batch of a', [1, 9, 11], [4, 6, 11], false, true],
    ['a broadcast batch of b, transposed a', [4, 11, 9], [1, 11, 6], true, false],
    ['a rank-4 batch against rank 3', [2, 3, 5, 4], [3, 4, 7], false, false],
    ['size-1 dimensions', [1, 1], [1, 1], false, false],
    ['an empty inner dimension', [3, 0], [0, 4], false, false],
    ['empty rows', [0, 5], [5, 4], false, false],
    ['empty columns', [3, 5], [5, 0], false, false],
    ['a large product', [130, 300], [300, 70], false, false],
  ];
  for (const [name, shapeA, shapeB, transposeA, transposeB] of shapes) {
    it(`matMul: ${name}`, () => {
      expectClose([{ shape: shapeA, seed: 1 }, { shape: shapeB, seed: 2 }], (a, b) => tf.matMul(a, b, transposeA, transposeB), 1e-4);
    });
  }

  it('matMul of int32 tensors is cpu\'s, exact', () => {
    expectClose([{ shape: [3, 4], dtype: 'int32', seed: 3 }, { shape: [4, 2], dtype: 'int32', seed: 4 }], (a, b) => tf.matMul(a, b), 0);
  });

  it('matMul gradients', () => {
    expectClose([{ shape: [2, 5, 6], seed: 5 }, { shape: [2, 7, 6], seed: 6 }], (a, b) => {
      const [gradientA, gradientB] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, false, true))))([a, b]);
      return tf.concat([tf.reshape(gradientA, [-1]), tf.reshape(gradientB, [-1])]);
    }, 1e-4);
  });

  const activations: tf.fused.Activation[] = ['linear', 'relu', 'relu6', 'sigmoid', 'leakyrelu', 'elu'];
  for (const activation of activations) {
    it(`fused matMul with a row bias and ${activation}`, () => {
      expectClose([{ shape: [6, 8], seed: 7 }, { shape: [5, 8], seed: 8 }, { shape: [5], seed: 9 }], (a, b, bias) =>
        tf.fused.matMul({ a: tf.mul(a, 4), b, bias, transposeB: true, activation, leakyreluAlpha: 0.3 }),
      );
    });
  }

  it('fused matMul with a scalar bias, a full-shape bias, prelu, or none', () => {
    const inputs = [{ shape: [2, 4, 3], seed: 10 }, { shape: [3, 5], seed: 11 }];
    expectClose([...inputs, { shape: [1], seed: 12 }], (a, b, bias) => tf.fused.matMul({ a, b, bias, activation: 'relu' }));
    expectClose([...inputs, { shape: [4, 5], seed: 13 }], (a, b, bias) => tf.fused.matMul({ a, b, bias, activation: 'sigmoid' }));
    expectClose([...inputs, { shape: [5], seed: 14 }], (a, b, alpha) => tf.fused.matMul({ a, b, activation: 'prelu', preluActivationWeights: alpha }));
    expectClose(inputs, (a, b) => tf.fused.matMul({ a, b }));
  });

  it('fused matMul gradients', () => {
    expectClose([{ shape: [4, 6], seed: 15 }, { shape: [6, 3], seed: 16 }, { shape: [3], seed: 17 }], (a, b, bias) => {
      const gradients = tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => tf.sum(tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, bias: z, activation: 'relu' })))([a, b, bias]);
      return tf.concat(gradients.map((gradient) => tf.reshape(gradient, [-1])));
    }, 1e-4);
  });

  const broadcasts: [string, number[], number[]][] = [
    ['equal shapes', [3, 4, 5], [3, 4, 5]],
    ['a row vector', [6, 7], [7]],
    ['a column vector', [4, 6, 7], [4, 6, 1]],
    ['a scalar on the left', [], [5, 3]],
    ['both sides broadcast', [3, 1, 5], [1, 4, 1]],
    ['size-1 axes only', [1, 1], [1]],
    ['an empty axis', [0, 3], [1, 3]],
  ];
  const binaryOps: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ['add', tf.add],
    ['sub', tf.sub],
    ['mul', tf.mul],
    ['div', tf.div],
    ['maximum', tf.maximum],
    ['minimum', tf.minimum],
    ['squaredDifference', tf.squaredDifference],
  ];
  for (const [name, shapeA, shapeB] of broadcasts) {
    it(`binary ops with ${name}: exactly cpu's values`, () => {
      for (const [, op] of binaryOps) expectClose([{ shape: shapeA, seed: 19 }, { shape: shapeB, seed: 20 }], op, 0);
    });
  }

  it('binary ops on int32 are cpu\'s; NaN propagates through maximum and minimum', () => {
    expectClose([{ shape: [3, 4], dtype: 'int32', seed: 21 }, { shape: [4], dtype: 'int32', seed: 22 }], tf.add, 0);
    tf.setBackend(NATIVE_BACKEND_NAME);
    expect(Array.from(tf.maximum(tf.tensor1d([NaN, 1, 2]), tf.tensor1d([0, NaN, 1])).dataSync())).toEqual([NaN, NaN, 2]);
    expect(Array.from(tf.minimum(tf.tensor1d([NaN, 1]), tf.tensor1d([0, 3])).dataSync())).toEqual([NaN, 1]);
  });

  const unaryOps: [string, (x: tf.Tensor) => tf.Tensor][] = [
    ['neg', tf.neg],
    ['sqrt', (x) => tf.sqrt(tf.abs(x))],
    ['rsqrt', (x) => tf.rsqrt(tf.abs(x))],
    ['square', tf.square],
    ['abs', tf.abs],
    ['log', (x) => tf.log(tf.abs(x))],
  ];
  for (const [name, op] of unaryOps) {
    it(`${name}: cpu's values`, () => {
      expectClose([{ shape: [5, 17], seed: 23 }], op, 1e-7);
      expectClose([{ shape: [0, 3], seed: 24 }], op, 0);
    });
  }

  it('exp and sigmoid: within 2 ulp of the float32-rounded exact value, over the whole range', () => {
    tf.setBackend(NATIVE_BACKEND_NAME);
    const inputs = Float32Array.from({ length: 200001 }, (_, index) => -105 + index * 0.00099);
    inputs.set([-87.33, -87.34, -103.28, -103.3, 88.72, 88.73, 0, -0, 1e-30, -1e-30], 0);
    const exp = tf.exp(tf.tensor1d(inputs)).dataSync();
    const sigmoid = tf.sigmoid(tf.tensor1d(inputs)).dataSync();
    const ulpsOff = (value: number, exact: number) => {
      const rounded = Math.fround(exact);
      if (!Number.isFinite(rounded) || rounded === 0) return value === rounded ? 0 : Infinity;
      // One ulp at rounded; subnormals share the smallest normal's.
      const ulp = 2 ** (Math.max(Math.floor(Math.log2(rounded)), -126) - 23);
      return Math.abs(value - rounded) / ulp;
    };
    let worst = 0;
    inputs.forEach((x, index) => {
      worst = Math.max(worst, ulpsOff(exp[index], Math.exp(x)), ulpsOff(sigmoid[index], 1 / (1 + Math.exp(-x))));
    });
    expect(worst).toBeLessThanOrEqual(2);
    expect(Array.from(tf.exp(tf.tensor1d([NaN, Infinity, -Infinity])).dataSync())).toEqual([NaN, Infinity, 0]);
    expect(Array.from(tf.sigmoid(tf.tensor1d([NaN, Infinity, -Infinity, 200, -200])).dataSync())).toEqual([NaN, 1, 0, 1, 0]);
  });

  it('softmax over the last axis, its gradient, and a log-softmax', () => {
    expectClose([{ shape: [3, 4, 37], seed: 25 }], (x) => tf.softmax(tf.mul(x, 20)), 1e-7);
    expectClose([{ shape: [5, 1], seed: 26 }], (x) => tf.softmax(x), 0);
    expectClose([{ shape: [2, 9], seed: 27 }], (x) => tf.grad((y: tf.Tensor) => tf.sum(tf.mul(tf.softmax(y), tf.range(0, 9))))(x), 1e-6);
    expectClose([{ shape: [2, 9], seed: 28 }], (x) => tf.logSoftmax(x), 1e-6);
  });

  const permutations: [number[], number[]][] = [
    [[7, 13], [1, 0]],
    [[2, 3, 4, 5], [0, 2, 1, 3]],
    [[2, 3, 4, 5], [3, 1, 0, 2]],
    [[33, 1, 18], [2, 1, 0]],
    [[5], [0]],
    [[0, 4], [1, 0]],
  ];
  for (const [shape, perm] of permutations) {
    it(`transpose [${shape}] by [${perm}], float32 and int32`, () => {
      expectClose([{ shape, seed: 29 }], (x) => tf.transpose(x, perm), 0);
      expectClose([{ shape, dtype: 'int32', seed: 30 }], (x) => tf.transpose(x, perm), 0);
    });
  }

  const reductions: [number[], number | number[] | undefined, boolean][] = [
    [[4, 5, 6], -1, false],
    [[4, 5, 6], [0, 1], false],
    [[4, 5, 6], [0, 2], true],
    [[4, 5, 6], 1, true],
    [[7], undefined, false],
    [[3, 1], 0, false],
    // Leading axes reduced, the kept ones contiguous: read a row at a time, split over threads when large.
    [[1, 8, 3], [0, 1], false],
    [[64, 300, 40], [0, 1], true],
    [[5, 7, 1, 9], [0, 1, 2], false],
  ];
  for (const [shape, axis, keepDims] of reductions) {
    it(`sum, mean, max and min of [${shape}] over ${JSON.stringify(axis)}${keepDims ? ', dims kept' : ''}: exactly cpu's values`, () => {
      for (const op of [tf.sum, tf.mean, tf.max, tf.min]) expectClose([{ shape, seed: 31 }], (x) => op(x, axis, keepDims), 0);
    });
  }

  it('max propagates NaN; reductions of int32 and of empty tensors are cpu\'s', () => {
    tf.setBackend(NATIVE_BACKEND_NAME);
    expect(Array.from(tf.max(tf.tensor2d([1, NaN, 3, 4], [2, 2]), 1).dataSync())).toEqual([NaN, 4]);
    expect(Array.from(tf.max(tf.tensor2d([1, NaN, NaN, 4, 2, 5], [3, 2]), 0).dataSync())).toEqual([NaN, NaN]);
    expect(Array.from(tf.min(tf.tensor2d([NaN, 1, 0, -2], [2, 2]), 0).dataSync())).toEqual([NaN, -2]);
    expectClose([{ shape: [3, 4], dtype: 'int32', seed: 32 }], (x) => tf.sum(x, 0), 0);
    expectClose([{ shape: [0, 4], seed: 33 }], (x) => tf.sum(x, 0), 0);
  });

  it('splits large element-wise work across threads with the same values', () => {
    registerNativeBackend({ threads: 3 });
    expectClose([{ shape: [301, 509], seed: 34 }, { shape: [509], seed: 35 }], tf.mul, 0);
    expectClose([{ shape: [3, 301, 509], seed: 36 }, { shape: [3, 301, 1], seed: 37 }], tf.sub, 0);
    expectClose([{ shape: [301 * 509], seed: 38 }, { shape: [301 * 509], seed: 39 }], tf.add, 0);
    registerNativeBackend({ threads: 2 });
    // exp and softmax round differently from cpu's Math.exp: they must give one thread's values on any count.
    tf.setBackend(NATIVE_BACKEND_NAME);
    const input = tf.tensor(values(301 * 509, 40), [301, 509]);
    const results = [1, 3].map((threads) => {
      registerNativeBackend({ threads });
      return [tf.exp(input), tf.softmax(input), tf.sigmoid(input)].map((result) => Array.from(result.dataSync()));
    });
    registerNativeBackend({ threads: 2 });
    expect(results[1]).toEqual(results[0]);
  });

  it('registers its own kernels over cpu\'s', () => {
    for (const kernelName of ['BatchMatMul', '_FusedMatMul', 'Add', 'Multiply', 'Exp', 'Softmax', 'Transpose', 'Sum', 'Mean', 'Max']) {
      expect(tf.getKernel(kernelName, NATIVE_BACKEND_NAME)!.kernelFunc).not.toBe(tf.getKernel(kernelName, 'cpu')!.kernelFunc);
    }
  });

  it('runs every cpu kernel: ops without a native kernel give cpu\'s results', () => {
    expect(tf.getKernelsForBackend(NATIVE_BACKEND_NAME).length).toBeGreaterThanOrEqual(tf.getKernelsForBackend('cpu').length);
    expectClose([{ shape: [3, 7], seed: 18 }], (x) => tf.add(tf.softmax(x), tf.reshape(tf.transpose(tf.cumsum(x, 1)), [3, 7])));
  });
});

describe.skipIf(!available)('native backend registration', () => {
  it('takes the thread count from the option or PEFT_TS_THREADS, and refuses a bad one', () => {
    expect(registerNativeBackend({ threads: 1 }).threads).toBe(1);
    const saved = process.env.PEFT_TS_THREADS;
    try {
      process.env.PEFT_TS_THREADS = '2';
      expect(registerNativeBackend().threads).toBe(2);
      process.env.PEFT_TS_THREADS = 'many';
      expect(() => registerNativeBackend()).toThrow(/PEFT_TS_THREADS must be a positive integer, got 'many'/);
      expect(() => registerNativeBackend({ threads: 0 })).toThrow(/threads option must be a positive integer/);
    } finally {
      if (saved === undefined) delete process.env.PEFT_TS_THREADS;
      else process.env.PEFT_TS_THREADS = saved;
    }
  });
});

describe.skipIf(!available)('native output recycling', () => {
  beforeAll(() => {
    registerNativeBackend({ threads: 1 });
    tf.setBackend(NATIVE_BACKEND_NAME);
  });
  const size = 8192;
  const filled = (value: number) => tf.mul(tf.ones([size]), value);

  it('reuses a disposed output for the next of its length', () => {
    const first = filled(2);
    const storage = (tensor: tf.Tensor) => (tf.backend() as unknown as { data: { get(id: object): { values: unknown } } }).data.get(tensor.dataId).values;
    const array = storage(first);
    first.dispose();
    const second = filled(3);
    expect(storage(second)).toBe(array);
    expect(second.dataSync()[size - 1]).toBe(3);
    second.dispose();
  });

  it('never recycles values read out, nor a buffer another tensor views', () => {
    const read = filled(2);
    const values = read.dataSync();
    read.dispose();
    const source = filled(4);
    // cpu's Slice of a contiguous range is a view of its input's buffer.
    const view = tf.slice(source, [size / 2], [size / 2]);
    source.dispose();
    const later = [filled(5), filled(6)];
    expect(values[0]).toBe(2);
    expect(view.dataSync()[0]).toBe(4);
    tf.dispose([view, ...later]);
  });
});
