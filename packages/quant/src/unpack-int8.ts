import { INT8_BYTE_OFFSET } from './pack-int8.js';

/** Inverse of `packInt8`: offset-binary bytes back to int8 codes. */
export function unpackInt8(bytes: Uint8Array): Int8Array {
  return Int8Array.from(bytes, (byte) => byte - INT8_BYTE_OFFSET);
}
