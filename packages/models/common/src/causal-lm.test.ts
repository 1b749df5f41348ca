import * as tf from '@tensorflow/tfjs-core';
import { manualSeed, readTensorFile, writeTensorFile } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { maxAbsDifference } from '@peft-ts/core/test';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecoderForCausalLM, type CausalLmDefinition } from './causal-lm.js';
import type { DecoderConfig } from './decoder-config.js';
import { generate } from './generate.js';
import { loadCausalLm } from './load-checkpoint.js';
import { defaultRotaryFrequencies, type RotaryFrequencies } from './rotary-embedding.js';
import { saveCausalLm } from './save-checkpoint.js';

/** A tiny decoder with every optional block switched on: biases everywhere, full attention. */
const tiny: DecoderConfig = {
  vocab_size: 40,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 4,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 64,
  sliding_window: null,
  attention_bias: true,
  mlp_bias: true,
  tie_word_embeddings: false,
  initializer_range: 0.2,
  pad_token_id: null,
  eos_token_id: 2,
};

function definition(rotaryFrequencies?: RotaryFrequencies): CausalLmDefinition<DecoderConfig> {
  return {
    kind: 'test_for_causal_lm',
    architecture: 'TestForCausalLM',
    decoderConfig: (config) => config,
    variant: () => ({ rotaryFrequencies }),
    defaultTargetModules: ['q_proj', 'v_proj'],
  };
}

const inputIds = () => tf.tensor2d([[1, 5, 9, 3, 7, 11], [4, 8, 12, 16, 20, 24]], [2, 6], 'int32');

describe('DecoderForCausalLM over a family definition', () => {
  let scratch: string;
  beforeAll(async () => {
    await initBackend('cpu');
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-causal-lm-'));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('builds the biases the config asks for and saves and loads them into the same slots', async () => {
    manualSeed(3);
    const model = new DecoderForCausalLM(definition(), tiny);
    const names = model.namedParameters().map(([name]) => name);
    for (const projection of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj']) {
      expect(names).toContain(`model.layers.1.${projection}.bias`);
    }
    expect(names).not.toContain('lm_head.bias');
    // Biases start at zero-mean noise like the weights; make them matter for the round trip.
    const bias = model.getSubmodule('model.layers.0.self_attn.o_proj').parameter('bias');
    bias.set(tf.fill([tiny.hidden_size], 0.5), 'bias');
    const directory = join(scratch, 'biased');
    await saveCausalLm(model, directory);
    expect(JSON.parse(await readFile(join(directory, 'config.json'), 'utf8')).architectures).toEqual(['TestForCausalLM']);
    const loaded = await loadCausalLm(directory, tiny, () => new DecoderForCausalLM(definition(), tiny, { meta: true }));
    const expected = tf.tidy(() => model.forward({ inputIds: inputIds() }).logits);
    const actual = tf.tidy(() => loaded.forward({ inputIds: inputIds() }).logits);
    expect(maxAbsDifference(actual, expected)).toBe(0);
    expect(loaded.getSubmodule('model.layers.0.self_attn.o_proj').parameter('bias').value.dataSync()[0]).toBe(0.5);
    model.dispose();
    loaded.dispose();
  });

  it("skips the checkpoint keys the definition ignores, and names the others as unexpected", async () => {
    manualSeed(4);
    const model = new DecoderForCausalLM(definition(), tiny);
    const directory = join(scratch, 'with-buffers');
    await saveCausalLm(model, directory);
    const stored = await readTensorFile(join(directory, 'model.safetensors'));
    stored.set('model.layers.0.self_attn.rotary_emb.inv_freq', tf.ones([2]));
    await writeTensorFile(join(directory, 'model.safetensors'), stored);
    const strictDefinition = definition();
    await expect(loadCausalLm(directory, tiny, () => new DecoderForCausalLM(strictDefinition, tiny, { meta: true }))).rejects.toThrow(
      'unexpected (1): model.layers.0.self_attn.rotary_emb.inv_freq',
    );
    const lenient = { ...definition(), ignoredCheckpointKeys: [/\.rotary_emb\.inv_freq$/] };
    const loaded = await loadCausalLm(directory, tiny, () => new DecoderForCausalLM(lenient, tiny, { meta: true }));
    const expected = tf.tidy(() => model.forward({ inputIds: inputIds() }).logits);
    expect(maxAbsDifference(tf.tidy(() => loaded.forward({ inputIds: inputIds() }).logits), expected)).toBe(0);
    model.dispose();
    loaded.dispose();
  });

  it('keeps the family config and the decoder config in step when layers are replaced', () => {
    const model = new DecoderForCausalLM(definition(), tiny, { meta: true });
    model.setDecoderLayers([...model.decoderLayers(), model.decoderLayers().at(0)!.cloneSharingParameters()]);
    expect(model.config.num_hidden_layers).toBe(3);
    expect(model.decoderConfig.num_hidden_layers).toBe(3);
    expect(model.decoderLayers().at(2)!.layerIndex).toBe(2);
  });

  it("computes with the family's rotary frequencies: the hook sees the head and positions, and changes the output", async () => {
    const requests: { headDimension: number; theta: number; positions: number }[] = [];
    const halved: RotaryFrequencies = (request) => {
      requests.push(request);
      return defaultRotaryFrequencies(request).map((value) => value / 2);
    };
    manualSeed(5);
    const plain = new DecoderForCausalLM(definition(), tiny);
    manualSeed(5);
    const scaled = new DecoderForCausalLM(definition(halved), tiny);
    const plainLogits = tf.tidy(() => plain.forward({ inputIds: inputIds() }).logits);
    const scaledLogits = tf.tidy(() => scaled.forward({ inputIds: inputIds() }).logits);
    expect(requests.at(-1)).toEqual({ headDimension: 4, theta: 10000, positions: 6 });
    expect(maxAbsDifference(scaledLogits, plainLogits)).toBeGreaterThan(1e-3);
    // Position 0 is not rotated whatever the frequencies.
    const first = (logits: tf.Tensor) => tf.slice(logits, [0, 0, 0], [2, 1, -1]);
    expect(maxAbsDifference(first(scaledLogits), first(plainLogits))).toBeLessThan(1e-6);
    const { tokens } = await generate(scaled, [[1, 5, 9]], { maxNewTokens: 3, stopTokenIds: [] });
    expect(tokens[0]).toHaveLength(3);
    plain.dispose();
    scaled.dispose();
  });
});
