import { describe, expect, it } from 'vitest';
import { dequantizeBlockwise8bit } from './dequantize-blockwise-8bit.js';
import { dynamicCodeIndex } from './dynamic-code-index.js';
import { DYNAMIC_MAP } from './dynamic-map.js';
import { quantizeBlockwise8bit } from './quantize-blockwise-8bit.js';
import { seededUniform } from './test/index.js';

/** The torch backend's rule: index of the nearest entry, the first one on ties. */
function nearestIndex(x: number): number {
  let best = 0;
  DYNAMIC_MAP.forEach((value, index) => {
    if (Math.abs(value - x) < Math.abs(DYNAMIC_MAP[best] - x)) best = index;
  });
  return best;
}

describe('dynamicCodeIndex (CUDA dQuantize)', () => {
  it('finds the nearest entry for uniform and log-uniform values', () => {
    const uniform = seededUniform(5000, 21);
    const exponents = seededUniform(5000, 22, -7, 0);
    const logUniform = Float32Array.from(exponents, (exponent, index) => (index % 2 ? -1 : 1) * 10 ** exponent);
    const values = [...uniform, ...logUniform];
    expect(values.filter((x) => dynamicCodeIndex(DYNAMIC_MAP, x) !== nearestIndex(x))).toEqual([]);
  });

  it('maps every entry to itself, and the edges and NaN as the kernel does', () => {
    expect(Array.from(DYNAMIC_MAP, (value) => dynamicCodeIndex(DYNAMIC_MAP, value))).toEqual([...DYNAMIC_MAP.keys()]);
    expect(dynamicCodeIndex(DYNAMIC_MAP, -1)).toBe(0);
    expect(dynamicCodeIndex(DYNAMIC_MAP, 1.0000001)).toBe(255);
    expect(dynamicCodeIndex(DYNAMIC_MAP, Number.NaN)).toBe(0);
  });

  it('keeps the pivot on an exact fp32 midpoint', () => {
    // Between entries 191 (0.0986) and 192 (0.1070) the search ends on pivot 192 with 191 below it.
    const midpoint = Math.fround(DYNAMIC_MAP[191] + DYNAMIC_MAP[192]) * 0.5;
    expect(dynamicCodeIndex(DYNAMIC_MAP, midpoint)).toBe(192);
    expect(dynamicCodeIndex(DYNAMIC_MAP, Math.fround(midpoint * (1 - 2 ** -20)))).toBe(191);
    expect(dynamicCodeIndex(DYNAMIC_MAP, Math.fround(midpoint * (1 + 2 ** -20)))).toBe(192);
  });
});

describe('quantizeBlockwise8bit / dequantizeBlockwise8bit', () => {
  it('scales by the fp32 reciprocal of each block absmax and round-trips within half a map gap', () => {
    const values = seededUniform(1000, 5, -3, 3);
    const { codes, absmax } = quantizeBlockwise8bit(values, 256);
    expect(absmax).toHaveLength(4);
    values.forEach((value, index) => {
      const scaled = Math.fround(value * Math.fround(1 / absmax[Math.floor(index / 256)]));
      expect(codes[index]).toBe(nearestIndex(scaled));
    });
    const restored = dequantizeBlockwise8bit(codes, absmax, 256);
    restored.forEach((value, index) => {
      expect(Math.abs(value - values[index])).toBeLessThan(0.0071 * absmax[Math.floor(index / 256)]);
    });
  });

  it('gives an all-zero block absmax 0 and code 0, restoring −0', () => {
    const { codes, absmax } = quantizeBlockwise8bit(new Float32Array(300), 256);
    expect([...absmax]).toEqual([0, 0]);
    expect(codes.every((code) => code === 0)).toBe(true);
    expect(dequantizeBlockwise8bit(codes, absmax, 256).every((value) => Object.is(value, -0))).toBe(true);
  });

  it('rejects a mismatched absmax', () => {
    expect(() => dequantizeBlockwise8bit(new Uint8Array(300), new Float32Array(1), 256)).toThrow(/absmax/);
  });
});
