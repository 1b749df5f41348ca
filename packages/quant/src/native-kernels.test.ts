import * as tf from '@tensorflow/tfjs-core';
import { initBackend, nativeBackendAvailable } from '@peft-ts/core/backend';
import { describe, expect, it } from 'vitest';
import { Linear4bit } from './linear-4bit.js';
import { Linear8bitLt } from './linear-8bit-lt.js';
import { seededUniform } from './test/index.js';

type Layer = Linear4bit | Linear8bitLt;

/** Forward and input gradient of a layer built on `backend` from the same float weight, and the kernels they ran. */
async function forwardAndGradient(backend: 'native' | 'cpu', build: (weight: tf.Tensor2D) => Layer, weightShape: [number, number], inputShape: number[]) {
  await initBackend(backend);
  const weight = tf.tensor2d(seededUniform(weightShape[0] * weightShape[1], 31, -1, 1), weightShape);
  const layer = build(weight);
  const input = tf.tensor(seededUniform(tf.util.sizeFromShape(inputShape), 32, -3, 3), inputShape);
  const upstream = tf.tensor(seededUniform(tf.util.sizeFromShape([...inputShape.slice(0, -1), weightShape[0]]), 33, -1, 1), [...inputShape.slice(0, -1), weightShape[0]]);
  let output: Float32Array = new Float32Array();
  const profile = await tf.profile(() => {
    const gradient = tf.grad((x: tf.Tensor) => {
      const y = layer.forward(x);
      output = y.dataSync() as Float32Array;
      return tf.sum(tf.mul(y, upstream));
    })(input);
    return gradient;
  });
  const gradient = (profile.result as tf.Tensor).dataSync() as Float32Array;
  tf.dispose([weight, input, upstream, profile.result as tf.Tensor]);
  layer.dispose();
  return { output, gradient, kernels: new Set(profile.kernelNames) };
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((max, value, index) => Math.max(max, Math.abs(value - b[index])), 0);
}

describe.skipIf(!(await nativeBackendAvailable()))('quantized layers on the native backend', () => {
  // Odd widths put row starts on odd nibbles; 1100 inputs and 300 outputs span more than one weight tile each way.
  const cases: [string, Parameters<typeof Linear4bit.fromWeight>[1], [number, number], number[]][] = [
    ['NF4 + double quant', { quantType: 'nf4', blocksize: 64, compressStatistics: true }, [37, 75], [2, 5, 75]],
    ['FP4', { quantType: 'fp4', blocksize: 128, compressStatistics: false }, [300, 1100], [9, 1100]],
    ['NF4, one output', { quantType: 'nf4', blocksize: 64, compressStatistics: true }, [1, 64], [3, 64]],
  ];
  for (const [name, options, weightShape, inputShape] of cases) {
    it(`Linear4bit (${name}, [${weightShape}]) multiplies through the fused native kernel, as cpu computes`, async () => {
      const build = (weight: tf.Tensor2D) => Linear4bit.fromWeight(weight, options);
      const native = await forwardAndGradient('native', build, weightShape, inputShape);
      const cpu = await forwardAndGradient('cpu', build, weightShape, inputShape);
      expect(native.kernels.has('PeftMatMul4bit')).toBe(true);
      expect(native.kernels.has('PeftDequantize4bit')).toBe(false);
      expect(maxDifference(native.output, cpu.output)).toBeLessThan(1e-4);
      expect(maxDifference(native.gradient, cpu.gradient)).toBeLessThan(1e-4);
    });
  }

  it.each([0, 1.5])('Linear8bitLt (threshold %d) multiplies by the stored codes natively, as cpu computes', async (threshold) => {
    const build = (weight: tf.Tensor2D) => Linear8bitLt.fromWeight(weight, { threshold });
    // 1100 columns: the exact integer sums run over two 1024-column slices.
    const native = await forwardAndGradient('native', build, [270, 1100], [4, 1100]);
    const cpu = await forwardAndGradient('cpu', build, [270, 1100], [4, 1100]);
    expect(native.kernels.has('PeftMatMulInt8')).toBe(true);
    expect(native.kernels.has('PeftInt8Codes')).toBe(false);
    expect(maxDifference(native.output, cpu.output)).toBeLessThan(1e-4);
    expect(maxDifference(native.gradient, cpu.gradient)).toBeLessThan(1e-4);
  });
});
