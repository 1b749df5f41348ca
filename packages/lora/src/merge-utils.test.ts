import { SeededRandom } from '@peft-ts/core';
import { describe, expect, it } from 'vitest';
import { disjointMerge, magnitudePrune, majoritySignMask, mergeTaskTensors, randomPrune, taskArithmetic } from './merge-utils.js';

const f = (...values: number[]) => Float64Array.from(values);

describe('merge rules', () => {
  it('task arithmetic is the weighted sum', () => {
    expect(Array.from(taskArithmetic([f(1, 2), f(-3, 4)], [2, 0.5]))).toEqual([0.5, 6]);
  });

  it('magnitude pruning keeps the ⌊density·n⌋ largest magnitudes', () => {
    expect(Array.from(magnitudePrune(f(0.1, -3, 2, -0.5, 4), 0.4))).toEqual([0, -3, 0, 0, 4]);
    // ⌊0.7·10⌋ = 7 (0.7·10 is 7.000000000000001 in floating point, as in Python).
    const ten = f(...Array.from({ length: 10 }, (_, index) => index + 1));
    expect(Array.from(magnitudePrune(ten, 0.7))).toEqual([0, 0, 0, 4, 5, 6, 7, 8, 9, 10]);
    expect(Array.from(magnitudePrune(f(1, -2), 0))).toEqual([0, 0]);
    expect(Array.from(magnitudePrune(f(1, -2), 1))).toEqual([1, -2]);
  });

  it('DARE keeps about density of the entries, rescaled by 1/density, so the mean is preserved', () => {
    const ones = new Float64Array(200_000).fill(1);
    const pruned = randomPrune(ones, 0.3, new SeededRandom(5));
    const kept = pruned.filter((value) => value !== 0);
    expect(Math.abs(kept.length / ones.length - 0.3)).toBeLessThan(0.005);
    expect(new Set(kept)).toEqual(new Set([1 / 0.3]));
    const mean = pruned.reduce((sum, value) => sum + value, 0) / pruned.length;
    expect(Math.abs(mean - 1)).toBeLessThan(0.02);
    // Reproducible from its seed, different under another.
    expect(randomPrune(ones.subarray(0, 64), 0.3, new SeededRandom(5))).toEqual(pruned.subarray(0, 64));
    expect(randomPrune(ones.subarray(0, 64), 0.3, new SeededRandom(6))).not.toEqual(pruned.subarray(0, 64));
  });

  it('elects the sign of the sum (total) or of the sign count (frequency); zeros never agree', () => {
    const tensors = [f(1, 1, -1), f(1, 1, -1), f(-5, 0, 3)];
    // Sums -3, 2, 1 elect -, +, +; sign counts 1, 2, -1 elect +, +, -.
    expect(majoritySignMask(tensors, 'total')).toEqual([
      [false, true, false],
      [false, true, false],
      [true, false, true],
    ]);
    expect(majoritySignMask(tensors, 'frequency')).toEqual([
      [true, true, true],
      [true, true, true],
      [false, false, false],
    ]);
    expect(Array.from(disjointMerge([f(2, 0), f(4, 0)], [[true, false], [true, false]]))).toEqual([3, 0]);
  });

  it('TIES averages the weighted tensors that agree with the elected sign', () => {
    // Sums 4, -1 elect +, -: both count in the first entry, only the first tensor in the second.
    expect(Array.from(mergeTaskTensors('ties', [f(1, -2), f(3, 1)], [2, 1], { density: 1 }))).toEqual([2.5, -4]);
    // With density 1 and one sign everywhere, TIES is the weighted mean (linear / number of tensors).
    const a = f(1, 2, 3);
    const b = f(2, 5, 1);
    const ties = mergeTaskTensors('ties', [a, b], [0.5, 2], { density: 1 });
    expect(Array.from(ties)).toEqual(Array.from(taskArithmetic([a, b], [0.5, 2])).map((value) => value / 2));
  });

  it('magnitude_prune and dare_linear prune each tensor, then sum', () => {
    expect(Array.from(mergeTaskTensors('magnitude_prune', [f(1, -4), f(3, 0.5)], [1, 2], { density: 0.5 }))).toEqual([6, -4]);
    const random = new SeededRandom(1);
    const dare = mergeTaskTensors('dare_linear', [new Float64Array(1000).fill(2)], [1], { density: 0.5, random });
    expect(new Set(dare)).toEqual(new Set([0, 4]));
    expect(() => mergeTaskTensors('ties', [f(1)], [1])).toThrow('ties: density is required');
  });
});
