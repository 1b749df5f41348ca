import { describe, expect, it } from 'vitest';
import { dequantize4bit } from './dequantize-4bit.js';
import { dequantizeAbsmax } from './dequantize-absmax.js';
import { doubleQuantizeAbsmax } from './double-quantize-absmax.js';
import { DYNAMIC_MAP } from './dynamic-map.js';
import type { QuantType } from './quant-state.js';
import { quantize4bit } from './quantize-4bit.js';
import { float32BitDifferences, integerDifferences, quantFixtures, seededUniform } from './test/index.js';

const fixtures = quantFixtures();
const weight = fixtures.float32('weight');

describe('double quantization against the bnb fixture', () => {
  for (const quantType of ['nf4', 'fp4'] as QuantType[]) {
    const fixture = (suffix: string): Float32Array => fixtures.float32(`${quantType}_dq_${suffix}`);
    const plain = quantize4bit(weight, { quantType, shape: [64, 128] });
    const { packed, state } = quantize4bit(weight, { quantType, shape: [64, 128], compressStatistics: true });
    const nested = state.nested!;

    it(`${quantType}: 8-bit codes, offset and nested absmax equal ${quantType}_dq_* bit for bit`, () => {
      expect(integerDifferences(nested.codes, fixtures.uint8(`${quantType}_dq_absmax_q8`))).toEqual([]);
      expect(float32BitDifferences(Float32Array.of(nested.offset), fixture('offset'))).toEqual([]);
      expect(float32BitDifferences(nested.absmax, fixture('state2_absmax'))).toEqual([]);
      expect(nested.blocksize).toBe(256);
      expect(state.absmax).toBeUndefined();
    });

    it(`${quantType}: restored absmax and dequantization equal ${quantType}_dq_absmax_dequant, _dq_dequant`, () => {
      expect(float32BitDifferences(dequantizeAbsmax(state), fixture('absmax_dequant'))).toEqual([]);
      expect(float32BitDifferences(dequantize4bit(packed, state), fixture('dequant'))).toEqual([]);
    });

    it(`${quantType}: the 4-bit codes do not depend on double quantization`, () => {
      expect(integerDifferences(packed, plain.packed)).toEqual([]);
    });
  }

  it('spans several nested blocks of 256, each code the nearest map entry', () => {
    const absmax = seededUniform(600, 11, 0.5, 4);
    const nested = doubleQuantizeAbsmax(absmax);
    expect(nested.absmax).toHaveLength(3);
    const chunkAbsmax = (block: number): number => nested.absmax[Math.floor(block / 256)];
    for (let block = 0; block < 600; block++) {
      const scaled = (absmax[block] - nested.offset) / chunkAbsmax(block);
      const distances = Array.from(DYNAMIC_MAP, (value) => Math.abs(value - scaled));
      expect(distances[nested.codes[block]]).toBeLessThanOrEqual(Math.min(...distances) + 1e-7);
    }
    const restored = dequantizeAbsmax({ quantType: 'nf4', blocksize: 64, shape: [600 * 64], dtype: 'float32', nested });
    // The widest gap of the dynamic map is 0.014: half of it, times the chunk's absmax, bounds the error.
    restored.forEach((value, block) => {
      expect(Math.abs(value - absmax[block])).toBeLessThan(0.0071 * chunkAbsmax(block));
    });
  });
});
