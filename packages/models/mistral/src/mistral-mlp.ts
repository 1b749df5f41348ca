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
      const activated = tf.mul(gate, tf.sigmoid(gate));
      return this.child<LinearLike>('down_proj').forward(tf.mul(activated, up));
    });
  }
}
