/**
 * Index of the entry of a sorted 256-value code (the dynamic map) that `x` quantizes to, as the CUDA
 * `dQuantize` (non-stochastic) finds it: a 7-step binary search from index 127, then a choice between the
 * final pivot and the neighbour bracketing `x`, split at their fp32 midpoint. A tie at the midpoint keeps the
 * pivot; NaN falls through every `>` to index 0.
 */
export function dynamicCodeIndex(code: Float32Array, x: number): number {
  let pivot = 127;
  let below = 0;
  let above = 255;
  for (let step = 64; step > 0; step >>= 1) {
    if (x > code[pivot]) {
      below = pivot;
      pivot += step;
    } else {
      above = pivot;
      pivot -= step;
    }
  }
  const value = code[pivot];
  if (x > value) return x > Math.fround(code[above] + value) * 0.5 ? above : pivot;
  return x < Math.fround(code[below] + value) * 0.5 ? below : pivot;
}
