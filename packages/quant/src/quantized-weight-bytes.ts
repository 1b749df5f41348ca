import { assertBlocksize } from './assert-blocksize.js';
import { QuantError } from './errors.js';

/** How a weight is stored: LLM.int8() row-wise, or 4-bit blockwise with optional double quantization. */
export type QuantizedWeightFormat =
  | { readonly kind: 'int8' }
  | { readonly kind: '4bit'; readonly blocksize?: number; readonly compressStatistics?: boolean };

export interface QuantizedWeightBytes {
  readonly parameters: number;
  /** Codes: 1 byte per parameter (int8) or 2 per byte (4-bit). */
  readonly codeBytes: number;
  /** Scales: fp32 SCB per row; fp32 absmax per block, or with double quantization 1 byte per block plus an
   * fp32 absmax per 256 blocks and the fp32 offset. */
  readonly statisticsBytes: number;
  readonly totalBytes: number;
  readonly bytesPerParameter: number;
}

/**
 * Bytes a quantized weight of this shape occupies when held compactly (int8 codes one per byte, 4-bit codes
 * packed). The code tables (16 and 256 fp32 values) are shared constants and not counted.
 */
export function quantizedWeightBytes(shape: readonly number[], format: QuantizedWeightFormat): QuantizedWeightBytes {
  const parameters = shape.reduce((product, size) => product * size, 1);
  let codeBytes: number;
  let statisticsBytes: number;
  if (format.kind === 'int8') {
    if (shape.length !== 2) throw new QuantError(`an int8 weight is [out, in], got [${shape.join(', ')}]`);
    codeBytes = parameters;
    statisticsBytes = 4 * shape[0];
  } else {
    const { blocksize = 64, compressStatistics = false } = format;
    assertBlocksize(blocksize);
    const blocks = Math.ceil(parameters / blocksize);
    codeBytes = Math.ceil(parameters / 2);
    statisticsBytes = compressStatistics ? blocks + 4 * Math.ceil(blocks / 256) + 4 : 4 * blocks;
  }
  const totalBytes = codeBytes + statisticsBytes;
  return { parameters, codeBytes, statisticsBytes, totalBytes, bytesPerParameter: totalBytes / parameters };
}
