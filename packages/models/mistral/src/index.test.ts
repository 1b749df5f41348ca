import * as common from '@peft-ts/model-common';
import { describe, expect, it } from 'vitest';
import * as mistral from './index.js';

describe('@peft-ts/model-mistral exports', () => {
  it('re-exports everything that moved to @peft-ts/model-common, as the same objects', () => {
    const missing = Object.entries(common).filter(([name, value]) => (mistral as Record<string, unknown>)[name] !== value);
    expect(missing.map(([name]) => name)).toEqual([]);
    expect(Object.keys(common)).toEqual(expect.arrayContaining(['generate', 'loadTokenizer', 'KeyValueCache', 'HfTokenizer', 'loadCausalLm']));
  });

  it('keeps the old names of the shared blocks as deprecated aliases', () => {
    expect(mistral.MistralTokenizer).toBe(common.HfTokenizer);
    expect(mistral.MistralAttention).toBe(common.DecoderAttention);
    expect(mistral.MistralMLP).toBe(common.SwiGluMlp);
    expect(mistral.MistralDecoderLayer).toBe(common.TransformerDecoderLayer);
    expect(mistral.MistralTransformer).toBe(common.DecoderStack);
  });

  it('describes Mistral as a family: model_type, a shape-only model, the linear weights a load reports', () => {
    const { mistralFamily, mistral7bV01Config } = mistral;
    expect(mistralFamily.modelType).toBe('mistral');
    const config = mistralFamily.parseConfig(mistralFamily.presets['mistral-7b-v0.1']!, { source: 'preset' });
    expect(config).toEqual(mistral.parseMistralConfig(mistral7bV01Config));
    const model = mistralFamily.create(config, { meta: true });
    expect(model).toBeInstanceOf(mistral.MistralForCausalLM);
    expect(model.kind).toBe('mistral_for_causal_lm');
    expect(model.getSubmodule('model.layers.31.self_attn.q_proj').parameter('weight').shape).toEqual([4096, 4096]);
    expect(mistralFamily.linearWeightCount(config)).toBe(32 * 7 + 1);
    expect(mistralFamily.decoderConfig(config)).toMatchObject({ head_dim: 128, sliding_window: 4096, attention_bias: false });
  });
});
