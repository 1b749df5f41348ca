import { describe, expect, it } from 'vitest';
import { describeUnknownKeys, suggestKey } from './key-suggestions.js';

const loraKeys = [
  'alpha_pattern', 'auto_mapping', 'base_model_name_or_path', 'bias', 'fan_in_fan_out', 'inference_mode',
  'init_lora_weights', 'layer_replication', 'layers_pattern', 'layers_to_transform', 'loftq_config', 'lora_alpha',
  'lora_dropout', 'megatron_config', 'megatron_core', 'modules_to_save', 'peft_type', 'r', 'rank_pattern',
  'revision', 'target_modules', 'task_type', 'use_dora', 'use_rslora',
];

describe('suggestKey', () => {
  it.each([
    ['lora_alpah', 'lora_alpha'],
    ['lora_droput', 'lora_dropout'],
    ['targer_modules', 'target_modules'],
    ['loraAlpha', 'lora_alpha'],
    ['LORA-ALPHA', 'lora_alpha'],
    ['use_rs_lora', 'use_rslora'],
    ['rr', 'r'],
  ])('suggests %s → %s', (key, expected) => {
    expect(suggestKey(key, loraKeys)).toBe(expected);
  });

  // Keys that later PEFT versions write are real fields, not typos of 0.10 fields.
  it.each([
    'peft_version', 'exclude_modules', 'lora_bias', 'use_qalora', 'qalora_group_size', 'eva_config',
    'corda_config', 'runtime_config', 'trainable_token_indices', 'target_parameters',
  ])('suggests nothing for the newer PEFT key %s', (key) => {
    expect(suggestKey(key, loraKeys)).toBeUndefined();
  });
});

describe('describeUnknownKeys', () => {
  it('quotes every key and adds suggestions where there are any', () => {
    expect(describeUnknownKeys(['lora_alpah', 'peft_version'], loraKeys)).toBe(
      '"lora_alpah" (did you mean "lora_alpha"?), "peft_version"',
    );
  });
});
