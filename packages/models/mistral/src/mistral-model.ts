import {
  DecoderForCausalLM,
  type CausalLmDefinition,
  type CausalLmInput,
  type CausalLmOptions,
  type CausalLmOutput,
  type DecoderConfig,
} from '@peft-ts/model-common';
import { headDimension, parseMistralConfig, type MistralConfig, type MistralConfigInput } from './mistral-config.js';

/** @deprecated Use `CausalLmOptions` from `@peft-ts/model-common`. */
export type MistralForCausalLMOptions = CausalLmOptions;
/** @deprecated Use `CausalLmInput` from `@peft-ts/model-common`. */
export type MistralCausalInput = CausalLmInput;
/** @deprecated Use `CausalLmOutput` from `@peft-ts/model-common`. */
export type MistralCausalOutput = CausalLmOutput;

/** Mistral's config as the shared decoder reads it: no biases, a sliding window unless `sliding_window` is null. */
export function mistralDecoderConfig(config: MistralConfig): DecoderConfig {
  return {
    vocab_size: config.vocab_size,
    hidden_size: config.hidden_size,
    intermediate_size: config.intermediate_size,
    num_hidden_layers: config.num_hidden_layers,
    num_attention_heads: config.num_attention_heads,
    num_key_value_heads: config.num_key_value_heads,
    head_dim: headDimension(config),
    rms_norm_eps: config.rms_norm_eps,
    rope_theta: config.rope_theta,
    max_position_embeddings: config.max_position_embeddings,
    sliding_window: config.sliding_window,
    attention_bias: false,
    mlp_bias: false,
    attention_dropout: config.attention_dropout,
    tie_word_embeddings: config.tie_word_embeddings,
    initializer_range: config.initializer_range,
    pad_token_id: config.pad_token_id,
    eos_token_id: config.eos_token_id,
    torch_dtype: config.torch_dtype,
    quantization_config: config.quantization_config,
  };
}

export const mistralDefinition: CausalLmDefinition<MistralConfig> = {
  kind: 'mistral_for_causal_lm',
  architecture: 'MistralForCausalLM',
  decoderConfig: mistralDecoderConfig,
  defaultTargetModules: ['q_proj', 'v_proj'],
};

/**
 * transformers' `MistralForCausalLM` with its module names (`model.layers.N.self_attn.q_proj`, …, `lm_head`), so
 * Hugging Face checkpoint keys and PEFT target names apply unchanged: the shared decoder of `@peft-ts/model-common`
 * built from a validated Mistral config.
 */
export class MistralForCausalLM extends DecoderForCausalLM<MistralConfig> {
  declare readonly kind: 'mistral_for_causal_lm';

  /** Random weights as transformers initialises them (N(0, initializer_range), norms at one) unless `meta`. */
  constructor(config: MistralConfigInput | MistralConfig, options: CausalLmOptions = {}) {
    super(mistralDefinition, parseMistralConfig(config, { source: 'MistralForCausalLM config' }), options);
  }
}
