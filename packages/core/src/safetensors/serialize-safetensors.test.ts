import { describe, expect, it } from 'vitest';
import { deserializeSafetensors } from './deserialize-safetensors.js';
import { SAFETENSORS_DTYPES, type SafetensorsDtype } from './dtype.js';
import { SafetensorsError } from './safetensors-error.js';
import { serializeSafetensors } from './serialize-safetensors.js';
import type { SafetensorsTensor } from './tensor-data.js';

/** The values of a numeric tensor as plain numbers, for comparisons. */
function valuesOf(tensor: SafetensorsTensor | undefined): number[] {
  return Array.from(tensor?.data ?? [], Number);
}

function headerOf(bytes: Uint8Array): string {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return Buffer.from(bytes.subarray(8, 8 + length)).toString('utf8');
}

/** One small tensor of each dtype, with values that exercise sign and range. */
function sampleTensor(dtype: SafetensorsDtype): SafetensorsTensor {
  const shape = [2, 3];
  switch (dtype) {
    case 'BOOL':
      return { dtype, shape, data: Uint8Array.of(1, 0, 0, 1, 1, 0) };
    case 'U8':
    case 'F8_E5M2':
    case 'F8_E4M3':
      return { dtype, shape, data: Uint8Array.of(0, 1, 127, 128, 254, 255) };
    case 'I8':
      return { dtype, shape, data: Int8Array.of(-128, -1, 0, 1, 64, 127) };
    case 'I16':
      return { dtype, shape, data: Int16Array.of(-32768, -2, 0, 3, 1000, 32767) };
    case 'U16':
      return { dtype, shape, data: Uint16Array.of(0, 1, 2, 40000, 65534, 65535) };
    case 'F16':
    case 'BF16':
      return { dtype, shape, data: Float32Array.of(-2, -0.5, 0, 1, 3, -Infinity) };
    case 'I32':
      return { dtype, shape, data: Int32Array.of(-(2 ** 31), -5, 0, 7, 123456, 2 ** 31 - 1) };
    case 'U32':
      return { dtype, shape, data: Uint32Array.of(0, 1, 2, 3, 2 ** 31, 2 ** 32 - 1) };
    case 'F32':
      return { dtype, shape, data: Float32Array.of(-1.5, 0.1, 0, 1e-40, 3.4e38, NaN) };
    case 'F64':
      return { dtype, shape, data: Float64Array.of(-1.5, 0.1, 0, 5e-324, 1.7e308, Math.PI) };
    case 'I64':
      return { dtype, shape, data: BigInt64Array.of(-(2n ** 63n), -1n, 0n, 1n, 2n ** 53n + 1n, 2n ** 63n - 1n) };
    case 'U64':
      return { dtype, shape, data: BigUint64Array.of(0n, 1n, 2n, 3n, 2n ** 63n, 2n ** 64n - 1n) };
  }
}

