import * as tf from '@tensorflow/tfjs-core';

/**
 * Bytes as the quantized layers store them (bnb's packed 4-bit codes, two per byte; offset-binary int8 codes), four
 * to a little-endian int32 word, byte j of a word in bits 8j..8j+7. tfjs has no byte dtype, and its device backends
 * spend four bytes on every bool or int32 element: words keep a byte a byte on every backend. tfjs itself reads
 * typed arrays in the platform's (little-endian) byte order, so both directions are views, not conversions.
 */
export function packBytesIntoWords(bytes: Uint8Array): Int32Array {
  const words = new Int32Array(Math.ceil(bytes.length / 4));
  new Uint8Array(words.buffer).set(bytes);
  return words;
}

/** `bytes` as an int32 tensor of words. */
export function wordsTensor(bytes: Uint8Array): tf.Tensor1D {
  return tf.tensor1d(packBytesIntoWords(bytes), 'int32');
}

/** The first `byteLength` bytes of `words` (the inverse of `packBytesIntoWords`). */
export function bytesOfWords(words: Int32Array, byteLength: number): Uint8Array {
  return new Uint8Array(words.buffer, words.byteOffset, byteLength);
}


/**
 * The bytes of int32 words with tf ops (the int32 result holds 0–255). The integer division must be exact: it is on
 * cpu and tensorflow, not on wasm or webgpu, which go through float32 (the layers read words otherwise there).
 */
export function unpackWordsTensor(words: tf.Tensor, byteLength: number): tf.Tensor1D {
  return tf.tidy(() => {
    const byteScales = tf.tensor1d([1, 2 ** 8, 2 ** 16, 2 ** 24], 'int32');
    const bytes = tf.mod(tf.floorDiv(tf.reshape(words, [-1, 1]), byteScales), tf.scalar(256, 'int32'));
    return tf.slice(tf.reshape(bytes, [-1]), 0, byteLength) as tf.Tensor1D;
  });
}
