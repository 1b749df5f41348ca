import { assertBlocksize } from './assert-blocksize.js';
import { dequantizeAbsmax } from './dequantize-absmax.js';
import { QuantError } from './errors.js';
import { fourBitCode } from './four-bit-code.js';
import type { QuantState4bit } from './quant-state.js';

/**
 * bnb `dequantize_4bit` as fp32: element k is `code[nibble k] · absmax[⌊k / blocksize⌋]`, one fp32
 * multiply (nibble k is the high nibble of byte ⌊k/2⌋ for even k). Flattened in the state's shape; casting
 * to the state's dtype is left to the caller.
 */
export function dequantize4bit(packed: Uint8Array, state: QuantState4bit): Float32Array {
  assertBlocksize(state.blocksize);
  const { values: code } = fourBitCode(state.quantType);
  const count = state.shape.reduce((product, size) => product * size, 1);
  const absmax = dequantizeAbsmax(state);
  const bytes = Math.ceil(count / 2);
  const blocks = Math.ceil(count / state.blocksize);
  if (packed.length !== bytes || absmax.length !== blocks) {
    throw new QuantError(
      `shape [${state.shape.join(', ')}] needs ${bytes} bytes and ${blocks} absmax values, ` +
        `got ${packed.length} and ${absmax.length}`,
    );
  }
  const out = new Float32Array(count);
  for (let index = 0; index < count; index++) {
    const byte = packed[index >> 1];
    const nibble = index % 2 === 0 ? byte >> 4 : byte & 0x0f;
    out[index] = code[nibble] * absmax[Math.floor(index / state.blocksize)];
  }
  return out;
}
