import * as tf from '@tensorflow/tfjs-core';
import { DYNAMIC_MAP } from './dynamic-map.js';
import { fourBitCode } from './four-bit-code.js';
import type { QuantType } from './quant-state.js';

/** A 4-bit weight as tensors: the packed bytes and absmax as a layer stores them. */
export type FourBitTensors = {
  readonly quantType: QuantType;
  readonly blocksize: number;
  readonly shape: readonly number[];
  /** Two codes per byte (element 2j in the high nibble), bytes in a bool tensor [⌈n/2⌉]. */
  readonly packed: tf.Tensor;
} & (
  | { readonly absmax: tf.Tensor; readonly nested?: undefined }
  | {
      readonly absmax?: undefined;
      /** Double quantization: dynamic-map codes as bytes [blocks], fp32 absmax per chunk, fp32 offset. */
      readonly nested: { readonly codes: tf.Tensor; readonly absmax: tf.Tensor; readonly offset: number; readonly blocksize: number };
    }
);

/**
 * For each byte value, the code values of its high and low nibble (element 2j is the high nibble), so one gather
 * unpacks a whole byte: no integer arithmetic over the large index range.
 */
const nibblePairTables = new Map<QuantType, Float32Array>();

function nibblePairTable(quantType: QuantType): Float32Array {
  let table = nibblePairTables.get(quantType);
  if (!table) {
    const { values } = fourBitCode(quantType);
    table = new Float32Array(512);
    for (let byte = 0; byte < 256; byte++) {
      table[2 * byte] = values[byte >> 4];
      table[2 * byte + 1] = values[byte & 0x0f];
    }
    nibblePairTables.set(quantType, table);
  }
  return table;
}

/** `values · scales[block]` over runs of `blocksize` (the last may be short), as one broadcast multiply. */
function scaleBlocks(values: tf.Tensor, scales: tf.Tensor, blocksize: number, count: number): tf.Tensor {
  const blocks = scales.size;
  const padded = blocks * blocksize;
  const full = values.size < padded ? tf.pad(values, [[0, padded - values.size]]) : values;
  const scaled = tf.reshape(tf.mul(tf.reshape(full, [blocks, blocksize]), tf.reshape(scales, [blocks, 1])), [padded]);
  return padded === count ? scaled : tf.slice(scaled, 0, count);
}

/**
 * bnb `dequantize_4bit` with tf ops, for backends whose tensors live on a device: one gather of both nibbles of
 * each byte from a 256-entry table, then one fp32 multiply by the block's absmax (double-quantized absmax restored
 * first as `fp32(map[code] · nested) + offset`), so the result equals `dequantize4bit` bit for bit. float32, in
 * the weight's shape.
 */
export function dequantize4bitTensor(weight: FourBitTensors): tf.Tensor {
  return tf.tidy(() => {
    const count = weight.shape.reduce((product, size) => product * size, 1);
    let absmax: tf.Tensor;
    if (weight.nested) {
      const { codes, absmax: nestedAbsmax, offset, blocksize } = weight.nested;
      const centred = tf.gather(tf.tensor1d(DYNAMIC_MAP), tf.cast(codes, 'int32'));
      absmax = tf.add(scaleBlocks(centred, nestedAbsmax, blocksize, codes.size), tf.scalar(offset));
    } else {
      absmax = weight.absmax;
    }
    const pairs = tf.gather(tf.tensor2d(nibblePairTable(weight.quantType), [256, 2]), tf.cast(weight.packed, 'int32'));
    return tf.reshape(scaleBlocks(tf.reshape(pairs, [-1]), absmax, weight.blocksize, count), [...weight.shape]);
  });
}
