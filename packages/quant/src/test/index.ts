import { readFileSync } from 'node:fs';

/** Tensors of `fixtures/peft-0.10/bnb/quant_fixtures.safetensors`, by dtype. */
export interface QuantFixtures {
  float32(name: string): Float32Array;
  uint8(name: string): Uint8Array;
  int8(name: string): Int8Array;
  int64(name: string): BigInt64Array;
  shape(name: string): number[];
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

let cached: QuantFixtures | undefined;

/**
 * A minimal safetensors reader for the one fixture file (u64 header length, JSON header, raw
 * little-endian data), so these tests do not depend on core's reader.
 */
export function quantFixtures(): QuantFixtures {
  if (cached) return cached;
  const file = readFileSync(new URL('../../../../fixtures/peft-0.10/bnb/quant_fixtures.safetensors', import.meta.url));
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, HeaderEntry>;
  const dataStart = 8 + headerLength;
  const entry = (name: string, dtype: string): HeaderEntry => {
    const found = header[name];
    if (!found) throw new Error(`fixture tensor ${name} not found`);
    if (found.dtype !== dtype) throw new Error(`fixture tensor ${name} is ${found.dtype}, not ${dtype}`);
    return found;
  };
  // Copying into a fresh buffer gives the alignment typed-array views need.
  const bytesOf = (name: string, dtype: string): ArrayBuffer => {
    const [begin, end] = entry(name, dtype).data_offsets;
    return new Uint8Array(file.subarray(dataStart + begin, dataStart + end)).buffer;
  };
  cached = {
    float32: (name) => new Float32Array(bytesOf(name, 'F32')),
    uint8: (name) => new Uint8Array(bytesOf(name, 'U8')),
    int8: (name) => new Int8Array(bytesOf(name, 'I8')),
    int64: (name) => new BigInt64Array(bytesOf(name, 'I64')),
    shape: (name) => {
      const found = header[name];
      if (!found) throw new Error(`fixture tensor ${name} not found`);
      return found.shape;
    },
  };
  return cached;
}

/** Indices where two fp32 arrays differ bit for bit (so −0 ≠ +0 and NaN payloads count). */
export function float32BitDifferences(actual: Float32Array, expected: Float32Array): number[] {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} ≠ ${expected.length}`);
  const actualBits = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const expectedBits = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  return [...actualBits.keys()].filter((index) => actualBits[index] !== expectedBits[index]);
}

/** Indices where two integer arrays differ. */
export function integerDifferences(actual: ArrayLike<number>, expected: ArrayLike<number>): number[] {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} ≠ ${expected.length}`);
  const indices = Array.from({ length: actual.length }, (_, index) => index);
  return indices.filter((index) => actual[index] !== expected[index]);
}

/** Deterministic uniform values in [low, high) (mulberry32), as fp32. */
export function seededUniform(count: number, seed: number, low = -1, high = 1): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    const unit = ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
    return low + (high - low) * unit;
  });
}

/** The nibble of element `index` in bnb's packing (even elements in the high nibble). */
export function nibbleAt(packed: Uint8Array, index: number): number {
  const byte = packed[index >> 1];
  return index % 2 === 0 ? byte >> 4 : byte & 0x0f;
}

interface Codebooks {
  nf4: { thresholds_ascending: number[]; values_by_code: number[] };
  fp4: { values_by_code: number[] };
}

/** `fixtures/peft-0.10/bnb/codebooks.json`: code values and thresholds as read from the bnb sources. */
export function codebooks(): Codebooks {
  const file = readFileSync(new URL('../../../../fixtures/peft-0.10/bnb/codebooks.json', import.meta.url), 'utf8');
  return JSON.parse(file) as Codebooks;
}
