import * as tf from '@tensorflow/tfjs-core';
import { Module, ModulePathError, RMSNorm, type DecoderLayer } from '@peft-ts/core';
import { brandClass } from '@peft-ts/core/internal';
import { DecoderAttention, type AttentionContext } from './decoder-attention.js';
import type { DecoderConfig } from './decoder-config.js';
import { SwiGluMlp } from './swiglu-mlp.js';

/** A module that knows how to copy itself while sharing its weights (e.g. a quantized linear layer). */
type SelfCloning = Module & { cloneSharingParameters(): Module };

function isSelfCloning(module: Module): module is SelfCloning {
  return typeof (module as unknown as Partial<SelfCloning>).cloneSharingParameters === 'function';
}

/** Pre-norm block: `h += attn(norm(h)); h += mlp(norm(h))` (transformers' Llama/Mistral decoder layer). */
export class TransformerDecoderLayer extends Module implements DecoderLayer {
  static {
    brandClass(this, '@peft-ts/model-common:TransformerDecoderLayer');
  }

  readonly kind = 'decoder_layer';

  constructor(
    readonly config: DecoderConfig,
    /** The KV-cache slot (transformers' `self_attn.layer_idx`); replication renumbers it. */
    public layerIndex: number,
    options: { meta?: boolean } = {},
  ) {
    super();
    const { meta } = options;
    this.registerModule('self_attn', new DecoderAttention(config, { meta }));
    this.registerModule('mlp', new SwiGluMlp(config, { meta }));
    this.registerModule('input_layernorm', new RMSNorm(config.hidden_size, config.rms_norm_eps, { meta }));
    this.registerModule('post_attention_layernorm', new RMSNorm(config.hidden_size, config.rms_norm_eps, { meta }));
  }

  forward(hidden: tf.Tensor3D, context: AttentionContext): tf.Tensor3D {
    return tf.tidy(() => {
      const normed = this.child<RMSNorm>('input_layernorm').forward(hidden) as tf.Tensor3D;
      const attended = tf.add(hidden, this.child<DecoderAttention>('self_attn').forward(normed, this.layerIndex, context));
      const feedForward = this.child<SwiGluMlp>('mlp').forward(this.child<RMSNorm>('post_attention_layernorm').forward(attended));
      return tf.add(attended, feedForward) as tf.Tensor3D;
    });
  }

  /**
   * A layer built shape-only whose every Parameter is this layer's own object, so the copy computes with the same
   * weights without holding a second copy of them (PEFT's layer replication). A submodule replaced by another class
   * (a quantized linear, say) must offer `cloneSharingParameters()` itself.
   */
  cloneSharingParameters(): TransformerDecoderLayer {
    const clone = new TransformerDecoderLayer(this.config, this.layerIndex, { meta: true });
    shareParameters(this, clone, `layer ${this.layerIndex}`);
    clone.train(this.training);
    return clone;
  }
}

function shareParameters(source: Module, target: Module, path: string): void {
  for (const [name, parameter] of source.directParameters()) target.setParameter(name, parameter);
  for (const [name, child] of source.namedChildren()) {
    const childPath = `${path}.${name}`;
    const counterpart = target.hasChild(name) ? target.child(name) : null;
    if (counterpart && Object.getPrototypeOf(counterpart) === Object.getPrototypeOf(child)) {
      shareParameters(child, counterpart, childPath);
    } else if (counterpart && isSelfCloning(child)) {
      target.setSubmodule(name, child.cloneSharingParameters());
    } else {
      throw new ModulePathError(
        `cannot clone ${childPath}: it is a '${child.kind}' module that a fresh decoder layer does not build and that has no cloneSharingParameters()`,
      );
    }
  }
}
