import { describe, expect, it } from 'vitest';
import { loftqQuantizer, normalFloatRoundTrip, normalMap } from './loftq-quantizer.js';
import { NF4_CODE } from './nf4-code.js';
import { nf4RoundTrip } from './nf4-round-trip.js';

describe('loftqQuantizer', () => {
  it('builds the normal map bitsandbytes built NF4 from: 4 bits gives the NF4 table exactly', () => {
    expect(Array.from(normalMap(4))).toEqual(Array.from(NF4_CODE));
  });

  it('has 2^bits sorted levels from −1 to 1 with one zero, more of them positive', () => {
    for (const bits of [2, 8]) {
      const map = normalMap(bits);
      expect(map.length).toBe(2 ** bits);
      expect([map[0], map[map.length - 1]]).toEqual([-1, 1]);
      expect(map.filter((value) => value === 0).length).toBe(1);
      expect(map.filter((value) => value > 0).length).toBe(2 ** bits / 2);
      for (let index = 1; index < map.length; index++) expect(map[index]).toBeGreaterThan(map[index - 1]);
    }
    // 2 bits: −1, 0 and the quantiles at 0.9677083 (→ 1) and 0.73385415, over Φ⁻¹(0.9677083) ≈ 1.8481.
    expect(normalMap(2)[2]).toBeCloseTo(0.6245 / 1.8481, 3);
  });

  it('rounds each value to the nearest level times its 64-block absmax; zero blocks stay zero', () => {
    const weight = Float32Array.from({ length: 128 }, (_, index) => (index < 64 ? Math.cos(index) * 0.3 : 0));
    const levels = normalMap(2);
    const absmax = Math.max(...weight.subarray(0, 64).map(Math.abs));
    const result = normalFloatRoundTrip(weight, [2, 64], 2);
    for (let index = 0; index < 64; index++) {
      const nearest = Math.min(...Array.from(levels, (level) => Math.abs(level * absmax - weight[index])));
      expect(Math.abs(result[index] - weight[index])).toBeCloseTo(nearest, 6);
    }
    expect(Array.from(result.subarray(64)).every((value) => value === 0)).toBe(true);
    expect(new Set(Array.from(loftqQuantizer.roundTrip(weight, [2, 64], 8).subarray(0, 64))).size).toBeGreaterThan(new Set(Array.from(result.subarray(0, 64))).size);
  });

  it('uses bitsandbytes NF4 for 4 bits and refuses sizes and widths PEFT refuses', () => {
    const weight = Float32Array.from({ length: 64 }, (_, index) => Math.sin(index));
    expect(loftqQuantizer.roundTrip(weight, [8, 8], 4)).toEqual(nf4RoundTrip.roundTrip(weight, [8, 8], 4));
    expect(() => loftqQuantizer.roundTrip(new Float32Array(60), [6, 10], 2)).toThrow('weight with shape (6 x 10) is not dividable by block size 64');
    expect(() => loftqQuantizer.roundTrip(weight, [8, 8], 3)).toThrow('loftq_bits must be 2, 4 or 8, got 3');
  });
});
