/**
 * Packed 4-bit codes as the layers store them: the bnb bytes (two codes each) four to a little-endian int32 word,
 * byte j of a word in bits 8j..8j+7. tfjs has no byte dtype, and its device backends spend four bytes on every
 * bool or int32 element: words keep the codes at half a byte each on every backend. tfjs itself reads typed
 * arrays in the platform's (little-endian) byte order, so both directions are views, not conversions.
 */
export function packBytesIntoWords(bytes: Uint8Array): Int32Array {
  const words = new Int32Array(Math.ceil(bytes.length / 4));
  new Uint8Array(words.buffer).set(bytes);
  return words;
}

/** The first `byteLength` bytes of `words` (the inverse of `packBytesIntoWords`). */
export function bytesOfWords(words: Int32Array, byteLength: number): Uint8Array {
  return new Uint8Array(words.buffer, words.byteOffset, byteLength);
}

