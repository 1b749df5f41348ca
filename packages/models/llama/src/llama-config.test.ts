import { describe, expect, it } from 'vitest';
import { LlamaConfigError, llamaHeadDimension, parseLlamaConfig } from './llama-config.js';
import { llama2_7bConfig, tinyLlamaConfig } from './llama-presets.js';

describe('parseLlamaConfig', () => {
  it("fills transformers 4.39.3's LlamaConfig defaults", () => {
    const config = parseLlamaConfig({});
    expect(config).toMatchObject({
      model_type: 'llama',
      vocab_size: 32000,
      hidden_size: 4096,
      intermediate_size: 11008,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 32,
      hidden_act: 'silu',
      max_position_embeddings: 2048,
      initializer_range: 0.02,
      rms_norm_eps: 1e-6,
      use_cache: true,
      pad_token_id: null,
      bos_token_id: 1,
      eos_token_id: 2,
      pretraining_tp: 1,
      tie_word_embeddings: false,
      rope_theta: 10000,
      rope_scaling: null,
      attention_bias: false,
      attention_dropout: 0,
    });
    expect(llamaHeadDimension(config)).toBe(128);
  });

  it('keeps unknown fields (sliding_window is one), resolves KV heads, accepts both rope scaling types', () => {
    const config = parseLlamaConfig(JSON.stringify({ transformers_version: '4.39.3', sliding_window: 4096, num_key_value_heads: 8 }));
    expect(config.num_key_value_heads).toBe(8);
    expect((config as Record<string, unknown>).sliding_window).toBe(4096);
    expect(parseLlamaConfig({ rope_scaling: { type: 'linear', factor: 2.0 } }).rope_scaling).toEqual({ type: 'linear', factor: 2 });
    expect(parseLlamaConfig({ rope_scaling: { type: 'dynamic', factor: 1.5 } }).rope_scaling).toEqual({ type: 'dynamic', factor: 1.5 });
  });

  it('parses the presets', () => {
    expect(parseLlamaConfig(llama2_7bConfig)).toMatchObject({ max_position_embeddings: 4096, rms_norm_eps: 1e-5, num_key_value_heads: 32 });
    expect(llamaHeadDimension(parseLlamaConfig(tinyLlamaConfig))).toBe(8);
  });

  it.each([
    [{ rope_scaling: { type: 'yarn', factor: 2 } }, `config.json: rope_scaling.type: expected 'linear' or 'dynamic', got "yarn"`],
    [{ rope_scaling: { type: 'linear', factor: 1 } }, 'config.json: rope_scaling.factor: expected a number greater than 1, got 1'],
    [{ rope_scaling: { type: 'linear', factor: '2' } }, 'config.json: rope_scaling.factor: expected a number greater than 1, got "2"'],
    [{ rope_scaling: { type: 'linear' } }, 'config.json: rope_scaling.factor: expected a number greater than 1'],
    [{ rope_scaling: { factor: 2 } }, "config.json: rope_scaling.type: expected 'linear' or 'dynamic'"],
    [{ rope_scaling: 2 }, 'config.json: rope_scaling: expected null or an object with exactly the two fields type and factor, got 2'],
    [{ rope_scaling: { type: 'linear', factor: 2, original_max_position_embeddings: 8 } }, 'config.json: rope_scaling: expected null or an object with exactly the two fields type and factor'],
    [{ attention_bias: 1 }, 'config.json: attention_bias: expected true or false, got 1'],
    [{ pretraining_tp: 0 }, 'config.json: pretraining_tp: expected a positive integer, got 0'],
    [{ hidden_act: 'gelu' }, `config.json: hidden_act: expected 'silu' (the only activation the shared decoder computes), got "gelu"`],
    [{ model_type: 'mistral' }, `config.json: model_type: expected 'llama', got "mistral"`],
    [{ hidden_size: 100, num_attention_heads: 32 }, 'config.json: hidden_size: expected a multiple of num_attention_heads (32), got 100'],
    [{ num_attention_heads: 32, num_key_value_heads: 5 }, 'config.json: num_key_value_heads: expected a divisor of num_attention_heads (32), got 5'],
  ])('rejects %j naming the file and the field', (input, message) => {
    expect(() => parseLlamaConfig(input, { source: 'config.json' })).toThrow(message);
  });

  it('reports every problem at once, and bad JSON', () => {
    let error: unknown;
    try {
      parseLlamaConfig({ vocab_size: -1, rope_scaling: { type: 'linear', factor: 0.5 } }, { source: 'config.json' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(LlamaConfigError);
    expect((error as LlamaConfigError).problems).toEqual([
      'vocab_size: expected a positive integer, got -1',
      'rope_scaling.factor: expected a number greater than 1, got 0.5',
    ]);
    expect(() => parseLlamaConfig('{"vocab_size": ', { source: 'dir/config.json' })).toThrow(/^dir\/config\.json: not valid JSON/);
    expect(() => parseLlamaConfig('[1]', { source: 'config.json' })).toThrow('config.json: expected a JSON object');
  });
});
