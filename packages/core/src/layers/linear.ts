import * as tf from '@tensorflow/tfjs-core';
import { brandClass } from '@peft-ts/config/internal';
import { matMul } from '../matmul.js';
import { PeftError } from '../errors.js';
import { Module } from '../module.js';
import { Parameter } from '../parameter.js';
import { nextSeed } from '../random.js';
import { parameterWeightAccess, type LinearLike, type WeightAccess } from '../weight-access.js';

/**
 * The forward of a linear layer that computes `x·Wᵀ` from its own packed storage (half, 8-bit, 4-bit): the
 * feature count is checked against the layer, then `project(x) + b`.
 */
export function packedLinearForward(
  layerName: string,
  layer: { readonly inFeatures: number; readonly bias: Parameter | null },
  input: tf.Tensor,
  project: (input: tf.Tensor) => tf.Tensor,
): tf.Tensor {
  if (input.shape[input.rank - 1] !== layer.inFeatures) {
    throw new PeftError(`${layerName}: input has ${input.shape[input.rank - 1]} features, the layer takes ${layer.inFeatures}`);
  }
  return tf.tidy(() => {
    const output = project(input);
    return layer.bias ? tf.add(output, layer.bias.value) : output;
  });
}

export type LinearOptions = { bias?: boolean; meta?: boolean };

/** `y = x·Wᵀ + b` for input of any rank [..., in]; W is [out, in] (PyTorch layout). */
export function linear(input: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor | null): tf.Tensor {
  return tf.tidy(() => {
    const output = matMul(input, weight, false, true);
    return bias ? tf.add(output, bias) : output;
  });
}

/** PyTorch's default init for Linear/Conv weights and biases: U(±1/√fan_in). */
export function uniformFanIn(shape: number[], fanIn: number): tf.Tensor {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return tf.randomUniform(shape, -bound, bound, 'float32', nextSeed());
}

export class Linear extends Module implements LinearLike {
  static {
    brandClass(this, '@peft-ts/core:Linear');
  }

  readonly kind = 'linear' as const;
  readonly weightAccess: WeightAccess = parameterWeightAccess(() => this.weight);

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LinearOptions = {},
  ) {
    super();
    const withBias = options.bias ?? true;
    const create = (shape: number[]) => {
      if (options.meta) return Parameter.meta(shape);
      const init = uniformFanIn(shape, inFeatures);
      const parameter = new Parameter(init);
      init.dispose();
      return parameter;
    };
    this.registerParameter('weight', create([outFeatures, inFeatures]));
    this.registerParameter('bias', withBias ? create([outFeatures]) : null);
  }

  get weight(): Parameter {
    return this.parameter('weight');
  }

  get bias(): Parameter | null {
    return this.hasParameter('bias') ? this.parameter('bias') : null;
  }

  forward(input: tf.Tensor): tf.Tensor {
    return linear(input, this.weight.value, this.bias?.value);
  }
}
