import { describe, expect, it } from 'vitest';
import { selectNextToken, type TokenSelectionSettings } from './next-token-selection.js';
import { SeededRandom } from '@peft-ts/core';

const greedy: TokenSelectionSettings = { doSample: false, temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1 };
const sampling: TokenSelectionSettings = { ...greedy, doSample: true };

describe('selectNextToken', () => {
  it('takes the arg-max, the lowest id on ties', () => {
    expect(selectNextToken(Float32Array.of(0.1, 3, -2, 3), [], greedy, new SeededRandom(1))).toBe(1);
  });

  it('applies the repetition penalty as transformers does (divide positive, multiply negative)', () => {
    const scores = Float32Array.of(2, -1, 1.9, 0.5);
    expect(selectNextToken(scores, [0, 1, 0], { ...greedy, repetitionPenalty: 2 }, new SeededRandom(1))).toBe(2);
    expect([...scores]).toEqual([1, -2, Math.fround(1.9), 0.5]);
  });

  it('top-k keeps the k best (ties with the k-th included); top-p drops the tail at or below 1 − p', () => {
    const topK = Float32Array.of(1, 4, 2, 4, 3);
    selectNextToken(topK, [], { ...sampling, topK: 2 }, new SeededRandom(1));
    expect([...topK]).toEqual([-Infinity, 4, -Infinity, 4, -Infinity]);
    // Probabilities 0.5, 0.3, 0.15, 0.05: ascending cumulative 0.05, 0.2, 0.5 → the two smallest go for p = 0.8.
    const topP = Float32Array.from([0.5, 0.3, 0.15, 0.05], Math.log);
    selectNextToken(topP, [], { ...sampling, topP: 0.8 }, new SeededRandom(1));
    expect(topP.map((value) => (value === -Infinity ? 0 : 1))).toEqual(Float32Array.of(1, 1, 0, 0));
  });

  it('samples in proportion to the tempered probabilities, reproducibly', () => {
    const draw = (seed: number, temperature: number) => {
      const random = new SeededRandom(seed);
      const counts = [0, 0, 0];
      for (let trial = 0; trial < 4000; trial++) counts[selectNextToken(Float32Array.from([0.6, 0.3, 0.1], Math.log), [], { ...sampling, temperature }, random)]++;
      return counts;
    };
    const counts = draw(5, 1);
    expect(counts).toEqual(draw(5, 1));
    expect(counts[0] / 4000).toBeCloseTo(0.6, 1);
    expect(counts[2] / 4000).toBeCloseTo(0.1, 1);
    // Temperature 0.5 squares the odds: 0.36 : 0.09 : 0.01.
    expect(draw(5, 0.5)[0] / 4000).toBeCloseTo(0.36 / 0.46, 1);
  });
});
