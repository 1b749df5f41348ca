import { assertBlocksize } from './assert-blocksize.js';
import { blockwiseAbsmax } from './blockwise-absmax.js';
import { DYNAMIC_MAP } from './dynamic-map.js';
import { dynamicCodeIndex } from './dynamic-code-index.js';

export interface QuantizedBlockwise8bit {
  /** One code index per value. */
  readonly codes: Uint8Array;
  /** fp32 absmax per block of `blocksize` values. */
  readonly absmax: Float32Array;
}

/**
 * bnb `quantize_blockwise` (CUDA `kQuantizeBlockwise`, 8-bit): each value is scaled by the fp32 reciprocal
 * of its block's absmax (`v · (1/absmax)`, two fp32 roundings) and mapped to a code index by `dQuantize`.
 * An all-zero block scales to NaN and gets index 0, as on CUDA.
 */
export function quantizeBlockwise8bit(
  values: Float32Array,
  blocksize: number,
  code: Float32Array = DYNAMIC_MAP,
): QuantizedBlockwise8bit {
  assertBlocksize(blocksize);
  const absmax = blockwiseAbsmax(values, blocksize);
  const codes = new Uint8Array(values.length);
  for (let block = 0; block < absmax.length; block++) {
    const inverse = Math.fround(1 / absmax[block]);
    const end = Math.min(values.length, (block + 1) * blocksize);
    for (let index = block * blocksize; index < end; index++) {
      codes[index] = dynamicCodeIndex(code, Math.fround(values[index] * inverse));
    }
  }
  return { codes, absmax };
}
