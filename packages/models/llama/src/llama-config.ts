import { brandClass } from '@peft-ts/core/internal';
import { ModelConfigError } from '@peft-ts/model-common';
import {
  checkHeadCounts,
  configFields,
  headDimensionOf,
  parseConfigJson,
  resolveKeyValueHeads,
} from '@peft-ts/model-common/internal';
import { z } from 'zod';

/** A Llama config.json that is not valid JSON, or a field of the wrong type, range or consistency (all listed). */
export class LlamaConfigError extends ModelConfigError {
  static {
    brandClass(this, '@peft-ts/model-llama:LlamaConfigError');
  }
}

const { positiveInteger, positiveNumber, boolean } = configFields;
const ROPE_SCALING_EXPECTATION = 'expected null or an object with exactly the two fields type and factor';
const ROPE_FACTOR_EXPECTATION = 'expected a number greater than 1';

/**
 * transformers 4.39's `rope_scaling` as `LlamaConfig._rope_scaling_validation` accepts it: exactly `type` and
 * `factor`. Python also requires the factor to be a float (so `2` is refused there and `2.0` accepted); JSON numbers
 * carry no such distinction once parsed, so any number above 1 is taken.
 */
const ropeScalingSchema = z.strictObject(
  {
    type: z.enum(['linear', 'dynamic'], { error: "expected 'linear' or 'dynamic'" }),
    factor: z.number({ error: ROPE_FACTOR_EXPECTATION }).gt(1, { error: ROPE_FACTOR_EXPECTATION }),
  },
  { error: ROPE_SCALING_EXPECTATION },
);

export type LlamaRopeScaling = z.output<typeof ropeScalingSchema>;

/**
 * transformers 4.39.3's `LlamaConfig` with the class defaults (plus the newer optional `head_dim`). Unknown fields
 * (`architectures`, `transformers_version`, …) are kept and ignored; Mistral's `sliding_window` is one of them, as
 * Llama attends to every earlier position. `num_key_value_heads: null` (the default) resolves to
 * `num_attention_heads`, as the Python class does. `pretraining_tp` is kept for the round trip: transformers' split
 * projections for it compute the same sums in another order.
 */
export const llamaConfigSchema = z
  .looseObject({
    model_type: z.literal('llama', { error: "expected 'llama'" }).default('llama'),
    vocab_size: positiveInteger().default(32000),
    hidden_size: positiveInteger().default(4096),
    intermediate_size: positiveInteger().default(11008),
    num_hidden_layers: positiveInteger().default(32),
    num_attention_heads: positiveInteger().default(32),
    num_key_value_heads: positiveInteger('expected a positive integer or null').nullable().default(null),
    /** Absent in 4.39 (then hidden_size / num_attention_heads); explicit in later Llama-family configs. */
    head_dim: positiveInteger().optional(),
    hidden_act: z.literal('silu', { error: "expected 'silu' (the only activation the shared decoder computes)" }).default('silu'),
    max_position_embeddings: positiveInteger().default(2048),
    initializer_range: configFields.nonNegativeNumber().default(0.02),
    rms_norm_eps: positiveNumber().default(1e-6),
    use_cache: boolean().default(true),
    pad_token_id: configFields.tokenId().default(null),
    bos_token_id: configFields.tokenId().default(1),
    eos_token_id: configFields.eosTokenId().default(2),
    pretraining_tp: positiveInteger().default(1),
    tie_word_embeddings: boolean().default(false),
    rope_theta: positiveNumber().default(10000),
    rope_scaling: ropeScalingSchema.nullable().default(null),
    attention_bias: boolean().default(false),
    attention_dropout: configFields.dropout().default(0),
    torch_dtype: configFields.torchDtype(),
    quantization_config: configFields.quantizationConfig(),
  })
  .superRefine(checkHeadCounts)
  .transform(resolveKeyValueHeads);

/** A validated config with every default filled in (snake_case, exactly the config.json field names). */
export type LlamaConfig = z.output<typeof llamaConfigSchema>;
/** What a config.json may contain: every field optional. */
export type LlamaConfigInput = z.input<typeof llamaConfigSchema>;

/** Width of one attention head: the explicit `head_dim`, else hidden_size / num_attention_heads. */
export function llamaHeadDimension(config: LlamaConfig): number {
  return headDimensionOf(config);
}

/**
 * Validates a config given as JSON text or an object. Every problem is reported at once, each naming the source
 * and the field: `config.json: rope_scaling.factor: expected a number greater than 1, got 1`.
 */
export function parseLlamaConfig(input: string | object, options: { source?: string } = {}): LlamaConfig {
  return parseConfigJson(llamaConfigSchema, input, options.source ?? 'Llama config', (message, problems) => new LlamaConfigError(message, problems));
}
