import { describe, expect, it } from 'vitest';
import { MistralConfigError, headDimension, parseMistralConfig } from './mistral-config.js';

describe('parseMistralConfig', () => {
  it("fills transformers' MistralConfig defaults", () => {
    const config = parseMistralConfig({});
    expect(config).toMatchObject({
      model_type: 'mistral',
      vocab_size: 32000,
      hidden_size: 4096,
      intermediate_size: 14336,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      hidden_act: 'silu',
      max_position_embeddings: 131072,
      initializer_range: 0.02,
      rms_norm_eps: 1e-6,
      use_cache: true,
      pad_token_id: null,
      bos_token_id: 1,
      eos_token_id: 2,
      tie_word_embeddings: false,
      rope_theta: 10000,
      sliding_window: 4096,
      attention_dropout: 0,
    });
    expect(headDimension(config)).toBe(128);
  });

  it('keeps unknown fields, resolves null KV heads and an explicit head_dim', () => {
    const config = parseMistralConfig(
      JSON.stringify({ architectures: ['MistralForCausalLM'], transformers_version: '4.39.3', num_key_value_heads: null, num_attention_heads: 4, hidden_size: 64 }),
    );
    expect(config.num_key_value_heads).toBe(4);
    expect((config as Record<string, unknown>).transformers_version).toBe('4.39.3');
    expect(headDimension(parseMistralConfig({ hidden_size: 5120, num_attention_heads: 32, head_dim: 128 }))).toBe(128);
    expect(parseMistralConfig({ sliding_window: null, eos_token_id: [2, 7] })).toMatchObject({ sliding_window: null, eos_token_id: [2, 7] });
  });

  it.each([
    [{ num_attention_heads: '4' }, 'config.json: num_attention_heads: expected a positive integer, got "4"'],
    [{ num_attention_heads: 0 }, 'config.json: num_attention_heads: expected a positive integer, got 0'],
    [{ rms_norm_eps: -1 }, 'config.json: rms_norm_eps: expected a positive number, got -1'],
    [{ sliding_window: 2.5 }, 'config.json: sliding_window: expected a positive integer or null, got 2.5'],
    [{ hidden_act: 'gelu' }, `config.json: hidden_act: expected 'silu' (the only activation Mistral uses), got "gelu"`],
    [{ model_type: 'llama' }, `config.json: model_type: expected 'mistral', got "llama"`],
    [{ eos_token_id: [2, -1] }, 'config.json: eos_token_id.1: expected a non-negative integer, a list of them, or null, got -1'],
    [{ attention_dropout: 1 }, 'config.json: attention_dropout: expected a number in [0, 1), got 1'],
    [{ hidden_size: 100, num_attention_heads: 32 }, 'config.json: hidden_size: expected a multiple of num_attention_heads (32), got 100'],
    [{ num_attention_heads: 32, num_key_value_heads: 5 }, 'config.json: num_key_value_heads: expected a divisor of num_attention_heads (32), got 5'],
  ])('rejects %j naming the file and the field', (input, message) => {
    expect(() => parseMistralConfig(input, { source: 'config.json' })).toThrow(message);
  });

  it('reports every problem at once, and bad JSON', () => {
    let error: unknown;
    try {
      parseMistralConfig({ vocab_size: -1, use_cache: 'yes' }, { source: 'config.json' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(MistralConfigError);
    expect((error as MistralConfigError).problems).toEqual([
      'vocab_size: expected a positive integer, got -1',
      'use_cache: expected true or false, got "yes"',
    ]);
    expect(() => parseMistralConfig('{"vocab_size": ', { source: 'dir/config.json' })).toThrow(/^dir\/config\.json: not valid JSON/);
    expect(() => parseMistralConfig('[1]', { source: 'config.json' })).toThrow('config.json: expected a JSON object');
  });
});
