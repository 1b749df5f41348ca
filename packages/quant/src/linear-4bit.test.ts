import * as tf from '@tensorflow/tfjs-core';
import { linear } from '@peft-ts/core/internal';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { expect, it } from 'vitest';
import { dequantize4bit } from './dequantize-4bit.js';
import { Linear4bit } from './linear-4bit.js';
import { quantize4bit } from './quantize-4bit.js';
import { float32BitDifferences, integerDifferences, quantFixtures, seededUniform } from './test/index.js';

const variants = [
  { quantType: 'nf4', compressStatistics: false },
  { quantType: 'nf4', compressStatistics: true },
  { quantType: 'fp4', compressStatistics: false },
  { quantType: 'fp4', compressStatistics: true },
] as const;

/** Allocated bytes per weight of a [256, 512] layer, measured with tf.memory(). */
function measuredBytesPerParameter(create: (weight: tf.Tensor) => { dispose(): void }): number {
  const weight = tf.tensor2d(seededUniform(256 * 512, 3), [256, 512]);
  const before = tf.memory().numBytes;
  const layer = create(weight);
  const bytes = tf.memory().numBytes - before;
  layer.dispose();
  weight.dispose();
  return bytes / (256 * 512);
}

describeWithBackends('Linear4bit', () => {
  const fixtureWeight = quantFixtures().float32('weight');

  it.each(variants)('$quantType (double quant $compressStatistics): bnb codes; getBaseWeight is dequantize_4bit bit for bit', (variant) => {
    const weight = tf.tensor2d(fixtureWeight, [64, 128]);
    const layer = Linear4bit.fromWeight(weight, variant);
    const { packed, state } = layer.quantized();
    const fixtures = quantFixtures();
    const prefix = `${variant.quantType}${variant.compressStatistics ? '_dq' : ''}`;
    // The CUDA bytes (fixtures README): FP4 differs from the torch backend only in ±0 nibbles.
    expect(integerDifferences(packed, fixtures.uint8(`${variant.quantType}_packed_cuda_tree`))).toEqual([]);
    const base = layer.weightAccess.getBaseWeight();
    expect(base.shape).toEqual([64, 128]);
    expect(float32BitDifferences(base.dataSync() as Float32Array, dequantize4bit(packed, state))).toEqual([]);
    expect(maxAbsDifference(base, fixtures.float32(`${prefix}_dequant`))).toBe(0);
    tf.dispose([weight, base]);
    layer.dispose();
  });

  it.each(variants)('$quantType (double quant $compressStatistics): forward equals linear(x, dequantized) + b, any rank', (variant) => {
    const weight = tf.tensor2d(fixtureWeight, [64, 128]);
    const bias = tf.tensor1d(seededUniform(64, 5));
    const layer = Linear4bit.fromWeight(weight, { ...variant, bias });
    const { packed, state } = layer.quantized();
    const dequantized = tf.tensor2d(dequantize4bit(packed, state), [64, 128]);
    const input = tf.tensor3d(seededUniform(2 * 3 * 128, 7, -2, 2), [2, 3, 128]);
    const before = tf.memory().numTensors;
    const output = layer.forward(input);
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(output.shape).toEqual([2, 3, 64]);
    expect(maxAbsDifference(output, linear(input, dequantized, bias))).toBeLessThan(1e-5);
    tf.dispose([weight, bias, dequantized, input, output]);
    layer.dispose();
  });

  it('passes the gradient to the input through the dequantized weight', () => {
    const weight = tf.tensor2d(fixtureWeight, [64, 128]);
    const layer = Linear4bit.fromWeight(weight, { quantType: 'nf4' });
    const dequantized = layer.weightAccess.getBaseWeight();
    const input = tf.tensor2d(seededUniform(3 * 128, 8), [3, 128]);
    const upstream = tf.tensor2d(seededUniform(3 * 64, 9), [3, 64]);
    const gradient = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(layer.forward(x), upstream)))(input);
    expect(maxAbsDifference(gradient, tf.matMul(upstream, dequantized))).toBeLessThan(1e-5);
    tf.dispose([weight, dequantized, input, upstream, gradient]);
    layer.dispose();
  });

  it('holds NF4 + double quant in ≤ 0.52 bytes per parameter, NF4 and FP4 in ≤ 0.57 (tf.memory)', () => {
    const nf4DoubleQuant = measuredBytesPerParameter((weight) => Linear4bit.fromWeight(weight, { quantType: 'nf4', compressStatistics: true }));
    const nf4 = measuredBytesPerParameter((weight) => Linear4bit.fromWeight(weight, { quantType: 'nf4', compressStatistics: false }));
    const fp4 = measuredBytesPerParameter((weight) => Linear4bit.fromWeight(weight, { quantType: 'fp4', compressStatistics: false }));
    // Codes 0.5, absmax codes 1/64, nested absmax 4/(64·256); plain absmax 4/64.
    expect(nf4DoubleQuant).toBeCloseTo(0.5 + 1 / 64 + 4 / (64 * 256), 10);
    expect(nf4DoubleQuant).toBeLessThanOrEqual(0.52);
    expect(nf4).toBeCloseTo(0.5 + 4 / 64, 10);
    expect(fp4).toBe(nf4);
  });

  it.each([false, true])('setBaseWeight re-quantizes in place (double quant %s)', async (compressStatistics) => {
    const weight = tf.tensor2d(fixtureWeight, [64, 128]);
    const layer = Linear4bit.fromWeight(weight, { quantType: 'nf4', compressStatistics });
    const replacement = seededUniform(64 * 128, 12, -3, 3);
    const expected = quantize4bit(replacement, { quantType: 'nf4', compressStatistics, shape: [64, 128] });
    const replacementTensor = tf.tensor2d(replacement, [64, 128]);
    const memory = tf.memory();
    await layer.weightAccess.setBaseWeight(replacementTensor);
    expect(tf.memory().numBytes).toBe(memory.numBytes);
    expect(tf.memory().numTensors).toBe(memory.numTensors);
    expect(layer.quantized()).toEqual(expected);
    const base = layer.weightAccess.getBaseWeight();
    expect(float32BitDifferences(base.dataSync() as Float32Array, dequantize4bit(expected.packed, expected.state))).toEqual([]);
    tf.dispose([weight, replacementTensor, base]);
    layer.dispose();
  });

  it('handles sizes that are not a multiple of the blocksize (odd count, short last block)', () => {
    const values = seededUniform(7 * 9, 4);
    const weight = tf.tensor2d(values, [7, 9]);
    const layer = Linear4bit.fromWeight(weight, { quantType: 'fp4', compressStatistics: true });
    const { packed, state } = quantize4bit(values, { quantType: 'fp4', compressStatistics: true, shape: [7, 9] });
    const base = layer.weightAccess.getBaseWeight();
    expect(float32BitDifferences(base.dataSync() as Float32Array, dequantize4bit(packed, state))).toEqual([]);
    tf.dispose([weight, base]);
    layer.dispose();
  });

  it('names the layer in its errors', async () => {
    const weight = tf.tensor2d(fixtureWeight, [64, 128]);
    const layer = Linear4bit.fromWeight(weight);
    expect(() => layer.forward(tf.zeros([2, 64]))).toThrow(/Linear4bit: input has 64 features, the layer takes 128/);
    await expect(layer.weightAccess.setBaseWeight(tf.zeros([128, 64]))).rejects.toThrow(/Linear4bit: setBaseWeight expects \[64, 128\]/);
    expect(() => Linear4bit.fromWeight(weight, { bias: tf.zeros([3]) })).toThrow(/Linear4bit: bias must be \[64\]/);
    expect(() => Linear4bit.fromWeight(tf.zeros([64]))).toThrow(/Linear4bit: the weight must be \[out, in\]/);
    const { packed, state } = layer.quantized();
    expect(() => new Linear4bit({ packed: packed.subarray(1), state })).toThrow(/Linear4bit: \[64,128\] needs 4096 packed bytes, got 4095/);
    weight.dispose();
    layer.dispose();
  });
});
