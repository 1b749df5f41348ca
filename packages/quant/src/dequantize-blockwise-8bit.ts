import { assertBlocksize } from './assert-blocksize.js';
import { DYNAMIC_MAP } from './dynamic-map.js';
import { QuantError } from './errors.js';

/** bnb `dequantize_blockwise`: `code[codes[k]] · absmax[⌊k / blocksize⌋]`, one fp32 multiply. */
export function dequantizeBlockwise8bit(
  codes: Uint8Array,
  absmax: Float32Array,
  blocksize: number,
  code: Float32Array = DYNAMIC_MAP,
): Float32Array {
  assertBlocksize(blocksize);
  const blocks = Math.ceil(codes.length / blocksize);
  if (absmax.length !== blocks) {
    throw new QuantError(
      `${codes.length} codes in blocks of ${blocksize} need ${blocks} absmax values, got ${absmax.length}`,
    );
  }
  const out = new Float32Array(codes.length);
  for (let index = 0; index < codes.length; index++) {
    out[index] = code[codes[index]] * absmax[Math.floor(index / blocksize)];
  }
  return out;
}
