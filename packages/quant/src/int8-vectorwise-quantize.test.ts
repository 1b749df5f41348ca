import { describe, expect, it } from 'vitest';
import { int8VectorwiseDequantize } from './int8-vectorwise-dequantize.js';
import { int8VectorwiseQuantize } from './int8-vectorwise-quantize.js';
import { roundHalfToEven } from './round-half-to-even.js';
import { float32BitDifferences, integerDifferences, quantFixtures } from './test/index.js';

const fixtures = quantFixtures();
const weight = fixtures.float32('weight');

describe('int8VectorwiseQuantize against the bnb fixture (weight [64,128])', () => {
  it('threshold 0: q, row stats and dequantization equal int8_q, int8_row_stats, int8_dequant bit for bit', () => {
    const quantized = int8VectorwiseQuantize(weight, 64, 128);
    expect(integerDifferences(quantized.quantized, fixtures.int8('int8_q'))).toEqual([]);
    expect(float32BitDifferences(quantized.rowStats, fixtures.float32('int8_row_stats'))).toEqual([]);
    expect([...quantized.outlierColumns]).toEqual([]);
    expect(float32BitDifferences(int8VectorwiseDequantize(quantized), fixtures.float32('int8_dequant'))).toEqual([]);
  });

  it('threshold 3.5: outlier columns, zeroed q and row stats without outliers equal int8_t3.5_*', () => {
    const quantized = int8VectorwiseQuantize(weight, 64, 128, 3.5);
    expect([...quantized.outlierColumns]).toEqual(Array.from(fixtures.int64('int8_t3.5_outlier_cols'), Number));
    expect(integerDifferences(quantized.quantized, fixtures.int8('int8_t3.5_q'))).toEqual([]);
    expect(float32BitDifferences(quantized.rowStats, fixtures.float32('int8_t3.5_row_stats'))).toEqual([]);
  });

  it('dequantizes as (q·SCB)·fp32(1/127); a division by 127 would differ', () => {
    const quantized = int8VectorwiseQuantize(weight, 64, 128);
    const { quantized: codes, rowStats } = quantized;
    const divided = Float32Array.from(codes, (q, index) => Math.fround(q * rowStats[Math.floor(index / 128)]) / 127);
    expect(float32BitDifferences(divided, fixtures.float32('int8_dequant')).length).toBeGreaterThan(0);
  });
});

describe('int8VectorwiseQuantize rules', () => {
  it('spec G.1 rows', () => {
    const quantized = int8VectorwiseQuantize(Float32Array.of(0.5, -1, 0.25, 2, 0.1, -0.3), 2, 3);
    expect([...quantized.rowStats]).toEqual([1, 2]);
    expect([...quantized.quantized]).toEqual([64, -127, 32, 127, 6, -19]);
    const restored = int8VectorwiseDequantize(quantized);
    [0.503937, -1, 0.251969].forEach((value, index) => expect(restored[index]).toBeCloseTo(value, 6));
  });

  it('takes 127/SCB as reciprocal times 127 (torch), which can round differently from a division', () => {
    const rowStat = Math.fround(3.8202731609344482);
    const value = Math.fround(0.04512133449316025);
    const { quantized } = int8VectorwiseQuantize(Float32Array.of(rowStat, value), 1, 2);
    expect(quantized[1]).toBe(2);
    expect(roundHalfToEven(Math.fround(value * Math.fround(127 / rowStat)))).toBe(1);
  });

  it('quantizes an all-zero row to zeros with stat 0', () => {
    const quantized = int8VectorwiseQuantize(Float32Array.of(0, 0, 1, -2), 2, 2);
    expect([...quantized.rowStats]).toEqual([0, 2]);
    expect([...quantized.quantized]).toEqual([0, 0, 64, -127]);
  });

  it('with a threshold, zeroes whole outlier columns but keeps their small values in other rows\' stats', () => {
    const values = Float32Array.of(1, 4, 0.5, 0.25, 2, 0.5);
    const quantized = int8VectorwiseQuantize(values, 2, 3, 3.5);
    expect([...quantized.outlierColumns]).toEqual([1]);
    expect([...quantized.rowStats]).toEqual([1, 2]);
    expect([...quantized.quantized]).toEqual([127, 0, 64, 16, 0, 32]);
    // |x| equal to the threshold is an outlier.
    expect([...int8VectorwiseQuantize(Float32Array.of(3.5, 1), 1, 2, 3.5).outlierColumns]).toEqual([0]);
  });

  it('rejects a size mismatch', () => {
    expect(() => int8VectorwiseQuantize(new Float32Array(5), 2, 3)).toThrow(/needs 6/);
  });
});

describe('roundHalfToEven', () => {
  it('rounds ties to even like rintf', () => {
    const values = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 63.5, 2.4999999, -3.5000001, 7];
    expect(values.map(roundHalfToEven)).toEqual([0, 2, 2, -0, -2, -2, 64, 2, -4, 7]);
  });
});
