import * as tf from '@tensorflow/tfjs-core';
import {
  Embedding,
  Linear,
  Module,
  ModuleList,
  ModulePathError,
  nextSeed,
  withRowAdapters,
  type AdapterTargetModel,
  type DecoderLayer,
  type DecoderModel,
  type LinearLike,
  type RowAdapterInput,
} from '@peft-ts/core';
import { causalLanguageModelLoss } from './causal-language-model-loss.js';
import { parseMistralConfig, type MistralConfig, type MistralConfigInput } from './mistral-config.js';
import { MistralDecoderLayer } from './mistral-decoder-layer.js';
import { MistralTransformer, type MistralForwardInput } from './mistral-transformer.js';

export type MistralForCausalLMOptions = {
  /** Shape-only: no tensor is allocated (planning, or loading layer by layer). */
  readonly meta?: boolean;
};

export type MistralCausalInput = MistralForwardInput &
  RowAdapterInput & {
  /** Next-token targets [batch, T] (usually the input ids); −100 excludes a position from the loss. */
  readonly labels?: tf.Tensor | null;
};

export type MistralCausalOutput = {
  /** float32 [batch, T, vocab]. */
  readonly logits: tf.Tensor3D;
  /** Present when labels were given. */
  readonly loss?: tf.Scalar;
};

/**
 * transformers' `MistralForCausalLM` with its module names (`model.layers.N.self_attn.q_proj`, …, `lm_head`), so
 * Hugging Face checkpoint keys and PEFT target names apply unchanged. Children are read through `child()` at call
 * time, so adapter injection and layer replication take effect without the model knowing.
 */
export class MistralForCausalLM extends Module implements DecoderModel, AdapterTargetModel {
  readonly kind = 'mistral_for_causal_lm';
  readonly decoderLayersPath = 'model.layers';
  readonly defaultTargetModules = ['q_proj', 'v_proj'] as const;
  readonly outputEmbeddingKey = 'lm_head';
  private currentConfig: MistralConfig;

  /** Random weights as transformers initialises them (N(0, initializer_range), norms at one) unless `meta`. */
  constructor(config: MistralConfigInput | MistralConfig, options: MistralForCausalLMOptions = {}) {
    super();
    this.currentConfig = parseMistralConfig(config, { source: 'MistralForCausalLM config' });
    const parsed = this.currentConfig;
    this.registerModule('model', new MistralTransformer(parsed, { meta: true }));
    this.registerModule('lm_head', new Linear(parsed.hidden_size, parsed.vocab_size, { bias: false, meta: true }));
    if (parsed.tie_word_embeddings) this.tieWeights();
    if (!options.meta) initializeWeights(this, parsed.initializer_range);
  }

  /** Gradient checkpointing per decoder layer (training mode only): less activation memory, one more forward. */
  get gradientCheckpointing(): boolean {
    return this.child<MistralTransformer>('model').gradientCheckpointing;
  }

  set gradientCheckpointing(enabled: boolean) {
    this.child<MistralTransformer>('model').gradientCheckpointing = enabled;
  }

  get config(): MistralConfig {
    return this.currentConfig;
  }

  /** Points `lm_head` at the embedding's Parameter object (transformers' `tie_weights`). */
  tieWeights(): void {
    this.getSubmodule('lm_head').setParameter('weight', this.getSubmodule('model.embed_tokens').parameter('weight'));
  }

  decoderLayers(): ModuleList<MistralDecoderLayer> {
    return this.getSubmodule(this.decoderLayersPath) as ModuleList<MistralDecoderLayer>;
  }

  /** Installs `layers` in order, renumbering their KV-cache slots, and updates `num_hidden_layers`. */
  setDecoderLayers(layers: readonly DecoderLayer[]): void {
    const list = new ModuleList<MistralDecoderLayer>();
    layers.forEach((layer, index) => {
      if (!(layer instanceof MistralDecoderLayer)) {
        throw new ModulePathError(`setDecoderLayers: item ${index} is a '${layer.kind}', expected a MistralDecoderLayer`);
      }
      layer.layerIndex = index;
      list.push(layer);
    });
    this.setSubmodule(this.decoderLayersPath, list);
    this.currentConfig = { ...this.currentConfig, num_hidden_layers: layers.length };
  }

  /** With `adapterNames`, each batch row runs through its own adapter (a mixed batch, eval mode only). */
  forward(input: MistralCausalInput): MistralCausalOutput {
    return withRowAdapters(this, input.adapterNames, input.inputIds.shape[0], () => this.forwardAll(input));
  }

  private forwardAll(input: MistralCausalInput): MistralCausalOutput {
    const hidden = this.child<MistralTransformer>('model').forward(input);
    try {
      return tf.tidy(() => {
        const head = this.child<LinearLike>('lm_head');
        const logits = tf.cast(head.forward(hidden), 'float32') as tf.Tensor3D;
        return input.labels ? { logits, loss: causalLanguageModelLoss(logits, input.labels) } : { logits };
      });
    } finally {
      hidden.dispose();
    }
  }

  /** Frees every parameter and the rotary tables. */
  override dispose(): void {
    super.dispose();
    this.child<MistralTransformer>('model').dispose();
  }
}

/** transformers' `_init_weights`: linear and embedding weights N(0, std), the padding row zero, norms one. */
function initializeWeights(model: MistralForCausalLM, deviation: number): void {
  for (const [, module] of model.namedModules()) {
    for (const [name, parameter] of module.directParameters()) {
      if (!parameter.isMeta) continue;
      const value = initialParameterValue(module, parameter.shape, deviation);
      parameter.set(value, name);
      value.dispose();
    }
  }
}

/** transformers' `_init_weights` for one parameter: norms at one, the rest N(0, deviation), an embedding's padding row zero. */
export function initialParameterValue(module: Module, shape: readonly number[], deviation: number): tf.Tensor {
  return tf.tidy(() => {
    if (module.kind === 'rms_norm') return tf.ones([...shape]);
    const weight = tf.randomNormal([...shape], 0, deviation, 'float32', nextSeed());
    const padding = module instanceof Embedding ? module.paddingIndex : null;
    if (padding === null) return weight;
    const keep = tf.sub(1, tf.reshape(tf.oneHot(tf.tensor1d([padding], 'int32'), shape[0]), [-1, 1]));
    return tf.mul(weight, keep);
  });
}
