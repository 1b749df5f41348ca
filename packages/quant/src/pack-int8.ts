/**
 * Offset added to int8 codes to store them as bytes 0–255. tfjs has no int8 dtype, but a `Uint8Array` in a
 * `'bool'` tensor keeps one raw byte per element; after a cast to int32/float32 a single subtraction of this
 * offset restores the signed value (two's complement would need a select).
 */
export const INT8_BYTE_OFFSET = 128;

/** int8 codes as offset-binary bytes (`value + 128`), one byte per code. */
export function packInt8(values: Int8Array): Uint8Array {
  return Uint8Array.from(values, (value) => value + INT8_BYTE_OFFSET);
}
