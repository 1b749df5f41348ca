/**
 * Conversions between float32 and the two 16-bit float formats safetensors stores (IEEE binary16 "F16" and
 * bfloat16 "BF16"), done on bit patterns so that NaN payloads, signed zeros and subnormals survive exactly.
 * Narrowing rounds to nearest, ties to even; values beyond the F16 range become infinities.
 */

let float16Table: Uint32Array | undefined;

/** All 65,536 F16 patterns widened once: decoding then costs one lookup per element. */
function float16ToFloat32Table(): Uint32Array {
  if (float16Table) return float16Table;
  const table = new Uint32Array(0x10000);
  for (let bits = 0; bits < 0x10000; bits++) table[bits] = widenFloat16(bits);
  float16Table = table;
  return table;
}

function widenFloat16(bits: number): number {
  const sign = (bits & 0x8000) << 16;
  const exponent = (bits >> 10) & 0x1f;
  let mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal F16 values are normal in F32: shift the leading one into the implicit bit position.
  let widenedExponent = 113;
  while ((mantissa & 0x400) === 0) {
    mantissa <<= 1;
    widenedExponent--;
  }
  return (sign | (widenedExponent << 23) | ((mantissa & 0x3ff) << 13)) >>> 0;
}

function narrowToFloat16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) {
    if (mantissa === 0) return sign | 0x7c00;
    const payload = mantissa >>> 13;
    // Keep the top payload bits; if they are all zero the result would read as infinity, so mark it quiet.
    return sign | 0x7c00 | (payload === 0 ? 0x200 : payload);
  }
  const halfExponent = exponent - 112;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Below half the smallest subnormal (2^-25) everything rounds to zero.
    if (halfExponent < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    const truncated = significand >>> shift;
    const remainder = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    const roundUp = remainder > halfway || (remainder === halfway && (truncated & 1) === 1);
    return sign | (truncated + (roundUp ? 1 : 0));
  }
  const truncated = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  const roundUp = remainder > 0x1000 || (remainder === 0x1000 && (truncated & 1) === 1);
  // A carry out of the mantissa correctly bumps the exponent, up to infinity.
  return sign | (truncated + (roundUp ? 1 : 0));
}

function narrowToBfloat16(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) {
    const truncated = bits >>> 16;
    return (truncated & 0x7f) === 0 ? truncated | 0x40 : truncated;
  }
  const roundingBias = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + roundingBias) >>> 16) & 0xffff;
}

export function float16BitsToFloat32(bits: Uint16Array): Float32Array {
  const table = float16ToFloat32Table();
  const output = new Uint32Array(bits.length);
  for (let index = 0; index < bits.length; index++) output[index] = table[bits[index]];
  return new Float32Array(output.buffer);
}

export function float32ToFloat16Bits(values: Float32Array): Uint16Array {
  const input = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const output = new Uint16Array(values.length);
  for (let index = 0; index < input.length; index++) output[index] = narrowToFloat16(input[index]);
  return output;
}

export function bfloat16BitsToFloat32(bits: Uint16Array): Float32Array {
  const output = new Uint32Array(bits.length);
  for (let index = 0; index < bits.length; index++) output[index] = bits[index] << 16;
  return new Float32Array(output.buffer);
}

export function float32ToBfloat16Bits(values: Float32Array): Uint16Array {
  const input = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const output = new Uint16Array(values.length);
  for (let index = 0; index < input.length; index++) output[index] = narrowToBfloat16(input[index]);
  return output;
}
