import { PeftError } from '@peft-ts/core';
import { z } from 'zod';

/** A config.json that is not valid JSON, or a field of the wrong type, range or consistency (all listed). */
export class LlamaConfigError extends PeftError {
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
  ) {
    super(message);
  }
}

const positiveInteger = (message = 'expected a positive integer') => z.int({ error: message }).positive({ error: message });
const nonNegativeInteger = (message: string) => z.int({ error: message }).nonnegative({ error: message });
const positiveNumber = () =>
  z.number({ error: 'expected a positive number' }).positive({ error: 'expected a positive number' });
const EOS_EXPECTATION = 'expected a non-negative integer, a list of them, or null';
const ROPE_SCALING_EXPECTATION = 'expected null or an object with exactly the two fields type and factor';
const ROPE_FACTOR_EXPECTATION = 'expected a number greater than 1';
const boolean = () => z.boolean({ error: 'expected true or false' });

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
    initializer_range: z
      .number({ error: 'expected a non-negative number' })
      .nonnegative({ error: 'expected a non-negative number' })
      .default(0.02),
    rms_norm_eps: positiveNumber().default(1e-6),
    use_cache: boolean().default(true),
    pad_token_id: nonNegativeInteger('expected a non-negative integer or null').nullable().default(null),
    bos_token_id: nonNegativeInteger('expected a non-negative integer or null').nullable().default(1),
    eos_token_id: z
      .union([nonNegativeInteger(EOS_EXPECTATION), z.array(nonNegativeInteger(EOS_EXPECTATION))], { error: EOS_EXPECTATION })
      .nullable()
      .default(2),
    pretraining_tp: positiveInteger().default(1),
    tie_word_embeddings: boolean().default(false),
    rope_theta: positiveNumber().default(10000),
    rope_scaling: ropeScalingSchema.nullable().default(null),
    attention_bias: boolean().default(false),
    attention_dropout: z
      .number({ error: 'expected a number in [0, 1)' })
      .min(0, { error: 'expected a number in [0, 1)' })
      .lt(1, { error: 'expected a number in [0, 1)' })
      .default(0),
    torch_dtype: z.string({ error: 'expected a dtype name such as "float32" or null' }).nullable().optional(),
    // A pre-quantized checkpoint's BitsAndBytesConfig as transformers saved it; the layer loader validates it.
    quantization_config: z.record(z.string(), z.unknown(), { error: 'expected an object (a saved BitsAndBytesConfig)' }).optional(),
  })
  .superRefine((config, context) => {
    const keyValueHeads = config.num_key_value_heads ?? config.num_attention_heads;
    if (config.head_dim === undefined && config.hidden_size % config.num_attention_heads !== 0) {
      context.addIssue({
        code: 'custom',
        path: ['hidden_size'],
        message: `expected a multiple of num_attention_heads (${config.num_attention_heads}), got ${config.hidden_size}`,
      });
    }
    if (config.num_attention_heads % keyValueHeads !== 0) {
      context.addIssue({
        code: 'custom',
        path: ['num_key_value_heads'],
        message: `expected a divisor of num_attention_heads (${config.num_attention_heads}), got ${keyValueHeads}`,
      });
    }
  })
  .transform((config) => ({ ...config, num_key_value_heads: config.num_key_value_heads ?? config.num_attention_heads }));

/** A validated config with every default filled in (snake_case, exactly the config.json field names). */
export type LlamaConfig = z.output<typeof llamaConfigSchema>;
/** What a config.json may contain: every field optional. */
export type LlamaConfigInput = z.input<typeof llamaConfigSchema>;

/** Width of one attention head: the explicit `head_dim`, else hidden_size / num_attention_heads. */
export function llamaHeadDimension(config: LlamaConfig): number {
  return config.head_dim ?? config.hidden_size / config.num_attention_heads;
}

/**
 * Validates a config given as JSON text or an object. Every problem is reported at once, each naming the source
 * and the field: `config.json: rope_scaling.factor: expected a number greater than 1, got 1`.
 */
export function parseLlamaConfig(input: string | object, options: { source?: string } = {}): LlamaConfig {
  const source = options.source ?? 'Llama config';
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (error) {
      throw new LlamaConfigError(`${source}: not valid JSON (${(error as Error).message})`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LlamaConfigError(`${source}: expected a JSON object`);
  }
  const result = llamaConfigSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const field = issue.path.join('.');
    const given = issue.code === 'custom' ? undefined : valueAt(value, issue.path);
    return `${field}: ${issue.message}${given === undefined ? '' : `, got ${JSON.stringify(given)}`}`;
  });
  throw new LlamaConfigError(`${source}: ${problems.join('; ')}`, problems);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) value = (value as Record<PropertyKey, unknown> | undefined)?.[key];
  return value;
}
