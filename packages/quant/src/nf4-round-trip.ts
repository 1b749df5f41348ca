import type { QuantizationRoundTrip } from '@peft-ts/core';
import { dequantize4bit } from './dequantize-4bit.js';
import { QuantError } from './errors.js';
import { quantize4bit } from './quantize-4bit.js';

/**
 * NF4 with blocks of 64 and plain absmax, as PEFT 0.10's LoftQ quantizes through bitsandbytes
 * (`Params4bit(compress_statistics=False, quant_type="nf4")`, then `dequantize_4bit`).
 */
export const nf4RoundTrip: QuantizationRoundTrip = {
  bits: [4],
  roundTrip(weight, shape, bits) {
    if (bits !== 4) throw new QuantError(`nf4RoundTrip: quantizes to 4 bits, got loftq_bits ${bits}`);
    const { packed, state } = quantize4bit(weight, { quantType: 'nf4', shape, blocksize: 64, compressStatistics: false });
    return dequantize4bit(packed, state);
  },
};
