/** Lanes of torch's `Vectorized<float>` on its default and AVX2 CPU builds. */
const LANES = 8;
/** Independent accumulators `row_sum` interleaves (torch's `ilp_factor`). */
const INTERLEAVE = 4;
/** Levels of torch's cascade (`multi_row_sum`'s `num_levels`). */
const LEVELS = 4;

/**
 * torch `multi_row_sum`: sums `count` rows of INTERLEAVE items (each `width` fp32 lanes, row-major in
 * `values`) into INTERLEAVE accumulators, cascading partial sums up LEVELS levels every 2^levelPower rows.
 */
function multiRowSum(values: Float32Array, count: number, width: number): Float32Array {
  const ceilLog2 = count <= 1 ? 0 : 32 - Math.clz32(count - 1);
  const levelPower = Math.max(4, Math.floor(ceilLog2 / LEVELS));
  const levelStep = 2 ** levelPower;
  const levelMask = levelStep - 1;
  const rowSize = INTERLEAVE * width;
  const levels = Array.from({ length: LEVELS }, () => new Float32Array(rowSize));
  const addRow = (row: number): void => {
    for (let lane = 0; lane < rowSize; lane++) levels[0][lane] += values[row * rowSize + lane];
  };
  let row = 0;
  while (row + levelStep <= count) {
    for (let step = 0; step < levelStep; step++, row++) addRow(row);
    for (let level = 1; level < LEVELS; level++) {
      for (let lane = 0; lane < rowSize; lane++) levels[level][lane] += levels[level - 1][lane];
      levels[level - 1].fill(0);
      if ((row & (levelMask << (level * levelPower))) !== 0) break;
    }
  }
  for (; row < count; row++) addRow(row);
  for (let level = 1; level < LEVELS; level++) {
    for (let lane = 0; lane < rowSize; lane++) levels[0][lane] += levels[level][lane];
  }
  return levels[0];
}

/** torch `row_sum`: `count` items of `width` lanes summed lane-wise with INTERLEAVE accumulators. */
function rowSum(values: Float32Array, count: number, width: number): Float32Array {
  const rows = Math.floor(count / INTERLEAVE);
  const partial = multiRowSum(values, rows, width);
  for (let item = rows * INTERLEAVE; item < count; item++) {
    for (let lane = 0; lane < width; lane++) partial[lane] += values[item * width + lane];
  }
  for (let accumulator = 1; accumulator < INTERLEAVE; accumulator++) {
    for (let lane = 0; lane < width; lane++) partial[lane] += partial[accumulator * width + lane];
  }
  return partial.subarray(0, width);
}

/**
 * `torch.mean` of a contiguous fp32 vector, bit for bit as torch's CPU `cascade_sum` orders the additions
 * (8-lane vectors, 4 interleaved accumulators, then the tail and the lanes in order) followed by one fp32
 * division. bnb's double quantization takes its offset this way; the order matters in the last bit
 * (a plain running sum of the fixture's absmax is 1 ulp off). Exact while torch sums on one thread,
 * i.e. below its 32768-element grain size.
 */
export function float32Mean(values: Float32Array): number {
  const count = values.length;
  if (count < LANES) return Math.fround(rowSum(values, count, 1)[0] / count);
  const vectors = Math.floor(count / LANES);
  const lanes = rowSum(values, vectors, LANES);
  let total = 0;
  for (let index = vectors * LANES; index < count; index++) total = Math.fround(total + values[index]);
  for (const lane of lanes) total = Math.fround(total + lane);
  return Math.fround(total / count);
}
