import { describe, expect, it } from 'vitest';
import { camelCaseKeys, snakeCaseKeys, snakeToCamelCase } from './case-conversion.js';

describe('case conversion', () => {
  it.each([
    ['lora_alpha', 'loraAlpha'],
    ['base_model_name_or_path', 'baseModelNameOrPath'],
    ['load_in_4bit', 'loadIn4bit'],
    ['bnb_4bit_compute_dtype', 'bnb4bitComputeDtype'],
    ['llm_int8_threshold', 'llmInt8Threshold'],
    ['r', 'r'],
  ])('%s → %s', (snake, camel) => {
    expect(snakeToCamelCase(snake)).toBe(camel);
  });

  it('renames top-level keys only and inverts with the snake_case names', () => {
    const file = { load_in_4bit: true, rank_pattern: { 'model.layers.0.q_proj': 4 } };
    const camel = camelCaseKeys(file);
    expect(camel).toEqual({ loadIn4bit: true, rankPattern: { 'model.layers.0.q_proj': 4 } });
    expect(snakeCaseKeys<typeof file>(camel, ['load_in_4bit', 'rank_pattern'])).toEqual(file);
  });

  it('omits undefined members when converting back', () => {
    expect(snakeCaseKeys<{ loftq_bits?: number }>({ loftqBits: undefined }, ['loftq_bits'])).toEqual({});
  });
});
