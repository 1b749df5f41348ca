import { describe, expect, it } from 'vitest';
import { float32Mean } from './float32-mean.js';
import { quantFixtures, seededUniform } from './test/index.js';

describe('float32Mean (torch CPU summation order)', () => {
  it("reproduces the fixture's double-quant offset, which a running sum or an fp64 sum misses by 1 ulp", () => {
    const fixtures = quantFixtures();
    const absmax = fixtures.float32('nf4_absmax');
    const offset = fixtures.float32('nf4_dq_offset')[0];
    expect(float32Mean(absmax)).toBe(offset);
    const runningSum = absmax.reduce((sum, value) => Math.fround(sum + value), 0);
    expect(Math.fround(runningSum / 128)).not.toBe(offset);
    const float64Sum = absmax.reduce((sum, value) => sum + value, 0);
    expect(Math.fround(Math.fround(float64Sum) / 128)).not.toBe(offset);
  });

  it('is the plain mean where every order is exact, and handles tails and long inputs', () => {
    expect(float32Mean(Float32Array.of(1, 2, 3, 4))).toBe(2.5);
    expect(float32Mean(Float32Array.from({ length: 13 }, (_, index) => index))).toBe(6);
    expect(float32Mean(new Float32Array(5000).fill(0.5))).toBe(0.5);
    expect(Number.isNaN(float32Mean(new Float32Array(0)))).toBe(true);
    const values = seededUniform(20_001, 3, 0, 1);
    const exact = values.reduce((sum, value) => sum + value, 0) / values.length;
    expect(Math.abs(float32Mean(values) - exact)).toBeLessThan(1e-6);
  });
});
