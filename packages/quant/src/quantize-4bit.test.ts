import { describe, expect, it } from 'vitest';
import { dequantize4bit } from './dequantize-4bit.js';
import { encodeFp4, FP4_CODE } from './fp4-code.js';
import { encodeNf4, NF4_CODE } from './nf4-code.js';
import type { QuantType } from './quant-state.js';
import { quantize4bit } from './quantize-4bit.js';
import {
  codebooks,
  float32BitDifferences,
  integerDifferences,
  nibbleAt,
  quantFixtures,
  seededUniform,
} from './test/index.js';

const fixtures = quantFixtures();
const weight = fixtures.float32('weight');
const QUANT_TYPES: QuantType[] = ['nf4', 'fp4'];

/** NF4 as codebooks.json states the rule: the number of (fp32) thresholds strictly below the value. */
function referenceNf4(scaled: number): number {
  return codebooks().nf4.thresholds_ascending.filter((threshold) => scaled > Math.fround(threshold)).length;
}

/** FP4 written as the nested decision tree of spec G.2 / `dQuantizeFP4`. */
function referenceFp4(scaled: number): number {
  const sign = scaled < 0 ? 8 : 0;
  const a = Math.abs(scaled);
  const above = (threshold: number): boolean => a > Math.fround(threshold);
  const magnitude = above(0.29166667)
    ? above(0.583333)
      ? above(0.8333333) ? 3 : 2
      : above(0.4166667) ? 5 : 4
    : above(0.0859375)
      ? above(0.20833333) ? 7 : 6
      : above(0.00260417) ? 1 : 0;
  return magnitude + sign;
}

const REFERENCE_ENCODERS = { nf4: referenceNf4, fp4: referenceFp4 };

/** Expected codes of a blockwise 4-bit quantization, with the reference encoders. */
function referenceCodes(values: Float32Array, blocksize: number, quantType: QuantType): number[] {
  const inverses = Array.from({ length: Math.ceil(values.length / blocksize) }, (_, block) => {
    const blockValues = values.subarray(block * blocksize, (block + 1) * blocksize);
    const absmax = blockValues.reduce((max, value) => Math.max(max, Math.abs(value)), 0);
    return Math.fround(1 / absmax);
  });
  return Array.from(values, (value, index) =>
    REFERENCE_ENCODERS[quantType](Math.fround(value * inverses[Math.floor(index / blocksize)])),
  );
}

function nibbles(packed: Uint8Array, count: number): number[] {
  return Array.from({ length: count }, (_, index) => nibbleAt(packed, index));
}

describe('4-bit code tables', () => {
  it('NF4_CODE and FP4_CODE equal the fixture tables bit for bit (FP4 code 8 is +0, as in bnb)', () => {
    expect(float32BitDifferences(NF4_CODE, fixtures.float32('nf4_code'))).toEqual([]);
    expect(float32BitDifferences(FP4_CODE, fixtures.float32('fp4_code'))).toEqual([]);
    expect(Object.is(FP4_CODE[8], 0)).toBe(true);
  });

  it('encoders agree with the reference rules at, just around and between every threshold', () => {
    const nf4Thresholds = codebooks().nf4.thresholds_ascending;
    const fp4Thresholds = [0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333];
    const thresholds = [...nf4Thresholds, ...fp4Thresholds, ...fp4Thresholds.map((threshold) => -threshold)];
    // Each threshold as fp32 and its two fp32 neighbours.
    const probes = thresholds.flatMap((threshold) => {
      const neighbours = new Float32Array(3).fill(threshold);
      const bits = new Int32Array(neighbours.buffer);
      bits[0] -= 1;
      bits[2] += 1;
      return [...neighbours];
    });
    const values = [...probes, ...seededUniform(20_000, 7, -1.01, 1.01), 0, -0, 1, -1, Number.NaN];
    expect(values.filter((value) => encodeNf4(value) !== referenceNf4(value))).toEqual([]);
    expect(values.filter((value) => encodeFp4(value) !== referenceFp4(value))).toEqual([]);
  });

  it('FP4 sets the sign bit iff the scaled value is < 0, so tiny negatives give −0 (code 8)', () => {
    expect(encodeFp4(-1e-4)).toBe(8);
    expect(encodeFp4(1e-4)).toBe(0);
    expect(encodeFp4(-0)).toBe(0);
    expect(encodeNf4(Number.NaN)).toBe(0);
    expect(encodeFp4(Number.NaN)).toBe(0);
  });
});

