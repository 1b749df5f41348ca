// Running the same computation on native and on cpu (the reference) over the same inputs, for the kernel tests.
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { NATIVE_BACKEND_NAME } from '../backend.js';

/** Deterministic values in [-1, 1) (a small LCG), so both backends get the very same inputs. */
export function values(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let index = 0; index < count; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[index] = state / 2 ** 31 - 1;
  }
  return out;
}

export type Input = { shape: number[]; dtype?: 'float32' | 'int32'; seed: number };

/** `compute` on native and on cpu over the same inputs: both results, read back. */
export function onBothBackends(inputs: Input[], compute: (...tensors: tf.Tensor[]) => tf.Tensor) {
  return [NATIVE_BACKEND_NAME, 'cpu'].map((backend) => {
    tf.setBackend(backend);
    return tf.tidy(() => {
      const tensors = inputs.map(({ shape, dtype = 'float32', seed }) => {
        const data = values(tf.util.sizeFromShape(shape), seed);
        return dtype === 'int32' ? tf.tensor(data.map((value) => Math.round(value * 50)), shape, 'int32') : tf.tensor(data, shape);
      });
      const result = compute(...tensors);
      return { backend: tf.getBackend(), shape: result.shape, dtype: result.dtype, data: Array.from(result.dataSync()) };
    });
  });
}

/**
 * Native's result against cpu's: the same shape and dtype, no element further than `tolerance` away, or (relative)
 * than `tolerance` times cpu's largest magnitude, for sums over many terms that round in another order.
 */
export function expectClose(inputs: Input[], compute: (...tensors: tf.Tensor[]) => tf.Tensor, tolerance = 1e-5, relative = false) {
  const [native, cpu] = onBothBackends(inputs, compute);
  expect(native.backend).toBe(NATIVE_BACKEND_NAME);
  expect(native.shape).toEqual(cpu.shape);
  expect(native.dtype).toBe(cpu.dtype);
  const worst = native.data.reduce((max, value, index) => Math.max(max, Math.abs(value - cpu.data[index])), 0);
  const scale = relative ? cpu.data.reduce((max, value) => Math.max(max, Math.abs(value)), 0) : 1;
  expect(scale).toBeGreaterThan(0);
  expect(worst).toBeLessThanOrEqual(tolerance * scale);
}
