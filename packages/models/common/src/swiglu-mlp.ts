import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, type LinearLike } from '@peft-ts/core';
import type { DecoderConfig } from './decoder-config.js';
import { swiGlu } from './swiglu.js';

/** SwiGLU feed-forward: `down_proj(silu(gate_proj(x)) ⊙ up_proj(x))`, bias-free unless `mlp_bias`. */
export class SwiGluMlp extends Module {
  readonly kind = 'swiglu_mlp';

  constructor(config: DecoderConfig, options: { meta?: boolean } = {}) {
    super();
    const { hidden_size: hidden, intermediate_size: intermediate } = config;
    const settings = { bias: config.mlp_bias ?? false, meta: options.meta };
    this.registerModule('gate_proj', new Linear(hidden, intermediate, settings));
    this.registerModule('up_proj', new Linear(hidden, intermediate, settings));
    this.registerModule('down_proj', new Linear(intermediate, hidden, settings));
  }

  forward(hidden: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const gate = this.child<LinearLike>('gate_proj').forward(hidden);
      const up = this.child<LinearLike>('up_proj').forward(hidden);
      return this.child<LinearLike>('down_proj').forward(swiGlu(gate, up));
    });
  }
}
