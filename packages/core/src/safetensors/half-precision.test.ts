import { describe, expect, it } from 'vitest';
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from './half-precision.js';

const bitsOf = (value: number): number => new Uint32Array(Float32Array.of(value).buffer)[0];
const floatOf = (bits: number): number => new Float32Array(Uint32Array.of(bits).buffer)[0];
const toFloat16 = (value: number): number => float32ToFloat16Bits(Float32Array.of(value))[0];
const fromFloat16 = (bits: number): number => float16BitsToFloat32(Uint16Array.of(bits))[0];
const toBfloat16 = (value: number): number => float32ToBfloat16Bits(Float32Array.of(value))[0];
// NaN payloads must go in as bits: reading a float32 NaN into a JavaScript number may quiet it.
const float16OfBits = (bits: number): number => float32ToFloat16Bits(new Float32Array(Uint32Array.of(bits).buffer))[0];
const bfloat16OfBits = (bits: number): number => float32ToBfloat16Bits(new Float32Array(Uint32Array.of(bits).buffer))[0];

/** A deterministic xorshift32 stream, so failures reproduce. */
function randomBits(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
}

/**
 * Independent oracle for round-to-nearest-even: among the representable neighbours of `value` (found with the
 * decoder and compared in float64) pick the closest, preferring an even bit pattern on a tie.
 */
function nearestEven(value: number, candidates: readonly number[], decode: (bits: number) => number): number {
  let best = candidates[0];
  for (const candidate of candidates.slice(1)) {
    const distance = Math.abs(decode(candidate) - value);
    const bestDistance = Math.abs(decode(best) - value);
    if (distance < bestDistance || (distance === bestDistance && candidate % 2 === 0)) best = candidate;
  }
  return best;
}

describe('F16 decoding', () => {
  it('decodes known patterns', () => {
    expect(fromFloat16(0x3c00)).toBe(1);
    expect(fromFloat16(0xc000)).toBe(-2);
    expect(fromFloat16(0x7bff)).toBe(65504);
    expect(fromFloat16(0x0400)).toBe(2 ** -14);
    expect(fromFloat16(0x0001)).toBe(2 ** -24);
    expect(fromFloat16(0x03ff)).toBe(1023 * 2 ** -24);
    expect(fromFloat16(0x3555)).toBeCloseTo(1 / 3, 3);
    expect(fromFloat16(0x7c00)).toBe(Infinity);
    expect(fromFloat16(0xfc00)).toBe(-Infinity);
    expect(Object.is(fromFloat16(0x8000), -0)).toBe(true);
    expect(Number.isNaN(fromFloat16(0x7e00))).toBe(true);
  });

  it('round-trips all 65,536 bit patterns exactly, NaN payloads included', () => {
    const all = new Uint16Array(0x10000).map((_, index) => index);
    const widened = float16BitsToFloat32(all);
    const narrowed = float32ToFloat16Bits(widened);
    expect(Buffer.compare(Buffer.from(narrowed.buffer), Buffer.from(all.buffer))).toBe(0);
    // Every finite pattern must widen to the exact value sign * 2^e * 1.m (or 0.m for subnormals).
    for (let bits = 0; bits < 0x7c00; bits += 37) {
      const exponent = bits >> 10;
      const mantissa = bits & 0x3ff;
      const expected = exponent === 0 ? mantissa * 2 ** -24 : (1 + mantissa / 1024) * 2 ** (exponent - 15);
      expect(widened[bits]).toBe(expected);
      expect(widened[bits | 0x8000]).toBe(-expected);
    }
  });
});