describe('serializeSafetensors', () => {
  it('reproduces the worked example from the format description byte for byte', () => {
    const bytes = serializeSafetensors({ a: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } }, { format: 'pt' });
    expect(bytes.byteLength).toBe(104);
    expect(Array.from(bytes.subarray(0, 8))).toEqual([0x58, 0, 0, 0, 0, 0, 0, 0]);
    expect(headerOf(bytes)).toBe(
      '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   ',
    );
    expect(Array.from(bytes.subarray(96))).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40]);
  });

  it('omits __metadata__ when none is given and pads an exact multiple of 8 with nothing', () => {
    const bytes = serializeSafetensors({ ab: { dtype: 'U8', shape: [], data: Uint8Array.of(7) } });
    const header = headerOf(bytes);
    expect(header).toBe('{"ab":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}   ');
    expect(bytes.byteLength).toBe(8 + header.length + 1);
    const exact = serializeSafetensors({ abcde: { dtype: 'U8', shape: [], data: Uint8Array.of(7) } });
    expect(headerOf(exact)).toBe('{"abcde":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}');
  });

  it('orders tensors by descending dtype alignment, then by name bytes, in the header and the data', () => {
    const tensors = new Map<string, SafetensorsTensor>();
    for (const dtype of SAFETENSORS_DTYPES) tensors.set(`t_${dtype}`, sampleTensor(dtype));
    // A plain object would hoist the integer-like names; UTF-16 order would put "\uffff" after the emoji.
    tensors.set('2', { dtype: 'F32', shape: [1], data: Float32Array.of(2) });
    tensors.set('10', { dtype: 'F32', shape: [1], data: Float32Array.of(10) });
    tensors.set('\u{1f600}', { dtype: 'F32', shape: [1], data: Float32Array.of(0) });
    tensors.set('\uffff', { dtype: 'F32', shape: [1], data: Float32Array.of(0) });
    tensors.set('B', { dtype: 'F32', shape: [1], data: Float32Array.of(0) });
    tensors.set('a', { dtype: 'F32', shape: [1], data: Float32Array.of(0) });
    const bytes = serializeSafetensors(tensors);

    const header = headerOf(bytes);
    const order = [...header.matchAll(/"([^"]+)":\{"dtype"/g)].map((match) => match[1]);
    expect(order).toEqual([
      't_U64',
      't_I64',
      't_F64',
      '10',
      '2',
      'B',
      'a',
      't_F32',
      '\uffff',
      '\u{1f600}',
      't_U32',
      't_I32',
      't_BF16',
      't_F16',
      't_U16',
      't_I16',
      't_F8_E4M3',
      't_F8_E5M2',
      't_I8',
      't_U8',
      't_BOOL',
    ]);
    const parsed = deserializeSafetensors(bytes);
    expect([...parsed.tensors.keys()]).toEqual(order);
  });

  it('round-trips every dtype through bytes with exact values', () => {
    const tensors = Object.fromEntries(SAFETENSORS_DTYPES.map((dtype) => [dtype, sampleTensor(dtype)]));
    const parsed = deserializeSafetensors(serializeSafetensors(tensors, { note: 'x' }));
    expect(parsed.metadata).toEqual({ note: 'x' });
    for (const dtype of SAFETENSORS_DTYPES) {
      const read = parsed.tensors.get(dtype);
      expect(read?.dtype).toBe(dtype);
      expect(read?.shape).toEqual([2, 3]);
      expect(read?.data).toEqual(tensors[dtype].data);
      expect(read?.data.constructor).toBe(tensors[dtype].data.constructor);
    }
  });

  it('stores F16 and BF16 as rounded 16-bit patterns', () => {
    const data = Float32Array.of(1, 1 + 2 ** -11, 1 + 2 ** -8, 65520);
    const bytes = serializeSafetensors({
      half: { dtype: 'F16', shape: [4], data },
      brain: { dtype: 'BF16', shape: [4], data },
    });
    const stored = new Uint16Array(bytes.slice(bytes.byteLength - 16).buffer);
    // BF16 sorts before F16 in the file.
    expect(Array.from(stored)).toEqual([0x3f80, 0x3f80, 0x3f80, 0x4780, 0x3c00, 0x3c00, 0x3c04, 0x7c00]);
    const parsed = deserializeSafetensors(bytes);
    expect(valuesOf(parsed.tensors.get('half'))).toEqual([1, 1, 1 + 2 ** -8, Infinity]);
    expect(valuesOf(parsed.tensors.get('brain'))).toEqual([1, 1, 1, 65536]);
  });

  it('keeps the metadata key order as given, integer-like keys included', () => {
    const bytes = serializeSafetensors({}, { z: '1', '5': 'five', a: 'é"\n' });
    // Object.entries lists "5" first in any object; this checks the writer emits exactly that order, escaped.
    expect(headerOf(bytes).trimEnd()).toBe('{"__metadata__":{"5":"five","z":"1","a":"é\\"\\n"}}');
    expect(deserializeSafetensors(bytes).metadata).toEqual({ z: '1', '5': 'five', a: 'é"\n' });
  });

  it('handles empty tensors and a file with no tensors', () => {
    const bytes = serializeSafetensors({
      empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      one: { dtype: 'F32', shape: [1], data: Float32Array.of(5) },
    });
    const parsed = deserializeSafetensors(bytes);
    expect(parsed.tensors.get('empty')?.data.length).toBe(0);
    expect(parsed.tensors.get('empty')?.shape).toEqual([0, 4]);
    expect(valuesOf(parsed.tensors.get('one'))).toEqual([5]);
    expect(deserializeSafetensors(serializeSafetensors({})).tensors.size).toBe(0);
  });

  it('serializes a subarray view without including the bytes around it', () => {
    const backing = Float32Array.of(9, 1, 2, 9);
    const bytes = serializeSafetensors({ view: { dtype: 'F32', shape: [2], data: backing.subarray(1, 3) } });
    expect(valuesOf(deserializeSafetensors(bytes).tensors.get('view'))).toEqual([1, 2]);
  });

  it.each([
    ['a dtype/array mismatch', { dtype: 'F32', shape: [2], data: Float64Array.of(1, 2) }],
    ['F16 given as raw bits', { dtype: 'F16', shape: [1], data: Uint16Array.of(0x3c00) }],
    ['an element count mismatch', { dtype: 'F32', shape: [3], data: Float32Array.of(1, 2) }],
    ['a negative dimension', { dtype: 'F32', shape: [-2], data: Float32Array.of(1, 2) }],
    ['a fractional dimension', { dtype: 'F32', shape: [1.5], data: Float32Array.of(1, 2) }],
    ['an unknown dtype', { dtype: 'F128', shape: [1], data: Float32Array.of(1) }],
    ['a plain array', { dtype: 'F32', shape: [1], data: [1] }],
  ])('rejects %s with INVALID_TENSOR', (_, tensor) => {
    const attempt = () => serializeSafetensors({ bad: tensor as unknown as SafetensorsTensor });
    expect(attempt).toThrow(SafetensorsError);
    expect(attempt).toThrow(/bad.*INVALID_TENSOR/);
  });

  it('rejects a tensor named __metadata__ and non-string metadata', () => {
    expect(() => serializeSafetensors({ __metadata__: { dtype: 'U8', shape: [], data: Uint8Array.of(1) } })).toThrow(
      /INVALID_TENSOR/,
    );
    expect(() => serializeSafetensors({}, { version: 2 } as unknown as Record<string, string>)).toThrow(/INVALID_METADATA/);
  });
});
