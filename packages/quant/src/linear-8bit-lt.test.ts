import * as tf from '@tensorflow/tfjs-core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { expect, it } from 'vitest';
import { int8MatmulReference } from './int8-matmul-reference.js';
import { int8VectorwiseDequantize } from './int8-vectorwise-dequantize.js';
import { int8VectorwiseQuantize } from './int8-vectorwise-quantize.js';
import { Linear8bitLt } from './linear-8bit-lt.js';
import { float32BitDifferences, integerDifferences, quantFixtures, seededUniform } from './test/index.js';

/** Largest |actual − reference| relative to the largest |reference|. */
function relativeError(actual: tf.Tensor, reference: Float64Array): number {
  const scale = reference.reduce((max, value) => Math.max(max, Math.abs(value)), 0);
  return maxAbsDifference(actual, reference) / scale;
}

describeWithBackends('Linear8bitLt', () => {
  const fixtureWeight = quantFixtures().float32('weight');
  // Five tokens; columns 7 and 40 hold values beyond the threshold 6, and token 3 is all zeros.
  const inputValues = seededUniform(5 * 128, 21, -2, 2);
  inputValues[7] = 9;
  inputValues[2 * 128 + 40] = -7.5;
  inputValues.fill(0, 3 * 128, 4 * 128);

  it('stores bnb\'s CB and SCB', () => {
    const weight = tf.tensor2d(fixtureWeight, [64, 128]);
    const layer = Linear8bitLt.fromWeight(weight);
    const { quantized, rowStats } = layer.quantized();
    expect(integerDifferences(quantized, quantFixtures().int8('int8_q'))).toEqual([]);
    expect(float32BitDifferences(rowStats, quantFixtures().float32('int8_row_stats'))).toEqual([]);
    weight.dispose();
    layer.dispose();
  });

  it.each([6, 0])('threshold %d: forward equals the float64 LLM.int8() reference within 1e-4 relative', (threshold) => {
    const weight = tf.tensor2d(fixtureWeight, [64, 128]);
    const biasValues = seededUniform(64, 22);
    const bias = tf.tensor1d(biasValues);
    const layer = Linear8bitLt.fromWeight(weight, { threshold, bias });
    const input = tf.tensor3d(inputValues, [1, 5, 128]);
    const before = tf.memory().numTensors;
    const output = layer.forward(input);
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(output.shape).toEqual([1, 5, 64]);
    const reference = int8MatmulReference(inputValues, 5, layer.quantized(), threshold, biasValues);
    expect(relativeError(output, reference)).toBeLessThan(1e-4);
    // The zero token gives the bias alone.
    expect(maxAbsDifference(tf.slice(output, [0, 3, 0], [1, 1, 64]), biasValues)).toBe(0);
    tf.dispose([weight, bias, input, output]);
    layer.dispose();
  });

  it('outlier columns make a difference, as in the reference', () => {
    const weight = tf.tensor2d(fixtureWeight, [64, 128]);
    const input = tf.tensor2d(inputValues, [5, 128]);
    const [withOutliers, without] = [6, 0].map((threshold) => {
      const layer = Linear8bitLt.fromWeight(weight, { threshold });
      const output = layer.forward(input);
      layer.dispose();
      return output;
    });
    expect(maxAbsDifference(withOutliers, without)).toBeGreaterThan(1e-3);
    tf.dispose([weight, input, withOutliers, without]);
  });

  it('reduces inputs wider than 1024 columns in exact chunks', () => {
    const columns = 2100;
    const values = seededUniform(8 * columns, 23);
    const input = seededUniform(3 * columns, 24);
    // Same-sign rows push the integer sums past 2^24, where one float32 reduction would round.
    for (let index = 0; index < columns; index++) values[index] = 1;
    input.fill(1, 0, columns);
    const weight = tf.tensor2d(values, [8, columns]);
    const layer = Linear8bitLt.fromWeight(weight);
    const output = layer.forward(tf.tensor2d(input, [3, columns]));
    expect(relativeError(output, int8MatmulReference(input, 3, layer.quantized()))).toBeLessThan(1e-6);
    expect(output.dataSync()[0]).toBe(columns);
    tf.dispose([weight, output]);
    layer.dispose();
  });

  it('getBaseWeight is int8_vectorwise_dequant bit for bit; setBaseWeight re-quantizes in place', async () => {
    const weight = tf.tensor2d(fixtureWeight, [64, 128]);
    const layer = Linear8bitLt.fromWeight(weight, { threshold: 6 });
    const base = layer.weightAccess.getBaseWeight();
    expect(float32BitDifferences(base.dataSync() as Float32Array, int8VectorwiseDequantize(layer.quantized()))).toEqual([]);
    expect(float32BitDifferences(base.dataSync() as Float32Array, quantFixtures().float32('int8_dequant'))).toEqual([]);
    const replacement = seededUniform(64 * 128, 25, -3, 3);
    const replacementTensor = tf.tensor2d(replacement, [64, 128]);
    const memory = tf.memory();
    await layer.weightAccess.setBaseWeight(replacementTensor);
    expect(tf.memory().numBytes).toBe(memory.numBytes);
    expect(tf.memory().numTensors).toBe(memory.numTensors);
    const { quantized, rowStats } = int8VectorwiseQuantize(replacement, 64, 128);
    expect(layer.quantized()).toEqual({ quantized, rowStats, rows: 64, columns: 128 });
    tf.dispose([weight, base, replacementTensor]);
    layer.dispose();
  });

  it('passes the gradient to the input through the dequantized weight', () => {
    const weight = tf.tensor2d(fixtureWeight, [64, 128]);
    const layer = Linear8bitLt.fromWeight(weight, { threshold: 6 });
    const dequantized = layer.weightAccess.getBaseWeight();
    const input = tf.tensor2d(inputValues, [5, 128]);
    const upstream = tf.tensor2d(seededUniform(5 * 64, 26), [5, 64]);
    const gradient = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(layer.forward(x), upstream)))(input);
    expect(maxAbsDifference(gradient, tf.matMul(upstream, dequantized))).toBeLessThan(1e-5);
    tf.dispose([weight, dequantized, input, upstream, gradient]);
    layer.dispose();
  });

  it('holds a [256, 512] weight in ≤ 1.02 bytes per parameter (tf.memory)', () => {
    const weight = tf.tensor2d(seededUniform(256 * 512, 27), [256, 512]);
    const before = tf.memory().numBytes;
    const layer = Linear8bitLt.fromWeight(weight);
    const bytesPerParameter = (tf.memory().numBytes - before) / (256 * 512);
    expect(bytesPerParameter).toBeCloseTo(1 + 4 / 512, 10);
    expect(bytesPerParameter).toBeLessThanOrEqual(1.02);
    weight.dispose();
    layer.dispose();
  });

  it('names the layer in its errors', async () => {
    const weight = tf.tensor2d(fixtureWeight, [64, 128]);
    const layer = Linear8bitLt.fromWeight(weight);
    expect(() => layer.forward(tf.zeros([2, 64]))).toThrow(/Linear8bitLt: input has 64 features, the layer takes 128/);
    await expect(async () => layer.weightAccess.setBaseWeight(tf.zeros([128, 64]))).rejects.toThrow(/Linear8bitLt: setBaseWeight expects \[64, 128\]/);
    expect(() => Linear8bitLt.fromWeight(weight, { threshold: -1 })).toThrow(/Linear8bitLt: threshold must be ≥ 0/);
    expect(() => Linear8bitLt.fromWeight(weight, { bias: tf.zeros([3]) })).toThrow(/Linear8bitLt: bias must be \[64\]/);
    const { quantized, rowStats } = layer.quantized();
    expect(() => new Linear8bitLt({ quantized, rowStats: rowStats.subarray(1), rows: 64, columns: 128 })).toThrow(
      /Linear8bitLt: \[64, 128\] needs 8192 codes and 64 row stats, got 8192 and 63/,
    );
    weight.dispose();
    layer.dispose();
  });
});
