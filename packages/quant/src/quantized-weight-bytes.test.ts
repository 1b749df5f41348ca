import { describe, expect, it } from 'vitest';
import { quantizedWeightBytes, type QuantizedWeightFormat } from './quantized-weight-bytes.js';

/** Mistral-7B linear weights per layer (q, k, v, o, gate, up, down), 32 layers. */
const MISTRAL_LAYER_SHAPES = [
  [4096, 4096],
  [1024, 4096],
  [1024, 4096],
  [4096, 4096],
  [14336, 4096],
  [14336, 4096],
  [4096, 14336],
];

function mistralTotal(format?: QuantizedWeightFormat): number {
  const bytesOf = (shape: number[]): number =>
    format ? quantizedWeightBytes(shape, format).totalBytes : shape[0] * shape[1];
  return 32 * MISTRAL_LAYER_SHAPES.reduce((sum, shape) => sum + bytesOf(shape), 0);
}

describe('quantizedWeightBytes', () => {
  it('NF4 with double quantization stays under 0.52 B/param, without it 0.5625, int8 under 1.02', () => {
    const doubleQuantized = quantizedWeightBytes([4096, 4096], { kind: '4bit', compressStatistics: true });
    expect(doubleQuantized.codeBytes).toBe(4096 * 2048);
    expect(doubleQuantized.statisticsBytes).toBe(262_144 + 4 * 1024 + 4);
    expect(doubleQuantized.bytesPerParameter).toBeLessThanOrEqual(0.52);
    expect(quantizedWeightBytes([4096, 4096], { kind: '4bit' }).bytesPerParameter).toBe(0.5625);
    const int8 = quantizedWeightBytes([4096, 4096], { kind: 'int8' });
    expect(int8.totalBytes).toBe(4096 * 4096 + 4 * 4096);
    expect(int8.bytesPerParameter).toBeLessThanOrEqual(1.02);
  });

  it('reproduces the Mistral-7B totals of spec G.4 (DQ adds one fp32 offset per matrix)', () => {
    expect(mistralTotal()).toBe(6_979_321_856);
    expect(mistralTotal({ kind: '4bit' })).toBe(3_925_868_544);
    expect(mistralTotal({ kind: '4bit', compressStatistics: true })).toBe(3_600_416_768 + 4 * 224);
  });

  it('counts partial blocks and odd sizes, and validates its input', () => {
    const tiny = quantizedWeightBytes([5], { kind: '4bit', blocksize: 4096 });
    expect(tiny).toMatchObject({ codeBytes: 3, statisticsBytes: 4, totalBytes: 7 });
    const twoChunks = quantizedWeightBytes([257 * 64], { kind: '4bit', compressStatistics: true });
    expect(twoChunks.statisticsBytes).toBe(257 + 2 * 4 + 4);
    expect(() => quantizedWeightBytes([4, 4, 4], { kind: 'int8' })).toThrow(/\[out, in\]/);
    expect(() => quantizedWeightBytes([64], { kind: '4bit', blocksize: 96 })).toThrow(/blocksize/);
  });
});
