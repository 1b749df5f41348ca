import * as tf from '@tensorflow/tfjs-core';
import { Linear, manualSeed } from '@peft-ts/core';
import { initBackend, nativeBackendAvailable } from '@peft-ts/core/backend';
import { describe, expect, it } from 'vitest';
import { LoraLinear } from './lora-linear.js';

/** Deterministic values in [-1, 1), the same on every backend. */
function values(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let index = 0; index < count; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[index] = state / 2 ** 31 - 1;
  }
  return out;
}

type Setup = {
  leading: number[];
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
  dropout?: number;
  useRslora?: boolean;
  /** Further active adapters (then no single adapter to fuse). */
  extraAdapters?: number;
  trainableBias?: boolean;
};

function filled(shape: number[], seed: number) {
  return tf.tensor(values(tf.util.sizeFromShape(shape), seed), shape);
}

/** A LoRA layer over a frozen Linear, as LoraModel leaves it for training, with non-zero A and B everywhere. */
function buildLayer(setup: Setup): LoraLinear {
  const { inFeatures, outFeatures } = setup;
  const base = new Linear(inFeatures, outFeatures, { bias: setup.bias });
  base.weight.set(filled([outFeatures, inFeatures], 1));
  base.weight.requiresGrad = false;
  if (base.bias) {
    base.bias.set(filled([outFeatures], 2));
    base.bias.requiresGrad = setup.trainableBias ?? false;
  }
  const layer = new LoraLinear(base);
  const names = Array.from({ length: 1 + (setup.extraAdapters ?? 0) }, (_, index) => `adapter${index}`);
  names.forEach((name, index) => {
    const r = 4 + index;
    layer.addAdapter(name, { r, alpha: 8, dropout: setup.dropout ?? 0, initLoraWeights: false, useRslora: setup.useRslora ?? false, useDora: false });
    layer.loraA(name).weight.set(filled([r, inFeatures], 3 + 2 * index));
    layer.loraB(name).weight.set(filled([outFeatures, r], 4 + 2 * index));
  });
  layer.setActiveAdapters(names);
  return layer.train();
}

/** The output, Σ output·dy and its gradients for x, every A and B (and a trainable bias), with the kernels that ran. */
async function forwardAndGradients(backend: 'native' | 'cpu', setup: Setup) {
  await initBackend(backend);
  const layer = buildLayer(setup);
  const x = tf.variable(filled([...setup.leading, setup.inFeatures], 10));
  const dy = filled([...setup.leading, setup.outFeatures], 11);
  const trainables = [x, ...layer.parameters().filter((parameter) => parameter.requiresGrad).map((parameter) => parameter.value)];
  // The same dropout masks on both backends: tf.dropout draws them in JavaScript from the seed.
  manualSeed(5);
  const profile = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.forward(x), dy)), trainables);
    return [value, ...trainables.map((variable) => grads[variable.name])];
  });
  manualSeed(5);
  const output = tf.tidy(() => layer.forward(x).dataSync() as Float32Array);
  const results = (profile.result as tf.Tensor[]).map((tensor) => tensor.dataSync() as Float32Array);
  tf.dispose([x, dy, ...(profile.result as tf.Tensor[])]);
  layer.dispose();
  return { outputs: [output, ...results], kernels: new Set(profile.kernels.map((kernel) => kernel.name)) };
}

function expectRelativelyClose(actual: Float32Array[], expected: Float32Array[], tolerance = 1e-5) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((got, index) => {
    expect(got.length).toBe(expected[index].length);
    const magnitude = expected[index].reduce((max, value) => Math.max(max, Math.abs(value)), 0);
    const worst = got.reduce((max, value, element) => Math.max(max, Math.abs(value - expected[index][element])), 0);
    expect(worst).toBeLessThanOrEqual(tolerance * Math.max(magnitude, 1e-30));
  });
}

describe.skipIf(!(await nativeBackendAvailable()))('LoraLinear through the fused native kernels against separate ops on cpu', () => {
  const fusedCases: [string, Setup][] = [
    ['a 2-D input without bias', { leading: [9], inFeatures: 10, outFeatures: 20, bias: false }],
    ['a [4, 64, 48] input with bias', { leading: [4, 64], inFeatures: 48, outFeatures: 40, bias: true }],
    ['dropout on the adapter branch', { leading: [2, 33], inFeatures: 24, outFeatures: 16, bias: true, dropout: 0.25 }],
    ['rsLoRA scaling', { leading: [3, 7], inFeatures: 32, outFeatures: 12, bias: false, useRslora: true }],
  ];
  for (const [name, setup] of fusedCases) {
    it(`${name}: output and gradients for x, A and B`, async () => {
      const native = await forwardAndGradients('native', setup);
      const cpu = await forwardAndGradients('cpu', setup);
      expect(native.kernels).toContain('PeftLoraLinear');
      expect(native.kernels).toContain('PeftLoraLinearGrad');
      expect(cpu.kernels).not.toContain('PeftLoraLinear');
      expect(native.outputs.length).toBe(5);
      expectRelativelyClose(native.outputs, cpu.outputs);
    });
  }

  const fallbackCases: [string, Setup][] = [
    ['two active adapters', { leading: [5], inFeatures: 12, outFeatures: 8, bias: true, extraAdapters: 1 }],
    ['a trainable base bias', { leading: [5], inFeatures: 12, outFeatures: 8, bias: true, trainableBias: true }],
  ];
  for (const [name, setup] of fallbackCases) {
    it(`${name}: the separate ops, with cpu's values`, async () => {
      const native = await forwardAndGradients('native', setup);
      const cpu = await forwardAndGradients('cpu', setup);
      expect(native.kernels).not.toContain('PeftLoraLinear');
      expect(native.outputs.length).toBeGreaterThan(5);
      expectRelativelyClose(native.outputs, cpu.outputs);
    });
  }
});
