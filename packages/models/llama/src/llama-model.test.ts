import * as tf from '@tensorflow/tfjs-core';
import { manualSeed, type Linear } from '@peft-ts/core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { KeyValueCache, generate } from '@peft-ts/model-common';
import { loadMistral, type MistralForCausalLM } from '@peft-ts/model-mistral';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadLlama } from './load-llama.js';
import { LlamaForCausalLM } from './llama-model.js';
import { tinyLlamaConfig } from './llama-presets.js';
import { saveLlama } from './save-llama.js';

// transformers-parity.test.ts checks Llama against transformers 4.39.3's outputs. Here: Llama without rope scaling or
// biases is transformers' Mistral with `sliding_window: null` (same blocks, same names), so the two must agree exactly
// for the same weights, KV cache and generation included; the biases and the rope scaling, which Mistral lacks, are
// checked against their definitions (here and in llama-rope-scaling.test.ts).

const TOLERANCE = 1e-6;
const inputIds = () => tf.tensor2d([[1, 5, 9, 33, 2, 70, 71, 4], [1, 100, 3, 3, 8, 127, 0, 12]], [2, 8], 'int32');

/** Writes `model` with saveLlama, then the same weights as a Mistral checkpoint (the config mapped, no sliding window). */
async function saveAsMistral(model: LlamaForCausalLM, directory: string): Promise<void> {
  await saveLlama(model, directory);
  const llama = JSON.parse(await readFile(join(directory, 'config.json'), 'utf8'));
  const { rope_scaling: _scaling, attention_bias: _bias, pretraining_tp: _tp, ...shared } = llama;
  const mistral = { ...shared, model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: null };
  await writeFile(join(directory, 'config.json'), JSON.stringify(mistral));
}

describeWithBackends('LlamaForCausalLM against MistralForCausalLM with the same weights', (backend) => {
  let directory: string;
  let llama: LlamaForCausalLM;
  let mistral: MistralForCausalLM;

  beforeAll(async () => {
    manualSeed(7);
    directory = await mkdtemp(join(tmpdir(), 'llama-parity-'));
    llama = new LlamaForCausalLM(tinyLlamaConfig).eval();
    await saveAsMistral(llama, directory);
    mistral = (await loadMistral(directory)).eval();
  });
  afterAll(async () => {
    llama.dispose();
    mistral.dispose();
    await rm(directory, { recursive: true, force: true });
  });

  it('has the Llama module names', () => {
    const names = llama.namedParameters().map(([name]) => name);
    expect(names).toContain('model.embed_tokens.weight');
    for (const projection of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) expect(names).toContain(`model.layers.1.self_attn.${projection}.weight`);
    for (const projection of ['gate_proj', 'up_proj', 'down_proj']) expect(names).toContain(`model.layers.1.mlp.${projection}.weight`);
    for (const norm of ['input_layernorm', 'post_attention_layernorm']) expect(names).toContain(`model.layers.0.${norm}.weight`);
    expect(names).toContain('model.norm.weight');
    expect(names).toContain('lm_head.weight');
    expect(names.some((name) => name.endsWith('.bias'))).toBe(false);
  });

  it('gives the same logits, unpadded and left-padded', () => {
    const ids = inputIds();
    const mask = tf.tensor2d([[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]], [2, 8], 'int32');
    for (const attentionMask of [undefined, mask]) {
      const expected = tf.tidy(() => mistral.forward({ inputIds: ids, attentionMask }).logits);
      const actual = tf.tidy(() => llama.forward({ inputIds: ids, attentionMask }).logits);
      const difference = maxAbsDifference(actual, expected);
      console.info(`[${backend}] Llama vs Mistral logits (${attentionMask ? 'padded' : 'unpadded'}) max-abs: ${difference.toExponential(2)}`);
      expect(difference).toBeLessThanOrEqual(TOLERANCE);
      tf.dispose([expected, actual]);
    }
    tf.dispose([ids, mask]);
  });

  it('gives the same logits step by step with a KV cache, and the same generation', async () => {
    const ids = inputIds();
    const caches = [new KeyValueCache(null), new KeyValueCache(null)];
    const models = [llama, mistral] as const;
    const prefill = models.map((model, index) => tf.tidy(() => model.forward({ inputIds: tf.slice(ids, [0, 0], [2, 6]) as tf.Tensor2D, cache: caches[index] }).logits));
    expect(maxAbsDifference(prefill[0], prefill[1])).toBeLessThanOrEqual(TOLERANCE);
    for (const step of [6, 7]) {
      const logits = models.map((model, index) => tf.tidy(() => model.forward({ inputIds: tf.slice(ids, [0, step], [2, 1]) as tf.Tensor2D, cache: caches[index] }).logits));
      expect(maxAbsDifference(logits[0], logits[1])).toBeLessThanOrEqual(TOLERANCE);
      tf.dispose(logits);
    }
    tf.dispose([...prefill, ids]);
    caches.forEach((cache) => cache.dispose());
    const prompts = [[1, 5, 9], [1, 100, 3, 3, 8]];
    const fromLlama = await generate(llama, prompts, { maxNewTokens: 6, stopTokenIds: [] });
    const fromMistral = await generate(mistral, prompts, { maxNewTokens: 6, stopTokenIds: [] });
    expect(fromLlama.tokens).toEqual(fromMistral.tokens);
  });
});

