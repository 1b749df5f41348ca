import type { QuantizationRoundTrip } from '@peft-ts/core';
import { QuantError } from './errors.js';
import { nf4RoundTrip } from './nf4-round-trip.js';
import { torchLinspaceFloat32 } from './torch-linspace.js';

/** PEFT's `NFQuantizer` block size and `create_normal_map` offset. */
const BLOCK_SIZE = 64;
const NORMAL_MAP_OFFSET = 0.9677083;

/**
 * The quantizer PEFT 0.10's `loftq_init` uses: bitsandbytes NF4 for 4 bits, its own `NFQuantizer` (a normal
 * map of 2^bits levels, absmax blocks of 64) for 2 and 8 bits.
 */
export const loftqQuantizer: QuantizationRoundTrip = {
  bits: [2, 4, 8],
  roundTrip(weight, shape, bits) {
    if (bits === 4) return nf4RoundTrip.roundTrip(weight, shape, bits);
    if (bits !== 2 && bits !== 8) throw new QuantError(`loftqQuantizer: loftq_bits must be 2, 4 or 8, got ${bits}`);
    return normalFloatRoundTrip(weight, shape, bits);
  },
};

/**
 * `NFQuantizer(method="normal", block_size=64)`: `quantize_block` then `dequantize_block`. Each value becomes the
 * level nearest to it over its block's absmax (the first on a tie, as argmin), times the absmax.
 */
export function normalFloatRoundTrip(weight: Float32Array, shape: readonly [number, number], bits: number): Float32Array {
  if (weight.length % BLOCK_SIZE !== 0) {
    throw new QuantError(`LoftQ ${bits}-bit: weight with shape (${shape[0]} x ${shape[1]}) is not dividable by block size ${BLOCK_SIZE}`);
  }
  const levels = normalMap(bits);
  const result = new Float32Array(weight.length);
  for (let start = 0; start < weight.length; start += BLOCK_SIZE) {
    let absmax = 0;
    for (let index = start; index < start + BLOCK_SIZE; index++) absmax = Math.max(absmax, Math.abs(weight[index]));
    // An all-zero block divides to NaN in PEFT, which dequantizes to zero: keep the zeros.
    if (absmax === 0) continue;
    for (let index = start; index < start + BLOCK_SIZE; index++) {
      const scaled = Math.fround(weight[index] / absmax);
      let best = 0;
      for (let level = 1; level < levels.length; level++) {
        if (Math.fround(Math.abs(scaled - levels[level])) < Math.fround(Math.abs(scaled - levels[best]))) best = level;
      }
      result[index] = Math.fround(levels[best] * absmax);
    }
  }
  return result;
}

/**
 * `create_normal_map(offset, symmetric=False, num_bits)`: normal quantiles at float32 `torch.linspace` points of
 * (offset … 0.5), 2^(bits−1) positive ones, a zero and 2^(bits−1) − 1 negative ones, sorted and divided by the
 * largest, in float32.
 */
export function normalMap(bits: number): Float32Array {
  const half = 2 ** bits / 2;
  const positive = Array.from(torchLinspaceFloat32(NORMAL_MAP_OFFSET, 0.5, half + 1).subarray(0, half), normalQuantile);
  const negative = Array.from(torchLinspaceFloat32(NORMAL_MAP_OFFSET, 0.5, half).subarray(0, half - 1), (p) => -normalQuantile(p));
  const values = Float32Array.from([...positive, 0, ...negative]).sort();
  const largest = values[values.length - 1];
  return values.map((value) => Math.fround(value / largest));
}

/**
 * Standard normal quantile by Wichura's AS 241 (about 16 digits), for p in [1e-11, 1 − 1e-11] (its first two
 * regions, which cover every point the normal map uses).
 */
function normalQuantile(p: number): number {
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (
      (q * polynomial(r, [3.387132872796366608, 133.14166789178437745, 1971.5909503065514427, 13731.693765509461125, 45921.953931549871457, 67265.770927008700853, 33430.575583588128105, 2509.0809287301226727])) /
      polynomial(r, [1, 42.313330701600911252, 687.1870074920579083, 5394.1960214247511077, 21213.794301586595867, 39307.89580009271061, 28729.085735721942674, 5226.495278852854561])
    );
  }
  const tail = Math.sqrt(-Math.log(q < 0 ? p : 1 - p));
  if (!(tail <= 5)) throw new QuantError(`normal quantile: p = ${p} is outside [1e-11, 1 - 1e-11]`);
  const r = tail - 1.6;
  const value =
    polynomial(r, [1.42343711074968357734, 4.6303378461565452959, 5.7694972214606914055, 3.64784832476320460504, 1.27045825245236838258, 0.24178072517745061177, 0.0227238449892691845833, 7.7454501427834140764e-4]) /
    polynomial(r, [1, 2.05319162663775882187, 1.6763848301838038494, 0.68976733498510000455, 0.14810397642748007459, 0.0151986665636164571966, 5.475938084995344946e-4, 1.05075007164441684324e-9]);
  return q < 0 ? -value : value;
}

/** Σ coefficients[k]·x^k by Horner's rule. */
function polynomial(x: number, coefficients: readonly number[]): number {
  return coefficients.reduceRight((sum, coefficient) => sum * x + coefficient, 0);
}
