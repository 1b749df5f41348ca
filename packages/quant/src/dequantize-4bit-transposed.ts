import { assertBlocksize } from './assert-blocksize.js';
import { dequantizeAbsmax } from './dequantize-absmax.js';
import { QuantError } from './errors.js';
import { fourBitCode } from './four-bit-code.js';
import type { QuantState4bit } from './quant-state.js';

/** Rows written together, so each output run is 8 consecutive floats rather than one scattered float. */
const TILE_ROWS = 8;

/**
 * `dequantize4bit` of a 2-D [rows, columns] state written transposed, as row-major [columns, rows]: the weight of
 * `x·Wᵀ` already in the layout of an untransposed product's right operand, so a linear layer skips the transpose
 * copy. The same single fp32 multiply `code · absmax`, so the values equal `dequantize4bit`'s bit for bit.
 * Flat indices are shifted as int32, which holds any tensor tfjs can allocate (< 2^31 elements).
 */
export function dequantize4bitTransposed(packed: Uint8Array, state: QuantState4bit): Float32Array {
  assertBlocksize(state.blocksize);
  if (state.shape.length !== 2) throw new QuantError(`a transposed dequantization needs a 2-D state, got [${state.shape.join(', ')}]`);
  const [rows, columns] = state.shape;
  const count = rows * columns;
  const absmax = dequantizeAbsmax(state);
  if (packed.length !== Math.ceil(count / 2) || absmax.length !== Math.ceil(count / state.blocksize)) {
    throw new QuantError(
      `shape [${rows}, ${columns}] needs ${Math.ceil(count / 2)} bytes and ${Math.ceil(count / state.blocksize)} absmax values, ` +
        `got ${packed.length} and ${absmax.length}`,
    );
  }
  const { values: code } = fourBitCode(state.quantType);
  // The blocksize is a power of two: the block of a flat index is a shift away.
  const blockShift = Math.log2(state.blocksize);
  const out = new Float32Array(count);
  for (let tile = 0; tile < rows; tile += TILE_ROWS) {
    const tileEnd = Math.min(rows, tile + TILE_ROWS);
    for (let column = 0; column < columns; column++) {
      const target = column * rows;
      for (let row = tile; row < tileEnd; row++) {
        const index = row * columns + column;
        const byte = packed[index >> 1];
        out[target + row] = code[(index & 1) === 0 ? byte >> 4 : byte & 0x0f] * absmax[index >> blockShift];
      }
    }
  }
  return out;
}
