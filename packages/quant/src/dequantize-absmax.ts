import { dequantizeBlockwise8bit } from './dequantize-blockwise-8bit.js';
import type { QuantState4bit } from './quant-state.js';

/**
 * The fp32 per-block absmax of a 4-bit quant state; double-quantized ones are restored as bnb does,
 * `fp32(DYNAMIC_MAP[code] · nestedAbsmax) + offset` in fp32.
 */
export function dequantizeAbsmax(state: QuantState4bit): Float32Array {
  if (state.nested === undefined) return state.absmax;
  const { codes, absmax, offset, blocksize } = state.nested;
  return dequantizeBlockwise8bit(codes, absmax, blocksize).map((value) => value + offset);
}
