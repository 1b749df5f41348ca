import { describe, expect, it } from 'vitest';
import { createDynamicMap, DYNAMIC_MAP } from './dynamic-map.js';
import { float32Fma } from './float32-fma.js';
import { float32BitDifferences, quantFixtures } from './test/index.js';
import { torchLinspaceFloat32 } from './torch-linspace.js';

describe('signed dynamic 8-bit map', () => {
  it('equals dynamic_code_8bit bit for bit', () => {
    expect(float32BitDifferences(createDynamicMap(), quantFixtures().float32('dynamic_code_8bit'))).toEqual([]);
    expect(float32BitDifferences(DYNAMIC_MAP, createDynamicMap())).toEqual([]);
  });

  it('has the landmarks of spec G.3', () => {
    expect(DYNAMIC_MAP).toHaveLength(256);
    expect(DYNAMIC_MAP[127]).toBe(0);
    expect(DYNAMIC_MAP[255]).toBe(1);
    expect(DYNAMIC_MAP[0]).toBe(Math.fround(-0.99296874));
    expect(DYNAMIC_MAP[128]).toBe(Math.fround(5.5000004e-7));
    expect([...DYNAMIC_MAP].every((value, index) => index === 0 || value > DYNAMIC_MAP[index - 1])).toBe(true);
  });
});

describe('torchLinspaceFloat32', () => {
  it('contracts scalar elements into an FMA, as the torch CPU kernel does', () => {
    // start + step·3 rounded twice would be 0.43749997.
    expect(torchLinspaceFloat32(0.1, 1, 9)[3]).toBe(0.4375);
    expect(Math.fround(Math.fround(0.1) + Math.fround(Math.fround(0.9 / 8) * 3))).not.toBe(0.4375);
  });

  it('builds 8-lane vectors from their first element for whole pairs of vectors', () => {
    const values = torchLinspaceFloat32(0.1, 1, 65);
    const step = Math.fround(Math.fround(1 - Math.fround(0.1)) / 64);
    // Element 38 comes from the vector starting at the halfway index 32, not from end − step·26.
    expect(values[38]).toBe(Math.fround(values[32] + Math.fround(6 * step)));
    expect(values[38]).not.toBe(float32Fma(-step, 26, 1));
    expect(values[64]).toBe(1);
    expect(values[0]).toBe(Math.fround(0.1));
  });

  it('handles 0 and 1 steps', () => {
    expect([...torchLinspaceFloat32(0.1, 1, 0)]).toEqual([]);
    expect([...torchLinspaceFloat32(0.1, 1, 1)]).toEqual([Math.fround(0.1)]);
  });
});

describe('float32Fma', () => {
  it('rounds once where fp64-then-fp32 rounding lands on a tie and goes the wrong way', () => {
    const a = Math.fround(1.644436240196228);
    const b = Math.fround(3.6246248669158376e-8);
    expect(Math.fround(a * b + 1)).toBe(1);
    expect(float32Fma(a, b, 1)).toBe(1 + 2 ** -23);
    expect(float32Fma(-a, b, -1)).toBe(-(1 + 2 ** -23));
    expect(float32Fma(2, 3, 1)).toBe(7);
  });
});
