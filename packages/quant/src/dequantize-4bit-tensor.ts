import * as tf from '@tensorflow/tfjs-core';
import { DYNAMIC_MAP } from './dynamic-map.js';
import { fourBitCode } from './four-bit-code.js';
import { unpackWordsTensor, wordsTensor } from './packed-words.js';
import type { QuantType } from './quant-state.js';
import type { Quantized4bit } from './quantize-4bit.js';
import {
  FUSED_KERNEL_BACKENDS,
  dequantize4bitKernel,
  matMul4bitKernel,
  nestedAbsmaxKernel,
  type FourBitKernelAttributes,
  type FourBitKernelInputs,
} from './webgpu-kernels.js';

/** A 4-bit weight as tensors: the packed codes and absmax as a layer stores them. */
export type FourBitTensors = {
  readonly quantType: QuantType;
  readonly blocksize: number;
  readonly shape: readonly number[];
  /** The packed bytes (two codes each, element 2j in the high nibble) as int32 words: see `packBytesIntoWords`. */
  readonly packed: tf.Tensor;
} & (
  | { readonly absmax: tf.Tensor; readonly nested?: undefined }
  | {
      readonly absmax?: undefined;
      /** Double quantization: dynamic-map codes (one byte per block, in int32 words), fp32 absmax per chunk, fp32 offset. */
      readonly nested: { readonly codes: tf.Tensor; readonly absmax: tf.Tensor; readonly offset: number; readonly blocksize: number };
    }
);

/**
 * For each byte value, the code values of its high and low nibble (element 2j is the high nibble), so one gather
 * unpacks a whole byte.
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

const elementCount = (shape: readonly number[]) => shape.reduce((product, size) => product * size, 1);

/** The tensors a layer holds for `quantized` (codes in int32 words, see `packBytesIntoWords`). */
export function fourBitTensors({ packed, state }: Quantized4bit): FourBitTensors {
  const fields = { quantType: state.quantType, blocksize: state.blocksize, shape: state.shape, packed: wordsTensor(packed) };
  if (!state.nested) return { ...fields, absmax: tf.tensor1d(state.absmax) };
  const { codes, absmax, offset, blocksize } = state.nested;
  return { ...fields, nested: { codes: wordsTensor(codes), absmax: tf.tensor1d(absmax), offset, blocksize } };
}

/** The fp32 absmax per block; double-quantized, restored as `fp32(map[code] · nested) + offset` (two roundings). */
function restoreAbsmax(weight: FourBitTensors): tf.Tensor {
  if (!weight.nested) return weight.absmax;
  const { codes, absmax, offset, blocksize } = weight.nested;
  const blocks = Math.ceil(elementCount(weight.shape) / weight.blocksize);
  const map = tf.tensor1d(DYNAMIC_MAP);
  const scaled =
    FUSED_KERNEL_BACKENDS.has(tf.getBackend())
      ? nestedAbsmaxKernel(codes, map, absmax, blocks, Math.log2(blocksize))
      : scaleBlocks(tf.gather(map, unpackWordsTensor(codes, blocks)), absmax, blocksize, blocks);
  return tf.add(scaled, tf.scalar(offset));
}

/** The kernels' view of a weight: its flattening as [rows, columns] with the last axis as columns. */
function kernelArguments(weight: FourBitTensors): [FourBitKernelInputs, FourBitKernelAttributes] {
  const weightColumns = weight.shape.length ? weight.shape[weight.shape.length - 1] : 1;
  const inputs = { packed: weight.packed, absmax: restoreAbsmax(weight), code: tf.tensor1d(fourBitCode(weight.quantType).values) };
  return [inputs, { weightRows: elementCount(weight.shape) / weightColumns, weightColumns, blockShift: Math.log2(weight.blocksize) }];
}

/**
 * bnb `dequantize_4bit` on a device backend, float32 in the weight's shape, equal to `dequantize4bit` bit for bit:
 * each value is one fp32 multiply of its code by its block's absmax. On webgpu and native a kernel decodes the words; elsewhere
 * tf ops unpack the bytes and gather both nibbles of each from a 256-entry table.
 */
export function dequantize4bitTensor(weight: FourBitTensors): tf.Tensor {
  return tf.tidy(() => {
    if (FUSED_KERNEL_BACKENDS.has(tf.getBackend())) return tf.reshape(dequantize4bitKernel(...kernelArguments(weight)), [...weight.shape]);
    const count = elementCount(weight.shape);
    const bytes = unpackWordsTensor(weight.packed, Math.ceil(count / 2));
    const pairs = tf.gather(tf.tensor2d(nibblePairTable(weight.quantType), [256, 2]), bytes);
    return tf.reshape(scaleBlocks(tf.reshape(pairs, [-1]), restoreAbsmax(weight), weight.blocksize, count), [...weight.shape]);
  });
}

/**
 * `x·Wᵀ` for a 2-D x and a 4-bit [out, in] weight. On webgpu and native the product dequantizes tile by tile inside the kernel
 * (differentiable in x); elsewhere it multiplies by `dequantize4bitTensor`'s weight.
 */
export function matMul4bitTensor(x: tf.Tensor2D, weight: FourBitTensors): tf.Tensor2D {
  return tf.tidy(() => {
    if (FUSED_KERNEL_BACKENDS.has(tf.getBackend())) return matMul4bitKernel(x, ...kernelArguments(weight), true);
    return tf.matMul(x, dequantize4bitTensor(weight), false, true);
  });
}