describeWithBackends('LlamaForCausalLM with rope_scaling', () => {
  let directory: string;
  let plain: LlamaForCausalLM;

  beforeAll(async () => {
    manualSeed(13);
    directory = await mkdtemp(join(tmpdir(), 'llama-rope-'));
    plain = new LlamaForCausalLM({ ...tinyLlamaConfig, max_position_embeddings: 6 }).eval();
    await saveLlama(plain, directory);
  });
  afterAll(async () => {
    plain.dispose();
    await rm(directory, { recursive: true, force: true });
  });

  const logitsOf = (model: LlamaForCausalLM, length: number) =>
    tf.tidy(() => model.forward({ inputIds: tf.slice(inputIds(), [0, 0], [2, length]) as tf.Tensor2D }).logits);

  it('dynamic scaling changes nothing within max_position_embeddings and the logits beyond it', async () => {
    const dynamic = (await loadLlama(directory, { configOverrides: { rope_scaling: { type: 'dynamic', factor: 2 } } })).eval();
    const [within, withinPlain] = [logitsOf(dynamic, 6), logitsOf(plain, 6)];
    expect(maxAbsDifference(within, withinPlain)).toBe(0);
    const [beyond, beyondPlain] = [logitsOf(dynamic, 8), logitsOf(plain, 8)];
    // Position 0 has angle 0 whatever the frequencies; every later position rotates differently.
    const first = (logits: tf.Tensor) => tf.tidy(() => tf.slice(logits, [0, 0, 0], [2, 1, -1]));
    const [firstScaled, firstPlain] = [first(beyond), first(beyondPlain)];
    expect(maxAbsDifference(firstScaled, firstPlain)).toBeLessThanOrEqual(TOLERANCE);
    // N(0, 0.02) weights give small logits, so a real change is ~1e-5 here, against an exact 0 within the length.
    expect(maxAbsDifference(beyond, beyondPlain)).toBeGreaterThan(1e-6);
    tf.dispose([within, withinPlain, beyond, beyondPlain, firstScaled, firstPlain]);
    dynamic.dispose();
  });

  it('linear scaling changes the logits at every length', async () => {
    const linear = (await loadLlama(directory, { configOverrides: { rope_scaling: { type: 'linear', factor: 2 } } })).eval();
    const [scaled, unscaled] = [logitsOf(linear, 4), logitsOf(plain, 4)];
    expect(maxAbsDifference(scaled, unscaled)).toBeGreaterThan(1e-4);
    tf.dispose([scaled, unscaled]);
    linear.dispose();
  });
});

describeWithBackends('LlamaForCausalLM with attention_bias', () => {
  let directory: string;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'llama-bias-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('loads q/k/v/o biases from a checkpoint into their projections, which add them to x·Wᵀ', async () => {
    manualSeed(11);
    const model = new LlamaForCausalLM({ ...tinyLlamaConfig, attention_bias: true }).eval();
    const projections = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
    // transformers initialises biases at zero; give them values so a bias in the wrong slot shows.
    for (const [name, parameter] of model.namedParameters()) {
      if (!name.endsWith('.bias')) continue;
      const value = tf.randomNormal([...parameter.shape], 0, 0.5, 'float32', 3);
      parameter.set(value, name);
      value.dispose();
    }
    const biasNames = model.namedParameters().map(([name]) => name).filter((name) => name.endsWith('.bias'));
    expect(biasNames).toEqual(
      [0, 1].flatMap((layer) => projections.map((projection) => `model.layers.${layer}.self_attn.${projection}.bias`)),
    );
    await saveLlama(model, directory);
    const loaded = (await loadLlama(directory)).eval();
    const ids = inputIds();
    for (const name of biasNames) {
      expect(maxAbsDifference(loaded.getSubmodule(name.slice(0, -'.bias'.length)).parameter('bias').value, model.getSubmodule(name.slice(0, -'.bias'.length)).parameter('bias').value)).toBe(0);
    }
    const [expected, actual] = [model, loaded].map((each) => tf.tidy(() => each.forward({ inputIds: ids }).logits));
    expect(maxAbsDifference(actual, expected)).toBe(0);

    // Each projection computes x·Wᵀ + b.
    const input = tf.randomNormal([2, 3, tinyLlamaConfig.hidden_size], 0, 1, 'float32', 5) as tf.Tensor3D;
    for (const projection of projections.slice(0, 3)) {
      const layer = loaded.getSubmodule(`model.layers.0.self_attn.${projection}`) as Linear;
      const byHand = tf.tidy(() => tf.add(tf.matMul(tf.reshape(input, [6, -1]), layer.parameter('weight').value, false, true), layer.parameter('bias').value));
      const computed = tf.tidy(() => tf.reshape(layer.forward(input), [6, -1]));
      expect(maxAbsDifference(computed, byHand)).toBeLessThanOrEqual(TOLERANCE);
      tf.dispose([byHand, computed]);
    }

    // With the biases zeroed it is the bias-free model with the same weights: the biases are all the difference.
    for (const name of biasNames) {
      const zero = tf.zeros([...loaded.getSubmodule(name.slice(0, -'.bias'.length)).parameter('bias').shape]);
      loaded.getSubmodule(name.slice(0, -'.bias'.length)).parameter('bias').set(zero, name);
      zero.dispose();
    }
    const plain = new LlamaForCausalLM(tinyLlamaConfig, { meta: true });
    for (const [name, parameter] of plain.namedParameters()) {
      const source = loaded.getSubmodule(name.slice(0, name.lastIndexOf('.'))).parameter(name.slice(name.lastIndexOf('.') + 1));
      parameter.set(tf.clone(source.value), name);
    }
    const [zeroed, withoutBias] = [loaded, plain.eval()].map((each) => tf.tidy(() => each.forward({ inputIds: ids }).logits));
    expect(maxAbsDifference(zeroed, withoutBias)).toBeLessThanOrEqual(TOLERANCE);
    expect(maxAbsDifference(expected, withoutBias)).toBeGreaterThan(1e-3);
    tf.dispose([expected, actual, zeroed, withoutBias, input, ids]);
    [model, loaded, plain].forEach((each) => each.dispose());
  });
});
