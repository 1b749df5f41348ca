import { PeftError } from '@peft-ts/core';
import { z } from 'zod';

/** A config.json that is not valid JSON, or a field of the wrong type, range or consistency (all listed). */
export class MistralConfigError extends PeftError {
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
const boolean = () => z.boolean({ error: 'expected true or false' });

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
    tie_word_embeddings: boolean().default(false),
    rope_theta: positiveNumber().default(10000),
    sliding_window: positiveInteger('expected a positive integer or null').nullable().default(4096),
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
export type MistralConfig = z.output<typeof mistralConfigSchema>;
/** What a config.json may contain: every field optional. */
export type MistralConfigInput = z.input<typeof mistralConfigSchema>;

/** Width of one attention head: the explicit `head_dim`, else hidden_size / num_attention_heads. */
export function headDimension(config: MistralConfig): number {
  return config.head_dim ?? config.hidden_size / config.num_attention_heads;
}

/**
 * Validates a config given as JSON text or an object. Every problem is reported at once, each naming the source
 * and the field: `config.json: num_attention_heads: expected a positive integer, got "4"`.
 */
export function parseMistralConfig(input: string | object, options: { source?: string } = {}): MistralConfig {
  const source = options.source ?? 'Mistral config';
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (error) {
      throw new MistralConfigError(`${source}: not valid JSON (${(error as Error).message})`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MistralConfigError(`${source}: expected a JSON object`);
  }
  const result = mistralConfigSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const field = issue.path.join('.');
    const given = issue.code === 'custom' ? undefined : valueAt(value, issue.path);
    return `${field}: ${issue.message}${given === undefined ? '' : `, got ${JSON.stringify(given)}`}`;
  });
  throw new MistralConfigError(`${source}: ${problems.join('; ')}`, problems);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) value = (value as Record<PropertyKey, unknown> | undefined)?.[key];
  return value;
}
