import {
  DecoderForCausalLM,
  type CausalLmDefinition,
  type CausalLmOptions,
  type DecoderConfig,
} from '@peft-ts/model-common';
import { lineageDecoderFields } from '@peft-ts/model-common/internal';
import { parseLlamaConfig, type LlamaConfig, type LlamaConfigInput } from './llama-config.js';
import { llamaRotaryFrequencies } from './llama-rope-scaling.js';

/** Llama's config as the shared decoder reads it: full causal attention, biases on q/k/v/o when `attention_bias`. */
export function llamaDecoderConfig(config: LlamaConfig): DecoderConfig {
  return {
    ...lineageDecoderFields(config),
    sliding_window: null,
    attention_bias: config.attention_bias,
    mlp_bias: false,
    extends_positions: config.rope_scaling?.type === 'dynamic',
  };
}

export const llamaDefinition: CausalLmDefinition<LlamaConfig> = {
  kind: 'llama_for_causal_lm',
  architecture: 'LlamaForCausalLM',
  decoderConfig: llamaDecoderConfig,
  variant: (config) => ({ rotaryFrequencies: llamaRotaryFrequencies(config.rope_scaling, config.max_position_embeddings) }),
  defaultTargetModules: ['q_proj', 'v_proj'],
  // Older conversions saved the rotary buffer; it follows from the config, and transformers only warns about it.
  ignoredCheckpointKeys: [/\.rotary_emb\.inv_freq$/],
};

/**
 * transformers' `LlamaForCausalLM` with its module names (`model.layers.N.self_attn.q_proj`, `mlp.gate_proj`, …,
 * `lm_head`), so Hugging Face checkpoint keys and PEFT target names apply unchanged: the shared decoder of
 * `@peft-ts/model-common` built from a validated Llama config, with its `rope_scaling` applied.
 */
export class LlamaForCausalLM extends DecoderForCausalLM<LlamaConfig> {
  declare readonly kind: 'llama_for_causal_lm';

  /** Random weights as transformers initialises them (N(0, initializer_range), norms at one) unless `meta`. */
  constructor(config: LlamaConfigInput | LlamaConfig, options: CausalLmOptions = {}) {
    super(llamaDefinition, parseLlamaConfig(config, { source: 'LlamaForCausalLM config' }), options);
  }
}