describe('F16 encoding', () => {
  it('handles the edge cases', () => {
    expect(toFloat16(65504)).toBe(0x7bff);
    expect(toFloat16(65519.99)).toBe(0x7bff);
    expect(toFloat16(65520)).toBe(0x7c00); // the tie between 65504 and 2^16 goes to the even pattern, infinity
    expect(toFloat16(1e6)).toBe(0x7c00);
    expect(toFloat16(-1e6)).toBe(0xfc00);
    expect(toFloat16(Infinity)).toBe(0x7c00);
    expect(toFloat16(-0)).toBe(0x8000);
    expect(toFloat16(2 ** -24)).toBe(0x0001);
    expect(toFloat16(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal goes to 0
    expect(toFloat16(-(2 ** -25))).toBe(0x8000);
    expect(toFloat16(floatOf(bitsOf(2 ** -25) + 1))).toBe(0x0001);
    expect(toFloat16(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 ulps goes to 2
    expect(toFloat16(2 ** -26)).toBe(0x0000);
    expect(toFloat16(1 + 2 ** -11)).toBe(0x3c00); // tie rounds down to the even mantissa
    expect(toFloat16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie rounds up to the even mantissa
    expect(toFloat16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounding carries from the subnormals into the normals
    expect(toFloat16(1 - 2 ** -12)).toBe(0x3c00); // the carry out of the mantissa bumps the exponent
  });

  it('keeps NaN a NaN, preserving the sign and the top payload bits', () => {
    expect(toFloat16(NaN) & 0x7fff).toBe(0x7e00);
    expect(float16OfBits(0xffc00000)).toBe(0xfe00);
    expect(float16OfBits(0x7f802000)).toBe(0x7c01); // a signalling payload that fits survives
    expect(float16OfBits(0x7f800001)).toBe(0x7e00); // a payload that does not fit must not become infinity
  });

  it('rounds 20,000 random float32 patterns to the nearest even F16', () => {
    const next = randomBits(0x5eed);
    for (let sample = 0; sample < 20_000; sample++) {
      // Restrict exponents to the F16 range and a little beyond, where all the interesting rounding happens.
      const bits = ((next() & 0x807fffff) | ((100 + (next() % 60)) << 23)) >>> 0;
      const value = floatOf(bits);
      const below = toFloat16Truncated(value);
      // Rounding treats infinity as the next step after 65504, 2^16, as if the exponent were unbounded.
      const decode = (candidate: number): number =>
        (candidate & 0x7fff) === 0x7c00 ? Math.sign(value) * 65536 : fromFloat16(candidate);
      const expected = nearestEven(value, [below, below + 1], decode);
      expect(toFloat16(value), `value ${value} (0x${bits.toString(16)})`).toBe(expected);
    }
  });
});

/** F16 pattern of `value` rounded toward zero, computed arithmetically from the decoded magnitude. */
function toFloat16Truncated(value: number): number {
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(value);
  if (magnitude >= 65536) return sign | 0x7bff;
  let low = 0;
  let high = 0x7c00;
  while (high - low > 1) {
    const middle = (low + high) >> 1;
    if (fromFloat16(middle) <= magnitude) low = middle;
    else high = middle;
  }
  return sign | low;
}

describe('BF16', () => {
  it('decodes by widening the bits', () => {
    expect(Array.from(bfloat16BitsToFloat32(Uint16Array.of(0x3f80, 0xc040, 0x7f80, 0x0001, 0x8000)))).toEqual([
      1,
      -3,
      Infinity,
      2 ** -133,
      -0,
    ]);
  });

  it('handles the edge cases', () => {
    expect(toBfloat16(1)).toBe(0x3f80);
    expect(toBfloat16(1 + 2 ** -8)).toBe(0x3f80); // tie to even (down)
    expect(toBfloat16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie to even (up)
    expect(toBfloat16(floatOf(0x3f808001))).toBe(0x3f81); // just above the tie
    expect(toBfloat16(floatOf(0x7f7fffff))).toBe(0x7f80); // float32 max rounds to infinity
    expect(toBfloat16(-Infinity)).toBe(0xff80);
    expect(toBfloat16(floatOf(0x00008000))).toBe(0x0000); // subnormal tie to even
    expect(toBfloat16(floatOf(0x00018000))).toBe(0x0002);
    expect(toBfloat16(-0)).toBe(0x8000);
    expect(toBfloat16(NaN) & 0x7fff).toBe(0x7fc0);
    expect(bfloat16OfBits(0x7f800001)).toBe(0x7fc0); // payload lost in truncation: must stay NaN
    expect(bfloat16OfBits(0xff810000)).toBe(0xff81); // a signalling payload that fits survives
  });

  it('round-trips all 65,536 bit patterns exactly', () => {
    const all = new Uint16Array(0x10000).map((_, index) => index);
    const narrowed = float32ToBfloat16Bits(bfloat16BitsToFloat32(all));
    expect(Buffer.compare(Buffer.from(narrowed.buffer), Buffer.from(all.buffer))).toBe(0);
  });

  it('rounds 20,000 random finite float32 patterns to the nearest even BF16', () => {
    const next = randomBits(0xbf16);
    const decode = (candidate: number): number => bfloat16BitsToFloat32(Uint16Array.of(candidate))[0];
    for (let sample = 0; sample < 20_000; sample++) {
      const bits = next() & 0xff7fffff; // exponent below 0xff: finite
      const value = floatOf(bits);
      const truncated = bits >>> 16;
      const expected = nearestEven(value, [truncated, truncated + 1], decode);
      expect(toBfloat16(value), `0x${bits.toString(16)}`).toBe(expected);
    }
  });
});
