import { assertBlocksize } from './assert-blocksize.js';
import { blockwiseAbsmax } from './blockwise-absmax.js';
import { doubleQuantizeAbsmax } from './double-quantize-absmax.js';
import { QuantError } from './errors.js';
import { fourBitCode } from './four-bit-code.js';
import type { FloatDtype, QuantState4bit, QuantType } from './quant-state.js';

export interface Quantize4bitOptions {
  readonly quantType: QuantType;
  /** Shape recorded in the state; its product must equal the number of values. Default `[values.length]`. */
  readonly shape?: readonly number[];
  /** Power of two from 64 to 4096; default 64. */
  readonly blocksize?: number;
  /** Double-quantize the absmax (bnb `compress_statistics`, transformers `bnb_4bit_use_double_quant`). */
  readonly compressStatistics?: boolean;
  /** dtype recorded in the state (the values themselves are fp32). Default `'float32'`. */
  readonly dtype?: FloatDtype;
}

export interface Quantized4bit {
  /** Two codes per byte, element 2j in the high nibble: `⌈n/2⌉` bytes. */
  readonly packed: Uint8Array;
  readonly state: QuantState4bit;
}

/**
 * bnb `quantize_4bit` with the CUDA kernel's arithmetic: per block `u = v · fp32(1/absmax)` in fp32,
 * encoded by the NF4/FP4 decision tree. With odd n the last low nibble encodes a padding 0 scaled like its
 * block (the zero code: NF4 7, FP4 0). An all-zero block scales to NaN, so its codes are 0 (NF4 −1, FP4 +0);
 * they still dequantize to ±0.
 */
export function quantize4bit(values: Float32Array, options: Quantize4bitOptions): Quantized4bit {
  const { quantType, shape = [values.length], blocksize = 64, compressStatistics = false, dtype = 'float32' } = options;
  assertBlocksize(blocksize);
  const { encode } = fourBitCode(quantType);
  if (shape.reduce((product, size) => product * size, 1) !== values.length) {
    throw new QuantError(`shape [${shape.join(', ')}] does not hold ${values.length} values`);
  }
  const absmax = blockwiseAbsmax(values, blocksize);
  const packed = new Uint8Array(Math.ceil(values.length / 2));
  for (let block = 0; block < absmax.length; block++) {
    const inverse = Math.fround(1 / absmax[block]);
    const end = Math.min(values.length, (block + 1) * blocksize);
    for (let index = block * blocksize; index < end; index++) {
      const code = encode(Math.fround(values[index] * inverse));
      packed[index >> 1] |= index % 2 === 0 ? code << 4 : code;
    }
    if (end === values.length && end % 2 === 1) packed[end >> 1] |= encode(Math.fround(0 * inverse));
  }
  const fields = { quantType, blocksize, shape: [...shape], dtype };
  const state: QuantState4bit = compressStatistics
    ? { ...fields, nested: doubleQuantizeAbsmax(absmax) }
    : { ...fields, absmax };
  return { packed, state };
}
