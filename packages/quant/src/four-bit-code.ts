import { QuantError } from './errors.js';
import { encodeFp4, FP4_CODE } from './fp4-code.js';
import { encodeNf4, NF4_CODE } from './nf4-code.js';
import type { QuantType } from './quant-state.js';

/** A 4-bit data type: its 16 fp32 values and the CUDA encoder of scaled values. */
export interface FourBitCode {
  readonly values: Float32Array;
  readonly encode: (scaled: number) => number;
}

const CODES: Record<QuantType, FourBitCode> = {
  nf4: { values: NF4_CODE, encode: encodeNf4 },
  fp4: { values: FP4_CODE, encode: encodeFp4 },
};

export function fourBitCode(quantType: QuantType): FourBitCode {
  if (!Object.hasOwn(CODES, quantType)) {
    throw new QuantError(`quant type must be 'nf4' or 'fp4', got ${String(quantType)}`);
  }
  return CODES[quantType];
}
