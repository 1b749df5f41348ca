import { PeftError, hostMatrix, svd, type HostMatrix, type QuantizationRoundTrip } from '@peft-ts/core';

/** `init_lora_weights: "loftq"` for one layer: `loftq_config` plus the quantizer it alternates with. */
export type LoftqSettings = {
  readonly bits: number;
  readonly iterations: number;
  readonly quantizer: QuantizationRoundTrip;
};

/** PEFT 0.10's loftq_init takes a 2-D weight: Conv2d fails there, Embedding before it. */
export function loftqLayerError(): PeftError {
  return new PeftError('init_lora_weights: "loftq" initialises Linear layers only');
}

/** A LoftQ initialisation: A [r, in], B [out, r] and the dequantized weight that replaces the base weight. */
export type LoftqFactors = { readonly a: Float32Array; readonly b: Float32Array; readonly quantized: Float32Array };

/**
 * PEFT 0.10's `loftq_init`: starting from the residual R = W, repeat `iterations` times: Q = dequant(quant(R)),
 * fit the error W − Q by its rank-r SVD split as L = U·√S, R = √S·Vᵀ, and quantize W − L·R next.
 * A = R and B = L as they are: the adapter's scaling is not divided out (PEFT does not either, so the
 * initial W_q + s·B·A reproduces W only when s = 1).
 */
export function loftqFactors(weight: Float32Array, shape: readonly [number, number], rank: number, settings: LoftqSettings): LoftqFactors {
  const [rows, columns] = shape;
  const { bits, iterations, quantizer } = settings;
  if (!quantizer.bits.includes(bits)) {
    throw new PeftError(`loftq_config.loftq_bits: the quantizer supports ${quantizer.bits.join(', ')} bits, got ${bits}`);
  }
  if (!(Number.isInteger(iterations) && iterations > 0)) throw new PeftError(`loftq_config.loftq_iter: expected a positive integer, got ${iterations}`);
  if (rank > Math.min(rows, columns)) {
    throw new PeftError(`LoftQ: rank ${rank} exceeds the weight's smaller side (${rows}×${columns})`);
  }
  let residual = weight;
  let quantized = weight;
  let a: Float32Array = new Float32Array();
  let b: Float32Array = new Float32Array();
  for (let iteration = 0; iteration < iterations; iteration++) {
    quantized = quantizer.roundTrip(residual, shape, bits);
    ({ a, b } = splitLowRank(hostMatrix(rows, columns, weight.map((value, index) => value - quantized[index])), rank));
    residual = lowRankResidual(weight, b, a, rows, columns, rank);
  }
  return { a, b, quantized };
}

/** PEFT's `_low_rank_decomposition`: the rank-r SVD of `error` as B = U·√S, A = √S·Vᵀ. */
export function splitLowRank(error: HostMatrix, rank: number): { a: Float32Array; b: Float32Array } {
  const { rows, columns } = error;
  const { u, s, vt } = svd(error);
  const roots = s.subarray(0, rank).map(Math.sqrt);
  const b = new Float32Array(rows * rank);
  for (let row = 0; row < rows; row++) for (let j = 0; j < rank; j++) b[row * rank + j] = u.data[row * u.columns + j] * roots[j];
  const a = new Float32Array(rank * columns);
  for (let j = 0; j < rank; j++) for (let column = 0; column < columns; column++) a[j * columns + column] = roots[j] * vt.data[j * columns + column];
  return { a, b };
}

/** W − B·A. */
function lowRankResidual(weight: Float32Array, b: Float32Array, a: Float32Array, rows: number, columns: number, rank: number): Float32Array {
  const result = new Float32Array(rows * columns);
  for (let row = 0; row < rows; row++) {
    for (let column = 0; column < columns; column++) {
      let product = 0;
      for (let j = 0; j < rank; j++) product += b[row * rank + j] * a[j * columns + column];
      result[row * columns + column] = weight[row * columns + column] - product;
    }
  }
  return result;
}
