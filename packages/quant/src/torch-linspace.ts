import { float32Fma } from './float32-fma.js';

/** Lanes of torch's `Vectorized<float>` on its default and AVX2 CPU builds. */
const LANES = 8;

/**
 * `torch.linspace(start, end, steps)` in float32 exactly as the torch 1.13 CPU kernel computes it, which
 * `create_dynamic_map` inherits. Scalar elements are `start + step·i` below the halfway index and
 * `end − step·(steps − 1 − i)` from it, each contracted into one FMA by the compiler; the vectorized loop
 * covers whole pairs of 8-lane vectors, each vector `base + k·step` from its first element with separate
 * roundings. Verified against bnb's `dynamic_code_8bit` fixture.
 */
export function torchLinspaceFloat32(start: number, end: number, steps: number): Float32Array {
  const first = Math.fround(start);
  const last = Math.fround(end);
  const out = new Float32Array(steps);
  if (steps === 1) out[0] = first;
  if (steps <= 1) return out;
  const step = Math.fround(Math.fround(last - first) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  const scalarAt = (index: number): number =>
    index < halfway ? float32Fma(step, index, first) : float32Fma(-step, steps - index - 1, last);
  const vectorized = steps - (steps % (2 * LANES));
  for (let vectorStart = 0; vectorStart < vectorized; vectorStart += LANES) {
    const base = scalarAt(vectorStart);
    for (let lane = 0; lane < LANES; lane++) out[vectorStart + lane] = base + Math.fround(lane * step);
  }
  for (let index = vectorized; index < steps; index++) out[index] = scalarAt(index);
  return out;
}
