const scratch = new Float64Array(1);
const scratchBits = new BigUint64Array(scratch.buffer);

/**
 * fp32 fused multiply-add `a·b + c` with a single rounding, for fp32 inputs. The product of two fp32
 * values is exact in fp64; the sum is rounded to odd in fp64 (last bit set when inexact), which makes
 * the final rounding to fp32 correct instead of double-rounded.
 */
export function float32Fma(a: number, b: number, c: number): number {
  const product = a * b;
  // TwoSum: `error` is exactly what rounding the sum to fp64 lost.
  const sum = product + c;
  const cPart = sum - product;
  const productPart = sum - cPart;
  const error = product - productPart + (c - cPart);
  scratch[0] = sum;
  if (error !== 0 && (scratchBits[0] & 1n) === 0n) {
    // One fp64 ulp towards the exact value: away from zero when the error has the sum's sign.
    scratchBits[0] += error > 0 === sum > 0 ? 1n : -1n;
  }
  return Math.fround(scratch[0]);
}