describe('quantize4bit / dequantize4bit against the bnb fixture (weight [64,128], blocksize 64)', () => {
  for (const quantType of QUANT_TYPES) {
    const { packed, state } = quantize4bit(weight, { quantType, shape: [64, 128] });

    it(`${quantType}: absmax equals ${quantType}_absmax bit for bit`, () => {
      expect(float32BitDifferences(state.absmax!, fixtures.float32(`${quantType}_absmax`))).toEqual([]);
    });

    it(`${quantType}: packed bytes equal ${quantType}_packed_cuda_tree`, () => {
      expect(integerDifferences(packed, fixtures.uint8(`${quantType}_packed_cuda_tree`))).toEqual([]);
    });

    it(`${quantType}: dequantization equals ${quantType}_dequant bit for bit`, () => {
      const expected = fixtures.float32(`${quantType}_dequant`);
      expect(float32BitDifferences(dequantize4bit(packed, state), expected)).toEqual([]);
    });
  }

  it('nf4: dequantization equals nf4_dequant_cuda_tree bit for bit', () => {
    const { packed, state } = quantize4bit(weight, { quantType: 'nf4' });
    expect(float32BitDifferences(dequantize4bit(packed, state), fixtures.float32('nf4_dequant_cuda_tree'))).toEqual([]);
  });

  it('fp4: dequantization equals fp4_dequant_cuda_tree except +0 for its −0 at the code-8 nibbles', () => {
    const { packed, state } = quantize4bit(weight, { quantType: 'fp4' });
    const restored = dequantize4bit(packed, state);
    const cudaTree = fixtures.float32('fp4_dequant_cuda_tree');
    const differing = float32BitDifferences(restored, cudaTree);
    expect(differing).toEqual([...restored.keys()].filter((index) => nibbleAt(packed, index) === 8));
    expect(differing).toHaveLength(24);
    expect(differing.every((index) => Object.is(restored[index], 0) && Object.is(cudaTree[index], -0))).toBe(true);
  });

  it('nf4: the torch backend (nf4_packed) emits the same bytes', () => {
    const { packed } = quantize4bit(weight, { quantType: 'nf4' });
    expect(integerDifferences(packed, fixtures.uint8('nf4_packed'))).toEqual([]);
  });

  it('fp4: differs from the torch backend (fp4_packed) in exactly 52 nibbles, all ±0 swaps', () => {
    const { packed } = quantize4bit(weight, { quantType: 'fp4' });
    const ours = nibbles(packed, weight.length);
    const torchBackend = nibbles(fixtures.uint8('fp4_packed'), weight.length);
    const differing = integerDifferences(ours, torchBackend);
    expect(differing).toHaveLength(52);
    const zeroSwap = (index: number): boolean => (ours[index] | torchBackend[index]) === 0b1000;
    expect(differing.every(zeroSwap)).toBe(true);
    // CUDA puts the sign on the value itself: −0 exactly for the negative weights.
    expect(differing.every((index) => (ours[index] === 8) === weight[index] < 0)).toBe(true);
  });
});

describe('scaling', () => {
  it('multiplies by the fp32 reciprocal of absmax, which can cross a threshold a division would not', () => {
    const absmax = Math.fround(1.841791033744812);
    const value = Math.fround(-1.562016248703003);
    const { packed } = quantize4bit(Float32Array.of(absmax, value), { quantType: 'nf4' });
    expect(nibbleAt(packed, 1)).toBe(1);
    expect(encodeNf4(Math.fround(value / absmax))).toBe(0);
    expect(encodeNf4(Math.fround(value * (1 / absmax)))).toBe(0);
  });
});

describe('spec L.2 worked examples (blocksize 64, one block)', () => {
  const cases = [
    {
      input: [1.0, -0.5, 0.1, 0.0],
      quantType: 'nf4',
      absmax: 1,
      codes: [15, 2, 8, 7],
      bytes: [0xf2, 0x87],
      dequantized: [1.0, -0.5250730514526367, 0.07958029955625534, 0.0],
    },
    {
      input: [1.0, -0.5, 0.1, 0.0],
      quantType: 'fp4',
      absmax: 1,
      codes: [3, 13, 6, 0],
      bytes: [0x3d, 0x60],
      dequantized: [1.0, -0.5, 0.16666667, 0.0],
    },
    {
      input: [0.3, -0.2, 0.05, 2.0, -1.2],
      quantType: 'nf4',
      absmax: 2,
      codes: [9, 6, 7, 15, 2, 7],
      bytes: [0x96, 0x7f, 0x27],
      dequantized: [0.3218604, -0.1821001, 0.0, 2.0, -1.0501461],
    },
    {
      input: [0.3, -0.2, 0.05, 2.0, -1.2],
      quantType: 'fp4',
      absmax: 2,
      codes: [6, 14, 1, 3, 10, 0],
      bytes: [0x6e, 0x13, 0xa0],
      dequantized: [0.3333333, -0.3333333, 0.0104167, 2.0, -1.3333333],
    },
  ] as const;

  for (const example of cases) {
    it(`${example.quantType} [${example.input.join(', ')}]`, () => {
      const { packed, state } = quantize4bit(new Float32Array(example.input), { quantType: example.quantType });
      expect([...state.absmax!]).toEqual([example.absmax]);
      expect(nibbles(packed, packed.length * 2)).toEqual(example.codes);
      expect([...packed]).toEqual(example.bytes);
      const restored = dequantize4bit(packed, state);
      expect(restored).toHaveLength(example.input.length);
      restored.forEach((value, index) => expect(value).toBeCloseTo(example.dequantized[index], 6));
    });
  }
});

