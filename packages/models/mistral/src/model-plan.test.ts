import * as tf from '@tensorflow/tfjs-core';
import { countParameters } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { beforeAll, describe, expect, it } from 'vitest';
import { MistralForCausalLM } from './mistral-model.js';

/** Mistral-7B-v0.1's config.json (the fields that differ from the class defaults included). */
const mistral7b = {
  architectures: ['MistralForCausalLM'],
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  vocab_size: 32000,
  rms_norm_eps: 1e-5,
  max_position_embeddings: 32768,
  sliding_window: 4096,
  torch_dtype: 'bfloat16',
};

describe('shape-only plan of Mistral-7B-v0.1', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('has 7,241,732,096 parameters in 32 layers and allocates no tensor', () => {
    const before = tf.memory().numTensors;
    const model = new MistralForCausalLM(mistral7b, { meta: true });
    expect(tf.memory().numTensors).toBe(before);
    const count = countParameters(model);
    expect(count.total).toBe(7_241_732_096);
    expect(count.bytes).toBe(4 * 7_241_732_096);
    expect(model.decoderLayers().length).toBe(32);
    expect(model.getSubmodule('model.layers.31.self_attn.k_proj').parameter('weight').shape).toEqual([1024, 4096]);
    expect(model.getSubmodule('model.layers.31.mlp.down_proj').parameter('weight').shape).toEqual([4096, 14336]);
    expect(model.namedParameters().every(([, parameter]) => parameter.isMeta)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });
});
