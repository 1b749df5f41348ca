import { initBackend } from '@peft-ts/core/backend';
import { beforeAll, describe, expect, it } from 'vitest';
import { RotaryEmbedding, defaultRotaryFrequencies, type RotaryFrequencies } from './rotary-embedding.js';

const rows = (rotary: RotaryEmbedding, start: number, length: number) => {
  const angles = rotary.range(start, length);
  try {
    return { cos: Array.from(angles.cos.dataSync()), sin: Array.from(angles.sin.dataSync()) };
  } finally {
    angles.cos.dispose();
    angles.sin.dispose();
  }
};

describe('RotaryEmbedding frequencies', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('linear scaling by 2 (frequencies halved) puts position 2p where the default puts p', () => {
    const halved: RotaryFrequencies = (request) => defaultRotaryFrequencies(request).map((value) => value / 2);
    const plain = new RotaryEmbedding(8, 10000);
    const scaled = new RotaryEmbedding(8, 10000, halved);
    for (const position of [1, 5, 30]) expect(rows(scaled, 2 * position, 1)).toEqual(rows(plain, position, 1));
    plain.dispose();
    scaled.dispose();
  });

  it('rebuilds the table when the frequencies change with the positions covered (dynamic scaling)', () => {
    const seen: number[] = [];
    const dynamic: RotaryFrequencies = (request) => {
      seen.push(request.positions);
      const base = defaultRotaryFrequencies(request);
      return request.positions > 16 ? base.map((value) => value / 4) : base;
    };
    const rotary = new RotaryEmbedding(8, 10000, dynamic);
    const short = rows(rotary, 3, 1);
    const long = rows(rotary, 3, 20);
    expect(seen).toEqual([4, 23]);
    expect(long.cos.slice(0, 8)).not.toEqual(short.cos);
    expect(rows(rotary, 3, 1)).toEqual(short);
    rotary.dispose();
  });

  it('refuses a provider giving the wrong number of frequencies', () => {
    const rotary = new RotaryEmbedding(8, 10000, () => new Float32Array(3));
    expect(() => rotary.range(0, 1)).toThrow('rotary frequencies: expected 4 values (head dimension / 2), got 3');
  });
});
