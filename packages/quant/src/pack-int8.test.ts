import { describe, expect, it } from 'vitest';
import { INT8_BYTE_OFFSET, packInt8 } from './pack-int8.js';
import { unpackInt8 } from './unpack-int8.js';

describe('packInt8 / unpackInt8', () => {
  it('stores int8 as offset-binary bytes, one per value', () => {
    const packed = packInt8(Int8Array.of(-128, -127, -1, 0, 1, 127));
    expect(packed).toBeInstanceOf(Uint8Array);
    expect([...packed]).toEqual([0, 1, 127, 128, 129, 255]);
    expect(INT8_BYTE_OFFSET).toBe(128);
  });

  it('round-trips every int8 value', () => {
    const all = Int8Array.from({ length: 256 }, (_, index) => index - 128);
    expect([...unpackInt8(packInt8(all))]).toEqual([...all]);
    // The layer's decode: cast bytes to a number, subtract the offset.
    expect(Array.from(packInt8(all), (byte) => byte - INT8_BYTE_OFFSET)).toEqual([...all]);
  });
});
