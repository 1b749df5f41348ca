import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node entry registers no gradients; vitest resolves its ES module registration directly.
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { loadAddon } from './addon.js';
import { NATIVE_BACKEND_NAME, nativeBackendStatus, registerNativeBackend } from './index.js';
import { expectClose, onBothBackends } from './testing/compare-backends.js';

const available = nativeBackendStatus().available;

/** Every gradient of `loss` (a weighted sum, so each gradient element differs) flattened into one tensor. */
function gradients(loss: (...tensors: tf.Tensor[]) => tf.Tensor) {
  return (...tensors: tf.Tensor[]) => {
    const weighted = (...inputs: tf.Tensor[]) => {
      const y = loss(...inputs);
      return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));
    };
    return tf.concat(tf.grads(weighted)(tensors).map((gradient) => tf.reshape(gradient, [-1])));
  };
}

describe.skipIf(!available)('native gather and segment sum against cpu', () => {
  beforeAll(() => {
    registerNativeBackend({ threads: 2 });
  });

  it('gathers on every axis, negative axes, float32 and int32', () => {
    for (const axis of [0, 1, 2, -1]) {
      expectClose([{ shape: [5, 4, 3], seed: 1 }], (x) => tf.gather(x, tf.tensor([[2, 0], [1, 2], [2, 2]], [3, 2], 'int32'), axis), 0);
      expectClose([{ shape: [5, 4, 3], dtype: 'int32', seed: 2 }], (x) => tf.gather(x, tf.tensor([1, 0, 1, 2], [4], 'int32'), axis), 0);
    }
    expectClose([{ shape: [7], seed: 3 }], (x) => tf.gather(x, tf.tensor(3, [], 'int32')), 0);
  });

  it('gathers with batchDims 1 and 2', () => {
    expectClose([{ shape: [2, 5, 3], seed: 4 }], (x) => tf.gather(x, tf.tensor([[4, 0, 0, 1], [3, 3, 2, 4]], [2, 4], 'int32'), 1, 1), 0);
    expectClose([{ shape: [2, 3, 4, 5], seed: 5 }], (x) => tf.gather(x, tf.tensor([0, 3, 1, 1, 2, 2, 3, 0, 0, 0, 1, 3], [2, 3, 2], 'int32'), 2, 2), 0);
    expectClose([{ shape: [2, 3, 4], seed: 6 }], (x) => tf.gather(x, tf.tensor([[1, 0], [2, 2]], [2, 2], 'int32'), 2, 1), 0);
  });

  it('throws cpu\'s error for an index outside the axis', () => {
    for (const [index, message] of [[-1, 'GatherV2: the index value -1 is not in [0, 4]'], [5, 'GatherV2: the index value 5 is not in [0, 4]']] as const) {
      for (const backend of [NATIVE_BACKEND_NAME, 'cpu']) {
        tf.setBackend(backend);
        expect(() => tf.tidy(() => tf.gather(tf.zeros([5, 2]), tf.tensor([0, index], [2], 'int32')))).toThrow(message);
      }
    }
  });

  it('gather gradients (segment sums of repeated indices) on axes 0 and 1', () => {
    const indices = () => tf.tensor1d([3, 1, 3, 3, 0, 1], 'int32');
    expectClose([{ shape: [5, 7], seed: 7 }], gradients((x) => tf.gather(x, indices(), 0)), 1e-6);
    expectClose([{ shape: [2, 4, 3], seed: 8 }], gradients((x) => tf.gather(x, indices(), 1)), 1e-6);
  });

  it('segment sums drop ids outside [0, numSegments), as cpu does', () => {
    const ids = () => tf.tensor1d([0, 2, 2, 5, -1, 1, 2], 'int32');
    expectClose([{ shape: [7, 3], seed: 9 }], (x) => tf.unsortedSegmentSum(x, ids(), 4), 0);
    expectClose([{ shape: [7, 2, 3], seed: 10 }], (x) => tf.unsortedSegmentSum(x, ids(), 6), 0);
    expectClose([{ shape: [7], seed: 11 }], (x) => tf.unsortedSegmentSum(x, ids(), 3), 0);
    const [native] = onBothBackends([{ shape: [3, 2], seed: 12 }], (x) => tf.unsortedSegmentSum(x, tf.tensor1d([1, 1, 1], 'int32'), 3));
    expect(native.data.slice(0, 2)).toEqual([0, 0]);
  });

  it('large gathers and segment sums split across threads with the same values', () => {
    // 2048 × 64 floats: enough work for two threads.
    const ids = () => tf.tensor1d(Array.from({ length: 2048 }, (_, index) => (index * 7919) % 64), 'int32');
    expectClose([{ shape: [64, 64], seed: 13 }], (table) => tf.gather(table, ids()), 0);
    expectClose([{ shape: [2048, 64], seed: 14 }], (rows) => tf.unsortedSegmentSum(rows, ids(), 64), 0);
  });

  it('runs its own kernels, not cpu\'s, for float32 and int32 gathers and 1-D segment ids', () => {
    const addon = loadAddon().addon!;
    const gather = vi.spyOn(addon, 'gather');
    const segmentSum = vi.spyOn(addon, 'segmentSum');
    onBothBackends([{ shape: [4, 3], seed: 15 }], (x) => tf.unsortedSegmentSum(tf.gather(x, tf.tensor1d([1, 1, 0], 'int32')), tf.tensor1d([0, 2, 2], 'int32'), 3));
    onBothBackends([{ shape: [4, 3], dtype: 'int32', seed: 16 }], (x) => tf.gather(x, tf.tensor1d([2], 'int32'), 1));
    expect([gather.mock.calls.length, segmentSum.mock.calls.length]).toEqual([2, 1]);
    vi.restoreAllMocks();
  });
});

