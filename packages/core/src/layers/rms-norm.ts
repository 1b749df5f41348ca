import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../module.js';
import { Parameter } from '../parameter.js';

/** `weight · x / sqrt(mean(x², last axis) + eps)`, computed in float32 (as HF Mistral does). */
export class RMSNorm extends Module {
  readonly kind = 'rms_norm' as const;

  constructor(
    readonly hiddenSize: number,
    readonly eps = 1e-6,
    options: { meta?: boolean } = {},
  ) {
    super();
    if (options.meta) {
      this.registerParameter('weight', Parameter.meta([hiddenSize]));
    } else {
      const init = tf.ones([hiddenSize]);
      this.registerParameter('weight', new Parameter(init));
      init.dispose();
    }
  }

  get weight(): Parameter {
    return this.parameter('weight');
  }

  forward(input: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const variance = tf.mean(tf.square(input), -1, true);
      return tf.mul(this.weight.value, tf.mul(input, tf.rsqrt(tf.add(variance, this.eps))));
    });
  }
}
