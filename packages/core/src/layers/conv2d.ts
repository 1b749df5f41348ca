import * as tf from '@tensorflow/tfjs-core';
import { brandClass } from '@peft-ts/config/internal';
import { PeftError } from '../errors.js';
import { Module } from '../module.js';
import { Parameter } from '../parameter.js';
import { parameterWeightAccess, type WeightAccess } from '../weight-access.js';
import { uniformFanIn } from './linear.js';

export type Pair = readonly [number, number];

export type Conv2dGeometry = { stride: Pair; padding: Pair; dilation: Pair; groups: number };

export type Conv2dOptions = {
  stride?: number | Pair;
  padding?: number | Pair;
  dilation?: number | Pair;
  groups?: number;
  bias?: boolean;
  meta?: boolean;
};

const pair = (value: number | Pair | undefined, fallback: number): Pair =>
  value === undefined ? [fallback, fallback] : typeof value === 'number' ? [value, value] : value;

/**
 * PyTorch `conv2d` semantics on NCHW input with an [out, in/groups, kh, kw] weight. tfjs
 * convolves NHWC with HWIO filters and has no groups, so this transposes and splits groups.
 */
export function conv2d(input: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | null | undefined, geometry: Conv2dGeometry): tf.Tensor {
  const { stride, padding, dilation, groups } = geometry;
  if ((stride[0] > 1 || stride[1] > 1) && (dilation[0] > 1 || dilation[1] > 1)) {
    throw new PeftError('conv2d: stride > 1 together with dilation > 1 is not supported by the tfjs kernels');
  }
  return tf.tidy(() => {
    const nhwc = tf.transpose(input, [0, 2, 3, 1]) as tf.Tensor4D;
    const hwio = tf.transpose(weight, [2, 3, 1, 0]) as tf.Tensor4D;
    const explicitPadding: [[number, number], [number, number], [number, number], [number, number]] = [
      [0, 0],
      [padding[0], padding[0]],
      [padding[1], padding[1]],
      [0, 0],
    ];
    const convolve = (x: tf.Tensor4D, filter: tf.Tensor4D) =>
      tf.conv2d(x, filter, [stride[0], stride[1]], explicitPadding, 'NHWC', [dilation[0], dilation[1]]);
    let output: tf.Tensor4D;
    if (groups === 1) {
      output = convolve(nhwc, hwio);
    } else {
      const inputs = tf.split(nhwc, groups, 3);
      const filters = tf.split(hwio, groups, 3);
      output = tf.concat(inputs.map((x, group) => convolve(x as tf.Tensor4D, filters[group] as tf.Tensor4D)), 3);
    }
    if (bias) output = tf.add(output, bias);
    return tf.transpose(output, [0, 3, 1, 2]);
  });
}

export class Conv2d extends Module {
  static {
    brandClass(this, '@peft-ts/core:Conv2d');
  }

  readonly kind = 'conv2d' as const;
  readonly kernelSize: Pair;
  readonly geometry: Conv2dGeometry;
  readonly weightAccess: WeightAccess = parameterWeightAccess(() => this.weight);

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | Pair,
    options: Conv2dOptions = {},
  ) {
    super();
    this.kernelSize = pair(kernelSize, 1);
    const groups = options.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new PeftError(`Conv2d: channels ${inChannels}→${outChannels} are not divisible by groups ${groups}`);
    }
    this.geometry = {
      stride: pair(options.stride, 1),
      padding: pair(options.padding, 0),
      dilation: pair(options.dilation, 1),
      groups,
    };
    const fanIn = (inChannels / groups) * this.kernelSize[0] * this.kernelSize[1];
    const create = (shape: number[]) => {
      if (options.meta) return Parameter.meta(shape);
      const init = uniformFanIn(shape, fanIn);
      const parameter = new Parameter(init);
      init.dispose();
      return parameter;
    };
    this.registerParameter('weight', create([outChannels, inChannels / groups, ...this.kernelSize]));
    this.registerParameter('bias', (options.bias ?? true) ? create([outChannels]) : null);
  }

  get weight(): Parameter {
    return this.parameter('weight');
  }

  get bias(): Parameter | null {
    return this.hasParameter('bias') ? this.parameter('bias') : null;
  }

  forward(input: tf.Tensor): tf.Tensor {
    return conv2d(input, this.weight.value, this.bias?.value, this.geometry);
  }
}
