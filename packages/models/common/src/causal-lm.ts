import * as tf from '@tensorflow/tfjs-core';
import {
  Embedding,
  Linear,
  Module,
  ModuleList,
  ModulePathError,
  withRowAdapters,
  type AdapterTargetModel,
  type DecoderLayer,
  type DecoderModel,
  type LinearLike,
  type RowAdapterInput,
} from '@peft-ts/core';
import { nextSeed } from '@peft-ts/core/internal';
import { causalLanguageModelLoss } from './causal-language-model-loss.js';
import type { DecoderConfig, DecoderVariant } from './decoder-config.js';
import { TransformerDecoderLayer } from './decoder-layer.js';
import { DecoderStack, type DecoderForwardInput } from './decoder-stack.js';

/** What every family config has (it is written back to config.json with the layer count replication changes). */
export type FamilyConfig = { readonly num_hidden_layers: number };

/** How a family's config becomes the shared decoder, and the names its checkpoints and modules carry. */
export type CausalLmDefinition<C extends FamilyConfig> = {
  /** The module kind of the whole model, e.g. `mistral_for_causal_lm`. */
  readonly kind: string;
  /** transformers' class name, e.g. `MistralForCausalLM`: config.json's `architectures` on save, and errors. */
  readonly architecture: string;
  // Methods, not function-typed properties: a model of a family's config must still be a `DecoderForCausalLM`.
  /** The family's (validated) config as the shared blocks read it. */
  decoderConfig(config: C): DecoderConfig;
  /** Hooks beyond the config values (scaled rotary frequencies, …). */
  variant?(config: C): DecoderVariant;
  /** PEFT's default LoRA targets for the family (its `TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING` entry). */
  readonly defaultTargetModules: readonly string[];
  /**
   * Checkpoint tensors the loader skips instead of calling them unexpected (transformers'
   * `_keys_to_ignore_on_load_unexpected`, e.g. `rotary_emb.inv_freq` buffers older checkpoints saved).
   */
  readonly ignoredCheckpointKeys?: readonly RegExp[];
};

export type CausalLmOptions = {
  /** Shape-only: no tensor is allocated (planning, or loading layer by layer). */
  readonly meta?: boolean;
};

export type CausalLmInput = DecoderForwardInput &
  RowAdapterInput & {
  /** Next-token targets [batch, T] (usually the input ids); −100 excludes a position from the loss. */
  readonly labels?: tf.Tensor | null;
};

export type CausalLmOutput = {
  /** float32 [batch, T, vocab]. */
  readonly logits: tf.Tensor3D;
  /** Present when labels were given. */
  readonly loss?: tf.Scalar;
};

/**
 * transformers' `…ForCausalLM` of the Llama lineage with its module names (`model.embed_tokens`,
 * `model.layers.N.self_attn.q_proj`, …, `model.norm`, `lm_head`), so Hugging Face checkpoint keys and PEFT target
 * names apply unchanged. A family subclasses it (or instantiates it) with its `CausalLmDefinition`. Children are read
 * through `child()` at call time, so adapter injection and layer replication take effect without the model knowing.
 */
export class DecoderForCausalLM<C extends FamilyConfig = FamilyConfig> extends Module implements DecoderModel, AdapterTargetModel {
  readonly kind: string;
  readonly decoderLayersPath = 'model.layers';
  readonly defaultTargetModules: readonly string[];
  readonly outputEmbeddingKey = 'lm_head';
  private currentConfig: C;
  private currentDecoderConfig: DecoderConfig;

  /** Random weights as transformers initialises them (N(0, initializer_range), norms at one) unless `meta`. */
  constructor(
    readonly definition: CausalLmDefinition<C>,
    config: C,
    options: CausalLmOptions = {},
  ) {
    super();
    this.kind = definition.kind;
    this.defaultTargetModules = definition.defaultTargetModules;
    this.currentConfig = config;
    const decoder = definition.decoderConfig(config);
    this.currentDecoderConfig = decoder;
    this.registerModule('model', new DecoderStack(decoder, { meta: true, variant: definition.variant?.(config) }));
    this.registerModule('lm_head', new Linear(decoder.hidden_size, decoder.vocab_size, { bias: false, meta: true }));
    if (decoder.tie_word_embeddings) this.tieWeights();
    if (!options.meta) initializeWeights(this, decoder.initializer_range);
  }

  /** Gradient checkpointing per decoder layer (training mode only): less activation memory, one more forward. */
  get gradientCheckpointing(): boolean {
    return this.child<DecoderStack>('model').gradientCheckpointing;
  }

  set gradientCheckpointing(enabled: boolean) {
    this.child<DecoderStack>('model').gradientCheckpointing = enabled;
  }

  /** The family's config (written to config.json on save). */
  get config(): C {
    return this.currentConfig;
  }

  /** The config as the shared blocks, generation and the checkpoint loader read it. */
  get decoderConfig(): DecoderConfig {
    return this.currentDecoderConfig;
  }

  /** Points `lm_head` at the embedding's Parameter object (transformers' `tie_weights`). */
  tieWeights(): void {
    this.getSubmodule('lm_head').setParameter('weight', this.getSubmodule('model.embed_tokens').parameter('weight'));
  }

  decoderLayers(): ModuleList<TransformerDecoderLayer> {
    return this.getSubmodule(this.decoderLayersPath) as ModuleList<TransformerDecoderLayer>;
  }

  /** Installs `layers` in order, renumbering their KV-cache slots, and updates `num_hidden_layers`. */
  setDecoderLayers(layers: readonly DecoderLayer[]): void {
    const list = new ModuleList<TransformerDecoderLayer>();
    layers.forEach((layer, index) => {
      if (!(layer instanceof TransformerDecoderLayer)) {
        throw new ModulePathError(`setDecoderLayers: item ${index} is a '${layer.kind}', expected a TransformerDecoderLayer`);
      }
      layer.layerIndex = index;
      list.push(layer);
    });
    this.setSubmodule(this.decoderLayersPath, list);
    this.currentConfig = { ...this.currentConfig, num_hidden_layers: layers.length };
    this.currentDecoderConfig = { ...this.currentDecoderConfig, num_hidden_layers: layers.length };
  }

  /** With `adapterNames`, each batch row runs through its own adapter (a mixed batch, eval mode only). */
  forward(input: CausalLmInput): CausalLmOutput {
    return withRowAdapters(this, input.adapterNames, input.inputIds.shape[0], () => this.forwardAll(input));
  }

  private forwardAll(input: CausalLmInput): CausalLmOutput {
    const hidden = this.child<DecoderStack>('model').forward(input);
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
    this.child<DecoderStack>('model').dispose();
  }
}

/** transformers' `_init_weights`: linear and embedding weights N(0, std), the padding row zero, norms one. */
function initializeWeights(model: Module, deviation: number): void {
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
