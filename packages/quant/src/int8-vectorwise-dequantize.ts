import type { Int8Matrix } from './int8-vectorwise-quantize.js';

/** bnb's constant for 1/127: `7.874015718698502e-3` is exactly fp32(1/127), and torch multiplies by it in fp32. */
const INVERSE_127 = Math.fround(1 / 127);

/** bnb `int8_vectorwise_dequant`: `fp32(fp32(q · rowStats[row]) · fp32(1/127))`. */
export function int8VectorwiseDequantize(matrix: Int8Matrix): Float32Array {
  const { quantized, rowStats, columns } = matrix;
  const out = new Float32Array(quantized.length);
  for (let index = 0; index < quantized.length; index++) {
    out[index] = Math.fround(quantized[index] * rowStats[Math.floor(index / columns)]) * INVERSE_127;
  }
  return out;
}
