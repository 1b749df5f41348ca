import { RotaryEmbedding } from '@peft-ts/model-common';
import { describeWithBackends } from '@peft-ts/core/test';
import { describe, expect, it } from 'vitest';
import { dynamicNtkBase, llamaRotaryFrequencies } from './llama-rope-scaling.js';

// The references are the closed forms of transformers 4.39.3's
// LlamaLinearScalingRotaryEmbedding and LlamaDynamicNTKScalingRotaryEmbedding, evaluated in float64:
// inv_freq[j] = 1 / base^(2j/d); linear: angle = (p / factor) · inv_freq[j]; dynamic, once L = past + T positions
// exceed M = max_position_embeddings: base = θ·(factor·L/M − (factor − 1))^(d/(d−2)).
const closedFormFrequencies = (dimension: number, base: number) =>
  Array.from({ length: dimension / 2 }, (_, index) => 1 / Math.pow(base, (2 * index) / dimension));

/** cos and (unsigned) sin of the last position of a forward over `position … position+length−1`. */
function tableRow(rotary: RotaryEmbedding, position: number, length = 1) {
  const angles = rotary.range(position, length);
  try {
    const dimension = rotary.headDimension;
    const cos = Array.from(angles.cos.dataSync()).slice((length - 1) * dimension, length * dimension);
    const sin = Array.from(angles.sin.dataSync()).slice((length - 1) * dimension, length * dimension);
    return { cos, sin: sin.map((value, index) => (index < dimension / 2 ? -value : value)) };
  } finally {
    angles.cos.dispose();
    angles.sin.dispose();
  }
}

function closedFormRow(frequencies: number[], position: number) {
  const half = frequencies.map((frequency) => position * frequency);
  return { cos: [...half, ...half].map(Math.cos), sin: [...half, ...half].map(Math.sin) };
}

const maxDifference = (a: number[], b: number[]) => Math.max(...a.map((value, index) => Math.abs(value - b[index])));

describe('dynamicNtkBase', () => {
  it('is the NTK formula, rounded to float32', () => {
    // d = 8, θ = 10000, factor 2, M = 16, L = 32: (2·32/16 − 1)^(8/6) = 3^(4/3).
    expect(dynamicNtkBase(10000, 8, 2, 16, 32)).toBe(Math.fround(10000 * Math.fround(Math.pow(3, Math.fround(8 / 6)))));
    expect(dynamicNtkBase(10000, 8, 2, 16, 32)).toBeCloseTo(10000 * Math.pow(3, 4 / 3), 0);
    // At L = M the base is θ again.
    expect(dynamicNtkBase(10000, 128, 4, 2048, 2048)).toBe(10000);
  });
});

describeWithBackends('Llama rope scaling against the closed form', () => {
  const dimension = 8;
  const theta = 10000;
  const maxPositions = 16;

  it('null scaling is the plain table', () => {
    const rotary = new RotaryEmbedding(dimension, theta, llamaRotaryFrequencies(null, maxPositions));
    for (const position of [0, 3, 40]) {
      const expected = closedFormRow(closedFormFrequencies(dimension, theta), position);
      const actual = tableRow(rotary, position);
      expect(maxDifference(actual.cos, expected.cos)).toBeLessThan(1e-6 * Math.max(1, position));
      expect(maxDifference(actual.sin, expected.sin)).toBeLessThan(1e-6 * Math.max(1, position));
    }
    rotary.dispose();
  });

  it('linear: position p with factor f has the angles of p / f', () => {
    const rotary = new RotaryEmbedding(dimension, theta, llamaRotaryFrequencies({ type: 'linear', factor: 4 }, maxPositions));
    for (const position of [1, 6, 13, 50]) {
      const expected = closedFormRow(closedFormFrequencies(dimension, theta), position / 4);
      const actual = tableRow(rotary, position);
      expect(maxDifference(actual.cos, expected.cos)).toBeLessThan(1e-6 * Math.max(1, position));
      expect(maxDifference(actual.sin, expected.sin)).toBeLessThan(1e-6 * Math.max(1, position));
    }
    rotary.dispose();
  });

  it('dynamic: unscaled up to max_position_embeddings, the NTK base beyond it', () => {
    const factor = 2;
    const rotary = new RotaryEmbedding(dimension, theta, llamaRotaryFrequencies({ type: 'dynamic', factor }, maxPositions));
    // A forward covering 16 positions (= M): plain angles.
    const within = tableRow(rotary, 0, 16);
    const plain = closedFormRow(closedFormFrequencies(dimension, theta), 15);
    expect(maxDifference(within.cos, plain.cos)).toBeLessThan(2e-5);
    expect(maxDifference(within.sin, plain.sin)).toBeLessThan(2e-5);
    // A forward covering 24 positions: its last one rotates by the scaled base's frequencies.
    const beyond = tableRow(rotary, 0, 24);
    const scaledBase = theta * Math.pow((factor * 24) / maxPositions - (factor - 1), dimension / (dimension - 2));
    const reference = closedFormRow(closedFormFrequencies(dimension, scaledBase), 23);
    expect(maxDifference(beyond.cos, reference.cos)).toBeLessThan(2e-5);
    expect(maxDifference(beyond.sin, reference.sin)).toBeLessThan(2e-5);
    expect(maxDifference(beyond.cos, closedFormRow(closedFormFrequencies(dimension, theta), 23).cos)).toBeGreaterThan(1e-3);
    // Back within the trained length: unscaled again.
    const again = tableRow(rotary, 15, 1);
    expect(maxDifference(again.cos, plain.cos)).toBeLessThan(2e-5);
    rotary.dispose();
  });
});
