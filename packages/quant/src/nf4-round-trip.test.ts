import { describe, expect, it } from 'vitest';
import { NF4_CODE } from './nf4-code.js';
import { nf4RoundTrip } from './nf4-round-trip.js';

describe('nf4RoundTrip', () => {
  it('returns NF4 codes times each 64-block absmax, unchanged when the weight already is such values', () => {
    // Two blocks of 64: codes cycling through the table, absmax 2 and 0.5 (block 0 and 1 both hold code ±1).
    const weight = Float32Array.from({ length: 128 }, (_, index) => NF4_CODE[index % 16] * (index < 64 ? 2 : 0.5));
    expect(Array.from(nf4RoundTrip.roundTrip(weight, [4, 32], 4))).toEqual(Array.from(weight));
  });

  it('rounds every value to its block\'s nearest code point', () => {
    const weight = Float32Array.from({ length: 64 }, (_, index) => Math.sin(index) * 3);
    const absmax = Math.max(...weight.map(Math.abs));
    const result = nf4RoundTrip.roundTrip(weight, [8, 8], 4);
    result.forEach((value, index) => {
      const nearest = Math.min(...Array.from(NF4_CODE, (code) => Math.abs(code * absmax - weight[index])));
      expect(Math.abs(value - weight[index])).toBeCloseTo(nearest, 5);
    });
  });

  it('refuses other bit widths', () => {
    expect(() => nf4RoundTrip.roundTrip(new Float32Array(64), [8, 8], 2)).toThrow('nf4RoundTrip: quantizes to 4 bits, got loftq_bits 2');
  });
});
