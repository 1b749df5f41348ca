import { describe, expect, it } from 'vitest';
import { dequantize4bit } from './dequantize-4bit.js';
import { dequantize4bitTransposed } from './dequantize-4bit-transposed.js';
import { quantize4bit } from './quantize-4bit.js';
import { float32BitDifferences, quantFixtures, seededUniform } from './test/index.js';

/** Row-major [rows, columns] values as row-major [columns, rows]. */
function transpose(values: Float32Array, rows: number, columns: number): Float32Array {
  return Float32Array.from({ length: values.length }, (_, index) => values[(index % rows) * columns + Math.floor(index / rows)]);
}

describe('dequantize4bitTransposed', () => {
  it.each([
    ['nf4', false],
    ['nf4', true],
    ['fp4', false],
    ['fp4', true],
  ] as const)('%s (double quant %s): the transpose of dequantize4bit, bit for bit', (quantType, compressStatistics) => {
    const { packed, state } = quantize4bit(quantFixtures().float32('weight'), { quantType, compressStatistics, shape: [64, 128] });
    const expected = transpose(dequantize4bit(packed, state), 64, 128);
    expect(float32BitDifferences(dequantize4bitTransposed(packed, state), expected)).toEqual([]);
  });

  it('handles odd rows and columns (codes straddling rows, a partial row tile and a short last block)', () => {
    const { packed, state } = quantize4bit(seededUniform(13 * 71, 5, -3, 3), { quantType: 'nf4', compressStatistics: true, shape: [13, 71] });
    expect(float32BitDifferences(dequantize4bitTransposed(packed, state), transpose(dequantize4bit(packed, state), 13, 71))).toEqual([]);
  });

  it('rejects states it cannot lay out', () => {
    const { packed, state } = quantize4bit(seededUniform(128, 6), { quantType: 'nf4', shape: [128] });
    expect(() => dequantize4bitTransposed(packed, state)).toThrow(/needs a 2-D state, got \[128\]/);
    expect(() => dequantize4bitTransposed(packed.subarray(1), { ...state, shape: [2, 64] })).toThrow(/needs 64 bytes and 2 absmax values, got 63 and 2/);
  });
});
