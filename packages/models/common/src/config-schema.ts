import { PeftError } from '@peft-ts/core';
import { brandClass } from '@peft-ts/core/internal';
import { z } from 'zod';

/** A config.json that is not valid JSON, or a field of the wrong type, range or consistency (all listed). */
export class ModelConfigError extends PeftError {
  static {
    brandClass(this, '@peft-ts/model-common:ModelConfigError');
  }

  constructor(
    message: string,
    readonly problems: readonly string[] = [],
  ) {
    super(message);
  }
}

const EOS_EXPECTATION = 'expected a non-negative integer, a list of them, or null';
const DROPOUT_EXPECTATION = 'expected a number in [0, 1)';

/** Field schemas with the messages config errors print, shared by every family's config.json schema. */
export const configFields = {
  positiveInteger: (message = 'expected a positive integer') => z.int({ error: message }).positive({ error: message }),
  nonNegativeInteger: (message: string) => z.int({ error: message }).nonnegative({ error: message }),
  positiveNumber: () => z.number({ error: 'expected a positive number' }).positive({ error: 'expected a positive number' }),
  nonNegativeNumber: () => z.number({ error: 'expected a non-negative number' }).nonnegative({ error: 'expected a non-negative number' }),
  boolean: () => z.boolean({ error: 'expected true or false' }),
  tokenId: () => configFields.nonNegativeInteger('expected a non-negative integer or null').nullable(),
  eosTokenId: () =>
    z.union([configFields.nonNegativeInteger(EOS_EXPECTATION), z.array(configFields.nonNegativeInteger(EOS_EXPECTATION))], { error: EOS_EXPECTATION }).nullable(),
  dropout: () => z.number({ error: DROPOUT_EXPECTATION }).min(0, { error: DROPOUT_EXPECTATION }).lt(1, { error: DROPOUT_EXPECTATION }),
  torchDtype: () => z.string({ error: 'expected a dtype name such as "float32" or null' }).nullable().optional(),
  // A pre-quantized checkpoint's BitsAndBytesConfig as transformers saved it; the layer loader validates it.
  quantizationConfig: () => z.record(z.string(), z.unknown(), { error: 'expected an object (a saved BitsAndBytesConfig)' }).optional(),
};

type HeadCounts = { hidden_size: number; num_attention_heads: number; num_key_value_heads: number | null; head_dim?: number };

/**
 * The attention-head checks every Llama-lineage config needs (heads divide the width unless head_dim is explicit;
 * key/value heads divide the heads), as a zod refinement listing each problem on its field.
 */
export function checkHeadCounts(config: HeadCounts, context: z.RefinementCtx): void {
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
}

/** `num_key_value_heads: null` resolves to `num_attention_heads`, as transformers' config classes do. */
export const resolveKeyValueHeads = <C extends { num_attention_heads: number; num_key_value_heads: number | null }>(config: C) => ({
  ...config,
  num_key_value_heads: config.num_key_value_heads ?? config.num_attention_heads,
});

/**
 * Validates a config given as JSON text or an object against a family's schema. Every problem is reported at
 * once, each naming the source and the field (`config.json: num_attention_heads: expected a positive integer, got
 * "4"`), as the family's error class.
 */
export function parseConfigJson<S extends z.ZodType>(
  schema: S,
  input: string | object,
  source: string,
  createError: (message: string, problems?: readonly string[]) => ModelConfigError,
): z.output<S> {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (error) {
      throw createError(`${source}: not valid JSON (${(error as Error).message})`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw createError(`${source}: expected a JSON object`);
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const field = issue.path.join('.');
    const given = issue.code === 'custom' ? undefined : valueAt(value, issue.path);
    return `${field}: ${issue.message}${given === undefined ? '' : `, got ${JSON.stringify(given)}`}`;
  });
  throw createError(`${source}: ${problems.join('; ')}`, problems);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) value = (value as Record<PropertyKey, unknown> | undefined)?.[key];
  return value;
}
