import * as tf from '@tensorflow/tfjs-core';
import { brandClass } from '@peft-ts/config/internal';
import { runFusedKernel } from '../backend/fused-kernels.js';
import { Module } from '../module.js';
import { Parameter } from '../parameter.js';

/** `weight · x / sqrt(mean(x², last axis) + eps)`, computed in float32 (as HF Mistral does). */
export class RMSNorm extends Module {
  static {
    brandClass(this, '@peft-ts/core:RMSNorm');
  }

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
    return normalize(input, this.eps, this.weight.value);
  }
}

/**
 * `weight · x · r`, r = (mean(x²) + ε)^−½, with its gradient written out: it keeps x and r only, where autodiff kept
 * four full-size tensors per norm (mean and add save their inputs just to read their shapes).
 */
function normalize(input: tf.Tensor, eps: number, weight: tf.Variable): tf.Tensor {
  // A frozen weight stays out of the inputs, so no gradient is computed for it.
  const trainable = weight.trainable;
  const run = tf.customGrad(((x: tf.Tensor, ...rest: unknown[]) => {
    const save = rest.pop() as (tensors: tf.Tensor[]) => void;
    const fused = runFusedKernel('PeftRmsNorm', { x, weight }, { eps });
    const inverse = fused ? fused[1] : tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps));
    save([x, inverse]);
    return {
      value: fused ? fused[0] : tf.mul(weight, tf.mul(x, inverse)),
      gradFunc: (dy: tf.Tensor, [savedX, savedInverse]: tf.Tensor[]) =>
        tf.tidy(() => {
          const fusedGradients = runFusedKernel('PeftRmsNormGrad', { dy, x: savedX, inverse: savedInverse, weight }, { trainable });
          if (fusedGradients) return fusedGradients;
          const scaled = tf.mul(dy, weight);
          // d(x·r)/dx applied to g: r·g − x·r³·mean(g·x).
          const correction = tf.mul(tf.pow(savedInverse, 3), tf.mean(tf.mul(scaled, savedX), -1, true));
          const inputGradient = tf.sub(tf.mul(scaled, savedInverse), tf.mul(savedX, correction));
          if (!trainable) return [inputGradient];
          const weightGradient = tf.sum(tf.reshape(tf.mul(dy, tf.mul(savedX, savedInverse)), [-1, weight.size]), 0);
          return [inputGradient, weightGradient];
        }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (...inputs: tf.Tensor[]) => tf.Tensor;
  return tf.tidy(() => (trainable ? run(input, weight) : run(input)));
}
