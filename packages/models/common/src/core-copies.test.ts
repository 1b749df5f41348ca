import * as tf from '@tensorflow/tfjs-core';
import { HalfEmbedding, HalfLinear, Linear, manualSeed } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { importAsSecondCopy, maxAbsDifference } from '@peft-ts/core/test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecoderForCausalLM, type CausalLmDefinition } from './causal-lm.js';
import type { DecoderConfig } from './decoder-config.js';
import { loadCausalLm } from './load-checkpoint.js';
import { saveCausalLm } from './save-checkpoint.js';

const tiny: DecoderConfig = {
  vocab_size: 32,
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 4,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 16,
  sliding_window: null,
  attention_bias: false,
  mlp_bias: false,
  tie_word_embeddings: false,
  initializer_range: 0.2,
  pad_token_id: null,
  eos_token_id: 2,
  torch_dtype: 'bfloat16',
};

const definition: CausalLmDefinition<DecoderConfig> = {
  kind: 'test_for_causal_lm',
  architecture: 'TestForCausalLM',
  decoderConfig: (config) => config,
  variant: () => ({}),
  defaultTargetModules: ['q_proj', 'v_proj'],
};

describe('loadCausalLm into a model built with a second copy of @peft-ts/core', () => {
  let directory: string;
  beforeAll(async () => {
    await initBackend('cpu');
    directory = await mkdtemp(join(tmpdir(), 'peft-ts-core-copies-'));
  });
  afterAll(() => rm(directory, { recursive: true, force: true }));

  it('keeps a bfloat16 checkpoint half in its Linear and Embedding layers, as for a model of its own copy', async () => {
    manualSeed(5);
    const saved = new DecoderForCausalLM(definition, tiny);
    await saveCausalLm(saved, directory);
    saved.dispose();
    const copy = await importAsSecondCopy(() => import('./causal-lm.js'));
    const create = () => new copy.DecoderForCausalLM(definition, tiny, { meta: true });
    expect(create().getSubmodule('model.layers.0.self_attn.q_proj').constructor).not.toBe(Linear);
    const loaded = await loadCausalLm(directory, tiny, create);
    const reference = await loadCausalLm(directory, tiny, () => new DecoderForCausalLM(definition, tiny, { meta: true }));
    expect(loaded.getSubmodule('model.layers.0.self_attn.q_proj')).toBeInstanceOf(HalfLinear);
    expect(loaded.getSubmodule('model.embed_tokens')).toBeInstanceOf(HalfEmbedding);
    const inputIds = () => tf.tensor2d([[1, 5, 9, 3]], [1, 4], 'int32');
    const logits = (model: DecoderForCausalLM) => tf.tidy(() => model.forward({ inputIds: inputIds() }).logits);
    expect(maxAbsDifference(logits(loaded), logits(reference))).toBe(0);
    loaded.dispose();
    reference.dispose();
  });
});
