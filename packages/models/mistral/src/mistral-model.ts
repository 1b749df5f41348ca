import {
  DecoderForCausalLM,
  type CausalLmDefinition,
  type CausalLmInput,
  type CausalLmOptions,
  type CausalLmOutput,
  type DecoderConfig,
} from '@peft-ts/model-common';
import { lineageDecoderFields } from '@peft-ts/model-common/internal';
import { parseMistralConfig, type MistralConfig, type MistralConfigInput } from './mistral-config.js';

/** @deprecated Use `CausalLmOptions` from `@peft-ts/model-common`. */
export type MistralForCausalLMOptions = CausalLmOptions;
/** @deprecated Use `CausalLmInput` from `@peft-ts/model-common`. */
export type MistralCausalInput = CausalLmInput;
/** @deprecated Use `CausalLmOutput` from `@peft-ts/model-common`. */
export type MistralCausalOutput = CausalLmOutput;

/** Mistral's config as the shared decoder reads it: no biases, a sliding window unless `sliding_window` is null. */
export function mistralDecoderConfig(config: MistralConfig): DecoderConfig {
  return { ...lineageDecoderFields(config), sliding_window: config.sliding_window, attention_bias: false, mlp_bias: false };
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
