/**
 * Offset added to int8 codes to store them as bytes 0–255 (tfjs has no int8 dtype; the bytes go four to an int32
 * word): a single subtraction of it restores the signed value, where two's complement would need a select.
 */
export const INT8_BYTE_OFFSET = 128;

/** int8 codes as offset-binary bytes (`value + 128`), one byte per code. */
export function packInt8(values: Int8Array): Uint8Array {
  return Uint8Array.from(values, (value) => value + INT8_BYTE_OFFSET);
}
