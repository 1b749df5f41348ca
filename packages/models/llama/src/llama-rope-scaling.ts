import { defaultRotaryFrequencies, type RotaryFrequencies } from '@peft-ts/model-common';
import type { LlamaRopeScaling } from './llama-config.js';

/**
 * The dynamic-NTK base for a forward covering `positions` positions (transformers 4.39's
 * `LlamaDynamicNTKScalingRotaryEmbedding`): `θ·((f·L/M) − (f − 1))^(d/(d−2))`, each step rounded to float32 as torch
 * computes it on a float32 tensor.
 */
export function dynamicNtkBase(theta: number, headDimension: number, factor: number, maxPositionEmbeddings: number, positions: number): number {
  const f = Math.fround(factor);
  const ratio = Math.fround(Math.fround(f * positions) / maxPositionEmbeddings);
  const shifted = Math.fround(ratio - Math.fround(factor - 1));
  const power = Math.fround(Math.pow(shifted, Math.fround(headDimension / (headDimension - 2))));
  return Math.fround(Math.fround(theta) * power);
}

/**
 * Llama's rotary frequencies for its `rope_scaling`:
 * - null: `1 / θ^(2j/d)`;
 * - linear: the positions divided by the factor, which for the angle `p · inv_freq` is the same as dividing the
 *   frequencies (torch divides the float32 positions: `fround(p / f) · inv` and `p · fround(inv / f)` can differ in
 *   the angle's last bit, which the shared table's interface, frequencies only, cannot avoid);
 * - dynamic: unscaled up to `max_position_embeddings` positions, beyond that recomputed from `dynamicNtkBase`.
 *
 * transformers 4.39 derives the dynamic length from `max(position_ids) + 1`; the shared rotary table passes the
 * positions a forward covers (past + new), the same number whenever a batch row is unpadded (every generation).
 * transformers 4.39 also keeps the last scaled frequencies for later shorter forwards (the buffer is overwritten);
 * here a forward within the trained length is unscaled again, as later transformers versions do.
 */
export function llamaRotaryFrequencies(scaling: LlamaRopeScaling | null, maxPositionEmbeddings: number): RotaryFrequencies {
  if (scaling === null) return defaultRotaryFrequencies;
  const { factor } = scaling;
  if (scaling.type === 'linear') {
    return (request) => defaultRotaryFrequencies(request).map((frequency) => Math.fround(frequency / factor));
  }
  return (request) => {
    if (request.positions <= maxPositionEmbeddings) return defaultRotaryFrequencies(request);
    const theta = dynamicNtkBase(request.theta, request.headDimension, factor, maxPositionEmbeddings, request.positions);
    return defaultRotaryFrequencies({ ...request, theta });
  };
}
