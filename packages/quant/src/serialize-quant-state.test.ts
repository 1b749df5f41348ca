import { describe, expect, it } from 'vitest';
import { parseQuantState } from './parse-quant-state.js';
import type { QuantType } from './quant-state.js';
import { quantize4bit } from './quantize-4bit.js';
import { serializeQuantState } from './serialize-quant-state.js';
import { quantFixtures } from './test/index.js';

const fixtures = quantFixtures();
const weight = fixtures.float32('weight');
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('serializeQuantState', () => {
  for (const quantType of ['nf4', 'fp4'] as QuantType[]) {
    it(`${quantType}: equals ${quantType}_dq_quant_state_packed byte for byte`, () => {
      const { state } = quantize4bit(weight, { quantType, shape: [64, 128], compressStatistics: true });
      expect([...serializeQuantState(state)]).toEqual([...fixtures.uint8(`${quantType}_dq_quant_state_packed`)]);
    });
  }

  it('writes only the plain fields without double quantization', () => {
    const { state } = quantize4bit(weight, { quantType: 'nf4', shape: [64, 128], dtype: 'bfloat16' });
    expect(new TextDecoder().decode(serializeQuantState(state))).toBe(
      '{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [64, 128]}',
    );
  });
});

describe('parseQuantState', () => {
  it('reads the fixture bytes back', () => {
    expect(parseQuantState(fixtures.uint8('nf4_dq_quant_state_packed'))).toEqual({
      quantType: 'nf4',
      blocksize: 64,
      dtype: 'float32',
      shape: [64, 128],
      nested: { blocksize: 256, dtype: 'float32', offset: fixtures.float32('nf4_dq_offset')[0] },
    });
  });

  it('round-trips a plain state', () => {
    const { state } = quantize4bit(new Float32Array(6), { quantType: 'fp4', shape: [2, 3], blocksize: 128 });
    const expected = { quantType: 'fp4', blocksize: 128, dtype: 'float32', shape: [2, 3] };
    expect(parseQuantState(serializeQuantState(state))).toEqual(expected);
  });

  it('rejects malformed states', () => {
    const plain = '"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [4]';
    expect(() => parseQuantState(Uint8Array.of(0xff))).toThrow(/UTF-8 JSON/);
    expect(() => parseQuantState(encode('[1]'))).toThrow(/object/);
    expect(() => parseQuantState(encode(`{${plain.replace('nf4', 'int4')}}`))).toThrow(/quant_type/);
    expect(() => parseQuantState(encode(`{${plain.replace('64', '48')}}`))).toThrow(/blocksize/);
    expect(() => parseQuantState(encode(`{${plain.replace('float32', 'int8')}}`))).toThrow(/dtype/);
    expect(() => parseQuantState(encode(`{${plain.replace('[4]', '[4.5]')}}`))).toThrow(/shape/);
    expect(() => parseQuantState(encode(`{${plain}, "nested_blocksize": 256}`))).toThrow(/all of/);
    const textOffset = '"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": "1"';
    expect(() => parseQuantState(encode(`{${plain}, ${textOffset}}`))).toThrow(/nested_offset/);
  });
});