type ConvCase = [name: string, x: number[], filter: number[], strides: number, pad: 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]], dilations: number];

describe.skipIf(!available)('native conv2d against cpu', () => {
  beforeAll(() => {
    registerNativeBackend({ threads: 2 });
  });

  const explicit = (top: number, bottom: number, left: number, right: number) =>
    [[0, 0], [top, bottom], [left, right], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]];
  const cases: ConvCase[] = [
    ['1×1, one channel', [1, 5, 6, 1], [1, 1, 1, 3], 1, 'valid', 1],
    ['1×1 stride 2', [3, 7, 5, 3], [1, 1, 3, 7], 2, 'valid', 1],
    ['3×3 same', [1, 6, 7, 3], [3, 3, 3, 7], 1, 'same', 1],
    ['3×3 valid, batch 3', [3, 8, 6, 7], [3, 3, 7, 1], 1, 'valid', 1],
    ['3×3 stride 2 same', [3, 9, 8, 3], [3, 3, 3, 7], 2, 'same', 1],
    ['5×5 stride 2 explicit', [1, 11, 9, 7], [5, 5, 7, 3], 2, explicit(2, 1, 0, 2), 1],
    ['5×5 same on a smaller image', [3, 3, 4, 1], [5, 5, 1, 3], 1, 'same', 1],
    ['3×5 explicit', [1, 6, 6, 3], [3, 5, 3, 2], 1, explicit(1, 1, 2, 2), 1],
    ['3×3 dilation 2 same', [3, 9, 10, 3], [3, 3, 3, 7], 1, 'same', 2],
    ['3×3 dilation 2 valid', [1, 9, 8, 7], [3, 3, 7, 3], 1, 'valid', 2],
    ['5×5 dilation 2 explicit', [1, 12, 11, 1], [5, 5, 1, 7], 1, explicit(3, 1, 2, 4), 2],
  ];
  for (const [name, xShape, filterShape, strides, pad, dilations] of cases) {
    const convolve = (x: tf.Tensor, filter: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, strides, pad, 'NHWC', dilations);
    const inputs = [{ shape: xShape, seed: 1 }, { shape: filterShape, seed: 2 }];
    it(`conv2d ${name}`, () => {
      expectClose(inputs, convolve, 1e-5, true);
    });
    // tfjs has no gradient for dilated convolutions.
    if (dilations === 1) {
      it(`conv2d gradients ${name}`, () => {
        expectClose(inputs, gradients(convolve), 1e-5, true);
      });
    }
  }

  it('conv2d of an image larger than one patch tile, and its gradients', () => {
    const inputs = [{ shape: [2, 70, 70, 16], seed: 3 }, { shape: [3, 3, 16, 4], seed: 4 }];
    const convolve = (x: tf.Tensor, filter: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, 1, 'same');
    expectClose(inputs, convolve, 1e-5, true);
    expectClose(inputs, gradients(convolve), 1e-5, true);
  });

  it('runs its own kernels for an NHWC convolution and its gradients', () => {
    const addon = loadAddon().addon!;
    const spies = [vi.spyOn(addon, 'conv2d'), vi.spyOn(addon, 'conv2dBackpropInput'), vi.spyOn(addon, 'conv2dBackpropFilter')];
    onBothBackends([{ shape: [1, 5, 5, 2], seed: 9 }, { shape: [3, 3, 2, 2], seed: 10 }], gradients((x, filter) => tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, 1, 'same')));
    expect(spies.map((spy) => spy.mock.calls.length)).toEqual([1, 1, 1]);
    vi.restoreAllMocks();
  });

  it('the addon refuses arrays that do not match the shapes instead of reading past them', () => {
    const addon = loadAddon().addon!;
    const geometry = Int32Array.from([1, 4, 4, 2, 4, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1]);
    expect(() => addon.conv2d(new Float32Array(32), new Float32Array(54), new Float32Array(48), geometry)).not.toThrow();
    expect(() => addon.conv2d(new Float32Array(31), new Float32Array(54), new Float32Array(48), geometry)).toThrow('conv2d: expected Float32Arrays');
    expect(() => addon.conv2dBackpropFilter(new Float32Array(32), new Float32Array(48), new Float32Array(54), geometry.subarray(1))).toThrow('conv2dBackpropFilter');
    expect(() => addon.gather(new Float32Array(6), Int32Array.from([0, 3]), new Float32Array(4), 1, 1, 3, 2)).toThrow('gather: an index is outside');
    expect(() => addon.segmentSum(new Float32Array(6), Int32Array.from([0, 1]), new Float32Array(5), 2, 3)).toThrow('segmentSum: the shapes');
  });

  it('NCHW and a rounded output size run as cpu computes them', () => {
    expectClose([{ shape: [1, 3, 6, 5], seed: 5 }, { shape: [3, 3, 3, 2], seed: 6 }], (x, filter) => tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, 1, 'same', 'NCHW'), 1e-5, true);
    expectClose([{ shape: [1, 7, 7, 2], seed: 7 }, { shape: [2, 2, 2, 3], seed: 8 }], (x, filter) => tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, 2, 1, 'NHWC', 1, 'ceil'), 1e-5, true);
  });
});
