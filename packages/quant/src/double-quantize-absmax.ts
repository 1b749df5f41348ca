import { float32Mean } from './float32-mean.js';
import type { DoubleQuantizedAbsmax } from './quant-state.js';
import { quantizeBlockwise8bit } from './quantize-blockwise-8bit.js';

/** bnb's nested blocksize for double quantization. */
const NESTED_BLOCKSIZE = 256;

/**
 * bnb double quantization of 4-bit absmax (`compress_statistics=True`): subtract the fp32 mean, then
 * quantize blockwise (256) with the signed dynamic map.
 */
export function doubleQuantizeAbsmax(absmax: Float32Array): DoubleQuantizedAbsmax {
  const offset = float32Mean(absmax);
  const centred = Float32Array.from(absmax, (value) => value - offset);
  const { codes, absmax: nestedAbsmax } = quantizeBlockwise8bit(centred, NESTED_BLOCKSIZE);
  return { codes, absmax: nestedAbsmax, offset, blocksize: NESTED_BLOCKSIZE };
}
