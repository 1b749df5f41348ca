import { QuantError } from './errors.js';
import { roundHalfToEven } from './round-half-to-even.js';

/** A row-wise int8 quantized matrix (bnb `CB`/`SCB` for weights, `CA`/`SCA` for activations). */
export interface Int8Matrix {
  /** Row-major `[rows, columns]` codes. */
  readonly quantized: Int8Array;
  /** fp32 max |x| of each row, outliers excluded. */
  readonly rowStats: Float32Array;
  readonly rows: number;
  readonly columns: number;
}

export interface Int8VectorwiseQuantized extends Int8Matrix {
  /** Ascending indices of the columns holding an |x| ≥ threshold; empty without a threshold. */
  readonly outlierColumns: Int32Array;
}

/**
 * LLM.int8() vector-wise quantization (bnb `int8_vectorwise_quant`): `rowStats[r] = max |x[r,:]|` and
 * `q = rint(x · fp32(fp32(1/rowStats) · 127))`; torch evaluates `127 / rowStats` as reciprocal times 127,
 * which can differ from a true division in the last bit and flip a rounding. With `threshold > 0`, elements
 * with |x| ≥ threshold count as 0 for the row max and their whole columns are zeroed in `q` (they go
 * through the fp matmul instead). An all-zero row (0 · ∞ = NaN) quantizes to 0.
 */
export function int8VectorwiseQuantize(
  values: Float32Array,
  rows: number,
  columns: number,
  threshold = 0,
): Int8VectorwiseQuantized {
  if (values.length !== rows * columns) {
    throw new QuantError(`[${rows}, ${columns}] needs ${rows * columns} values, got ${values.length}`);
  }
  // torch compares the fp32 tensor against the threshold cast to fp32.
  const limit = threshold > 0 ? Math.fround(threshold) : Infinity;
  const isOutlierColumn = new Uint8Array(columns);
  const rowStats = new Float32Array(rows);
  for (let row = 0; row < rows; row++) {
    let max = 0;
    for (let column = 0; column < columns; column++) {
      const magnitude = Math.abs(values[row * columns + column]);
      if (magnitude >= limit) isOutlierColumn[column] = 1;
      else if (magnitude > max) max = magnitude;
    }
    rowStats[row] = max;
  }
  const quantized = new Int8Array(rows * columns);
  for (let row = 0; row < rows; row++) {
    const scale = Math.fround(Math.fround(1 / rowStats[row]) * 127);
    for (let column = 0; column < columns; column++) {
      if (isOutlierColumn[column]) continue;
      // A NaN (all-zero row) stores as 0 in an Int8Array.
      quantized[row * columns + column] = roundHalfToEven(Math.fround(values[row * columns + column] * scale));
    }
  }
  const outlierColumns = Int32Array.from(isOutlierColumn.keys()).filter((column) => isOutlierColumn[column] === 1);
  return { quantized, rowStats, rows, columns, outlierColumns };
}
