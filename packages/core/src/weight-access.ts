import type * as tf from '@tensorflow/tfjs-core';
import type { Module } from './module.js';
import type { Parameter } from './parameter.js';

/**
 * How an adapter reaches the weight of the layer it wraps, whatever the storage (float, 8-bit,
 * 4-bit). The quant package implements it for its layers; adapters never import quant.
 */
export interface WeightAccess {
  /** False for forward-only formats: merging into them is refused with a clear error. */
  readonly supportsMerge: boolean;
  /** The (dequantized) float32 weight in PyTorch layout. The caller owns and disposes it. */
  getBaseWeight(): tf.Tensor;
  /**
   * Replaces the weight (re-quantizing where the storage is quantized). The caller keeps `weight` and awaits the
   * result: re-quantizing on the host has to read `weight` back, which device backends only do asynchronously.
   */
  setBaseWeight(weight: tf.Tensor): void | Promise<void>;
}

/** Any layer computing `x·Wᵀ + b` with `W` of shape [out, in]: float or quantized. */
export interface LinearLike extends Module {
  readonly kind: 'linear';
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bias: Parameter | null;
  readonly weightAccess: WeightAccess;
  forward(input: tf.Tensor): tf.Tensor;
}

export function isLinearLike(module: Module): module is LinearLike {
  return module.kind === 'linear' && 'weightAccess' in module;
}

/** WeightAccess over a plain float parameter. */
export function parameterWeightAccess(parameter: () => Parameter): WeightAccess {
  return {
    supportsMerge: true,
    getBaseWeight: () => parameter().value.clone(),
    setBaseWeight: (weight) => parameter().set(weight),
  };
}
