import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, type LinearLike } from '@peft-ts/core';
import type { MistralConfig } from './mistral-config.js';

/** SwiGLU feed-forward: `down_proj(silu(gate_proj(x)) ⊙ up_proj(x))`, bias-free. */
export class MistralMLP extends Module {
  readonly kind = 'mistral_mlp';

  constructor(config: MistralConfig, options: { meta?: boolean } = {}) {
    super();
    const { hidden_size: hidden, intermediate_size: intermediate } = config;
    this.registerModule('gate_proj', new Linear(hidden, intermediate, { bias: false, meta: options.meta }));
    this.registerModule('up_proj', new Linear(hidden, intermediate, { bias: false, meta: options.meta }));
    this.registerModule('down_proj', new Linear(intermediate, hidden, { bias: false, meta: options.meta }));
  }

  forward(hidden: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const gate = this.child<LinearLike>('gate_proj').forward(hidden);
      const up = this.child<LinearLike>('up_proj').forward(hidden);
      return this.child<LinearLike>('down_proj').forward(swiGlu(gate, up));
    });
  }
}

/**
 * `silu(gate) ⊙ up` with its gradient written out: it keeps gate and up only, where autodiff also kept the sigmoid and
 * the activation (two more intermediate-wide tensors per layer).
 */
const swiGlu = tf.customGrad(((gate: tf.Tensor, up: tf.Tensor, save: (tensors: tf.Tensor[]) => void) => {
  save([gate, up]);
  return {
    value: tf.mul(tf.mul(gate, tf.sigmoid(gate)), up),
    gradFunc: (dy: tf.Tensor, [savedGate, savedUp]: tf.Tensor[]) =>
      tf.tidy(() => {
        const sigmoid = tf.sigmoid(savedGate);
        // silu'(g) = σ(g)·(1 + g·(1 − σ(g))).
        const slope = tf.mul(sigmoid, tf.add(1, tf.mul(savedGate, tf.sub(1, sigmoid))));
        return [tf.mul(tf.mul(dy, savedUp), slope), tf.mul(dy, tf.mul(savedGate, sigmoid))];
      }),
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (gate: tf.Tensor, up: tf.Tensor) => tf.Tensor;
