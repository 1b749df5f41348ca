import * as tf from '@tensorflow/tfjs-core';
import { RMSNorm } from '@peft-ts/core';
import { hasFusedKernel } from '@peft-ts/core/internal';
import { initBackend, nativeBackendAvailable } from '@peft-ts/core/backend';
import { describe, expect, it } from 'vitest';
import { swiGlu } from './swiglu.js';

/** Deterministic values in [-scale, scale). */
function values(count: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let index = 0; index < count; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[index] = (state / 2 ** 31 - 1) * scale;
  }
  return out;
}

/** The outputs of `compute` on each backend, flattened; each input gets the same values everywhere. */
async function onBackends(backends: string[], shapes: number[][], compute: (...inputs: tf.Tensor[]) => tf.Tensor[], scale = 1) {
  const results: Float32Array[][] = [];
  for (const backend of backends) {
    await initBackend(backend as 'cpu' | 'native');
    results.push(tf.tidy(() => compute(...shapes.map((shape, index) => tf.tensor(values(tf.util.sizeFromShape(shape), index + 1, scale), shape))).map((result) => result.dataSync() as Float32Array)));
  }
  return results;
}

function expectRelativelyClose(actual: Float32Array[], expected: Float32Array[], tolerance = 1e-5) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((values, output) => {
    expect(values.length).toBe(expected[output].length);
    const magnitude = expected[output].reduce((max, value) => Math.max(max, Math.abs(value)), 0);
    const worst = values.reduce((max, value, index) => Math.max(max, Math.abs(value - expected[output][index])), 0);
    expect(worst).toBeLessThanOrEqual(tolerance * Math.max(magnitude, 1e-30));
  });
}

const available = await nativeBackendAvailable();

describe.skipIf(!available)('fused layer kernels on native against the tf-op composition on cpu', () => {
  it('native registers them, cpu does not', async () => {
    await initBackend('native');
    for (const name of ['PeftRmsNorm', 'PeftRmsNormGrad', 'PeftSwiGlu', 'PeftSwiGluGrad']) expect(hasFusedKernel(name)).toBe(true);
    await initBackend('cpu');
    expect(hasFusedKernel('PeftRmsNorm')).toBe(false);
  });

  const shapes = [[1, 7], [3, 5, 33], [2, 1, 512]];
  for (const shape of shapes) {
    for (const trainable of [true, false]) {
      it(`RMSNorm over [${shape}], weight ${trainable ? 'trainable' : 'frozen'}: values and gradients`, async () => {
        const compute = (x: tf.Tensor, weightValues: tf.Tensor, dy: tf.Tensor) => {
          const norm = new RMSNorm(shape[shape.length - 1], 1e-5);
          norm.weight.value.assign(tf.reshape(tf.add(weightValues, 1.5), [-1]));
          norm.weight.value.trainable = trainable;
          const parameters = trainable ? [x, norm.weight.value] : [x];
          const { value, grads } = tf.valueAndGrads((...inputs: tf.Tensor[]) => tf.sum(tf.mul(norm.forward(inputs[0]), dy)))(parameters);
          const outputs = [norm.forward(x), value, ...grads];
          return outputs;
        };
        const [native, cpu] = await onBackends(['native', 'cpu'], [shape, [shape[shape.length - 1]], shape], compute, 3);
        expectRelativelyClose(native, cpu);
      });
    }
  }

  for (const [shape, scale] of [[[1, 1], 1], [[4, 37], 3], [[3, 8, 301], 30]] as const) {
    it(`SwiGLU over [${shape}], values up to ${scale}: values and gradients`, async () => {
      const compute = (gate: tf.Tensor, up: tf.Tensor, dy: tf.Tensor) => {
        const { value, grads } = tf.valueAndGrads((g: tf.Tensor, u: tf.Tensor) => tf.sum(tf.mul(swiGlu(g, u), dy)))([gate, up]);
        return [swiGlu(gate, up), value, ...grads];
      };
      const [native, cpu] = await onBackends(['native', 'cpu'], [[...shape], [...shape], [...shape]], compute, scale);
      expectRelativelyClose(native, cpu);
    });
  }
});
