import { describe, expect, it } from 'vitest';
import { int8MatmulReference } from './int8-matmul-reference.js';
import { int8VectorwiseQuantize } from './int8-vectorwise-quantize.js';
import { quantFixtures, seededUniform } from './test/index.js';

// Spec G.1: W = [[0.5, −1, 0.25], [2, 0.1, −0.3]] → CB [[64, −127, 32], [127, 6, −19]], SCB [1, 2].
const weight = int8VectorwiseQuantize(Float32Array.of(0.5, -1, 0.25, 2, 0.1, -0.3), 2, 3);

describe('int8MatmulReference', () => {
  it('without outliers: CA·CBᵀ · SCA·SCB / 127² plus bias', () => {
    // x = [1, 0, 0]: SCA 1, CA [127, 0, 0].
    const out = int8MatmulReference(Float32Array.of(1, 0, 0), 1, weight, 0, [0.5, -1]);
    expect(out[0]).toBeCloseTo((127 * 64) / 16129 + 0.5, 12);
    expect(out[1]).toBeCloseTo((127 * 127 * 2) / 16129 - 1, 12);
  });

  it('with a threshold: outlier columns go through the dequantized weight in full precision', () => {
    // x = [[1, 4, 0.5], [0.5, 0.5, -1]], threshold 3.5: column 1 is an outlier column.
    // Row 0: SCA 1, CA [127, 0, 64]; row 1: SCA 1, CA [64, 0, −127].
    const out = int8MatmulReference(Float32Array.of(1, 4, 0.5, 0.5, 0.5, -1), 2, weight, 3.5);
    const dequantized = (code: number, stat: number): number => (code * stat) / 127;
    expect(out[0]).toBeCloseTo((127 * 64 + 64 * 32) / 16129 + 4 * dequantized(-127, 1), 12);
    expect(out[1]).toBeCloseTo((127 * 127 + 64 * -19) / 16129 * 2 + 4 * dequantized(6, 2), 12);
    expect(out[2]).toBeCloseTo((64 * 64 + -127 * 32) / 16129 + 0.5 * dequantized(-127, 1), 12);
    expect(out[3]).toBeCloseTo((64 * 127 + -127 * -19) / 16129 * 2 + 0.5 * dequantized(6, 2), 12);
  });

  it('stays within int8 error of the fp64 product on the fixture weight', () => {
    const fixtureWeight = quantFixtures().float32('weight');
    const quantized = int8VectorwiseQuantize(fixtureWeight, 64, 128);
    const x = seededUniform(3 * 128, 9, -2, 2);
    // One outlier column.
    x[5] = 9;
    for (const threshold of [0, 6]) {
      const out = int8MatmulReference(x, 3, quantized, threshold);
      for (let token = 0; token < 3; token++) {
        for (let output = 0; output < 64; output++) {
          let exact = 0;
          for (let input = 0; input < 128; input++) {
            exact += x[token * 128 + input] * fixtureWeight[output * 128 + input];
          }
          // Each factor is off by at most half a step of its row scale.
          expect(Math.abs(out[token * 64 + output] - exact)).toBeLessThan(1.5);
        }
      }
    }
    // The outlier column is exact with the threshold and quantized coarsely without it.
    const withThreshold = int8MatmulReference(x, 3, quantized, 6);
    const without = int8MatmulReference(x, 3, quantized, 0);
    expect(withThreshold.some((value, index) => value !== without[index])).toBe(true);
  });

  it('rejects a bias of the wrong length and an x that does not fit', () => {
    expect(() => int8MatmulReference(Float32Array.of(1, 0, 0), 1, weight, 0, [1])).toThrow(/bias/);
    expect(() => int8MatmulReference(Float32Array.of(1, 0), 1, weight)).toThrow(/needs 3/);
  });
});