describe('partial blocks, all-zero blocks, other blocksizes', () => {
  for (const quantType of QUANT_TYPES) {
    const zeroCode = quantType === 'nf4' ? 7 : 0;
    const cudaBytes = fixtures.uint8(`${quantType}_packed_cuda_tree`);

    it(`${quantType}: odd n with a partial last block keeps the full blocks and pads with the zero code`, () => {
      const values = weight.subarray(0, weight.length - 1);
      const { packed, state } = quantize4bit(values, { quantType, shape: [values.length] });
      expect(packed).toHaveLength(4096);
      expect(state.absmax).toHaveLength(128);
      expect(integerDifferences(packed.subarray(0, 4032), cudaBytes.subarray(0, 4032))).toEqual([]);
      expect(state.absmax![127]).toBe(Math.max(...Array.from(values.subarray(127 * 64), Math.abs)));
      expect(nibbles(packed, values.length)).toEqual(referenceCodes(values, 64, quantType));
      expect(nibbleAt(packed, values.length)).toBe(zeroCode);
      const restored = dequantize4bit(packed, state);
      expect(restored).toHaveLength(values.length);
      const fullBlocks = fixtures.float32(`${quantType}_dequant`).subarray(0, 127 * 64);
      expect(float32BitDifferences(restored.subarray(0, 127 * 64), fullBlocks)).toEqual([]);
    });

    it(`${quantType}: a last block of one element`, () => {
      const values = new Float32Array(65).fill(0.25);
      values[64] = -0.3;
      const { packed, state } = quantize4bit(values, { quantType });
      expect([...state.absmax!]).toEqual([0.25, Math.fround(0.3)]);
      expect(packed[32]).toBe(((quantType === 'nf4' ? 0 : 11) << 4) | zeroCode);
      expect(dequantize4bit(packed, state)[64]).toBe(-Math.fround(0.3));
    });

    it(`${quantType}: an all-zero block gets absmax 0 and code 0 (NaN path) yet dequantizes to zeros`, () => {
      const values = weight.slice(0, 3 * 64);
      values.fill(0, 64, 128);
      const { packed, state } = quantize4bit(values, { quantType });
      expect(state.absmax![1]).toBe(0);
      expect([...packed.subarray(32, 64)].every((byte) => byte === 0)).toBe(true);
      expect(integerDifferences(packed.subarray(0, 32), cudaBytes.subarray(0, 32))).toEqual([]);
      expect(integerDifferences(packed.subarray(64, 96), cudaBytes.subarray(64, 96))).toEqual([]);
      expect(dequantize4bit(packed, state).subarray(64, 128).every((value) => value === 0)).toBe(true);
      // Odd n ending in an all-zero block: the padding is NaN-scaled too, so code 0 (as on CUDA).
      const { packed: oddPacked } = quantize4bit(new Float32Array(65), { quantType });
      expect(oddPacked[32]).toBe(0);
    });

    for (const blocksize of [128, 4096]) {
      it(`${quantType}: blocksize ${blocksize} matches the reference codes and the fixture's absmax`, () => {
        const { packed, state } = quantize4bit(weight, { quantType, blocksize, shape: [64, 128] });
        const absmax64 = fixtures.float32(`${quantType}_absmax`);
        const perBlock = blocksize / 64;
        const expectedAbsmax = Float32Array.from({ length: weight.length / blocksize }, (_, block) =>
          Math.max(...absmax64.subarray(block * perBlock, (block + 1) * perBlock)),
        );
        expect(float32BitDifferences(state.absmax!, expectedAbsmax)).toEqual([]);
        expect(nibbles(packed, weight.length)).toEqual(referenceCodes(weight, blocksize, quantType));
        const restored = dequantize4bit(packed, state);
        const relativeErrors = Array.from(
          restored,
          (value, index) => Math.abs(value - weight[index]) / state.absmax![Math.floor(index / blocksize)],
        );
        const worstError = Math.max(...relativeErrors);
        // Half of the widest gap between adjacent code values (NF4 0.304/2, FP4 1/3·1/2).
        expect(worstError).toBeLessThanOrEqual(quantType === 'nf4' ? 0.1522 : 0.1667);
      });
    }
  }

  it('rejects blocksizes bnb has no kernel for, and a shape that does not fit', () => {
    for (const blocksize of [32, 100, 8192]) {
      expect(() => quantize4bit(weight, { quantType: 'nf4', blocksize })).toThrow(/blocksize/);
    }
    expect(() => quantize4bit(weight, { quantType: 'nf4', shape: [64, 127] })).toThrow(/shape/);
    expect(() => quantize4bit(weight, { quantType: 'int4' as QuantType })).toThrow(/quant type/);
    const { packed, state } = quantize4bit(weight, { quantType: 'nf4' });
    expect(() => dequantize4bit(packed.subarray(1), state)).toThrow(/bytes/);
  });
});
