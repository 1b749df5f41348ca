/**
 * A weight as it comes back from quantizing and dequantizing it. LoftQ alternates this with a low-rank fit of
 * the error; the quant package implements it (NF4), so adapters use it without importing quant.
 */
export interface QuantizationRoundTrip {
  /** Bit widths `roundTrip` accepts. */
  readonly bits: readonly number[];
  /** `dequantize(quantize(weight))` for a row-major [rows, columns] float weight. */
  roundTrip(weight: Float32Array, shape: readonly [number, number], bits: number): Float32Array;
}
