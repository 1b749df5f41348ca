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

/** A Mistral config.json that is not valid JSON, or a field of the wrong type, range or consistency (all listed). */
export class MistralConfigError extends ModelConfigError {
  static {
    brandClass(this, '@peft-ts/model-mistral:MistralConfigError');
  }
}

const { positiveInteger, positiveNumber, boolean } = configFields;

/**
 * transformers' `MistralConfig` (4.39 fields, plus the newer optional `head_dim`), with the class defaults.
 * Unknown fields (`architectures`, `transformers_version`, …) are kept and ignored. `num_key_value_heads: null`
 * resolves to `num_attention_heads`, as the Python class does.
 */
export const mistralConfigSchema = z
  .looseObject({
    model_type: z.literal('mistral', { error: "expected 'mistral'" }).default('mistral'),
    vocab_size: positiveInteger().default(32000),
    hidden_size: positiveInteger().default(4096),
    intermediate_size: positiveInteger().default(14336),
    num_hidden_layers: positiveInteger().default(32),
    num_attention_heads: positiveInteger().default(32),
    num_key_value_heads: positiveInteger('expected a positive integer or null').nullable().default(8),
    /** Absent in 4.39 (then hidden_size / num_attention_heads); explicit in later Mistral-family configs. */
    head_dim: positiveInteger().optional(),
    hidden_act: z.literal('silu', { error: "expected 'silu' (the only activation Mistral uses)" }).default('silu'),
    max_position_embeddings: positiveInteger().default(131072),
    initializer_range: configFields.nonNegativeNumber().default(0.02),
    rms_norm_eps: positiveNumber().default(1e-6),
    use_cache: boolean().default(true),
    pad_token_id: configFields.tokenId().default(null),
    bos_token_id: configFields.tokenId().default(1),
    eos_token_id: configFields.eosTokenId().default(2),
    tie_word_embeddings: boolean().default(false),
    rope_theta: positiveNumber().default(10000),
    sliding_window: positiveInteger('expected a positive integer or null').nullable().default(4096),
    attention_dropout: configFields.dropout().default(0),
    torch_dtype: configFields.torchDtype(),
    quantization_config: configFields.quantizationConfig(),
  })
  .superRefine(checkHeadCounts)
  .transform(resolveKeyValueHeads);

/** A validated config with every default filled in (snake_case, exactly the config.json field names). */
export type MistralConfig = z.output<typeof mistralConfigSchema>;
/** What a config.json may contain: every field optional. */
export type MistralConfigInput = z.input<typeof mistralConfigSchema>;

/** Width of one attention head: the explicit `head_dim`, else hidden_size / num_attention_heads. */
export function headDimension(config: MistralConfig): number {
  return headDimensionOf(config);
}

/**
 * Validates a config given as JSON text or an object. Every problem is reported at once, each naming the source
 * and the field: `config.json: num_attention_heads: expected a positive integer, got "4"`.
 */
export function parseMistralConfig(input: string | object, options: { source?: string } = {}): MistralConfig {
  return parseConfigJson(mistralConfigSchema, input, options.source ?? 'Mistral config', (message, problems) => new MistralConfigError(message, problems));
}
