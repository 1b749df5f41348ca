import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, countParameters, manualSeed, type LinearLike } from '@peft-ts/core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildAttentionMask } from '@peft-ts/model-common/internal';
import { baseModelDirectory, fixtureInputs, fixtureOutput } from './__fixtures__/mistral-fixtures.js';
import { loadMistral } from './load-mistral.js';
import { MistralDecoderLayer } from './deprecated-names.js';
import { MistralForCausalLM } from './mistral-model.js';

const TOLERANCE = 1e-4;

/** Largest |a − b| over the positions whose mask entry is 1 ([B, T] mask, [B, T, V] values). */
function maxAbsDifferenceAtRealTokens(actual: ArrayLike<number>, expected: ArrayLike<number>, mask: Int32Array, vocabulary: number): number {
  let worst = 0;
  mask.forEach((keep, position) => {
    if (!keep) return;
    for (let index = position * vocabulary; index < (position + 1) * vocabulary; index++) {
      worst = Math.max(worst, Math.abs(actual[index] - expected[index]));
    }
  });
  return worst;
}

describeWithBackends('MistralForCausalLM against transformers 4.39 (fixture)', (backend) => {
  let model: MistralForCausalLM;
  let inputs: Awaited<ReturnType<typeof fixtureInputs>>;

  beforeAll(async () => {
    model = (await loadMistral(baseModelDirectory)).eval();
    inputs = await fixtureInputs();
  });
  afterAll(() => {
    model.dispose();
    inputs.inputIds.dispose();
    inputs.paddedMask.dispose();
  });

  it('reproduces the base logits (float32 and float64 references)', async () => {
    const { logits } = model.forward({ inputIds: inputs.inputIds });
    expect(logits.shape).toEqual([2, 24, 128]);
    expect(logits.dtype).toBe('float32');
    const difference = maxAbsDifference(logits, await fixtureOutput('base', 'logits'));
    const difference64 = maxAbsDifference(logits, await fixtureOutput('base', 'logits_f64'));
    console.info(`[${backend}] base logits max-abs: ${difference.toExponential(2)} (vs float64 ${difference64.toExponential(2)})`);
    expect(difference).toBeLessThan(TOLERANCE);
    expect(difference64).toBeLessThan(TOLERANCE);
    logits.dispose();
  });

  it('reproduces the left-padded logits, padded rows included (uniform softmax there)', async () => {
    const { logits } = model.forward({ inputIds: inputs.inputIds, attentionMask: inputs.paddedMask });
    const expected = await fixtureOutput('base', 'logits_padded');
    const real = maxAbsDifferenceAtRealTokens(logits.dataSync(), expected, inputs.paddedMaskValues, 128);
    const all = maxAbsDifference(logits, expected);
    console.info(`[${backend}] padded logits max-abs: real tokens ${real.toExponential(2)}, all ${all.toExponential(2)}`);
    expect(real).toBeLessThan(TOLERANCE);
    expect(all).toBeLessThan(TOLERANCE);
    logits.dispose();
  });

  it('takes explicit position ids in [0, past + T); another makes its row NaN rather than silently wrong', () => {
    tf.tidy(() => {
      const { inputIds } = inputs;
      const [batch, length] = inputIds.shape;
      const positions = (firstRowLast: number) =>
        tf.tensor2d(Int32Array.from({ length: batch * length }, (_, index) => (index === length - 1 ? firstRowLast : index % length)), [batch, length]);
      const implicit = model.forward({ inputIds }).logits;
      const explicit = model.forward({ inputIds, positionIds: positions(length - 1) }).logits;
      expect(maxAbsDifference(explicit, implicit)).toBe(0);
      for (const outside of [-1, length]) {
        const { logits } = model.forward({ inputIds, positionIds: positions(outside) });
        const [first, others] = tf.split(logits, [1, batch - 1], 0);
        expect(tf.all(tf.isNaN(first)).dataSync()[0]).toBe(1);
        expect(maxAbsDifference(others, tf.slice(implicit, [1, 0, 0], [batch - 1, -1, -1]))).toBe(0);
      }
    });
  });

  it('reproduces the logits without a sliding window', async () => {
    const unwindowed = await loadMistral(baseModelDirectory, { configOverrides: { sliding_window: null } });
    const { logits } = unwindowed.eval().forward({ inputIds: inputs.inputIds });
    const difference = maxAbsDifference(logits, await fixtureOutput('base', 'logits_no_sliding_window'));
    console.info(`[${backend}] no-sliding-window logits max-abs: ${difference.toExponential(2)}`);
    expect(difference).toBeLessThan(TOLERANCE);
    // The window matters for 24 tokens with W = 16, so this is a real check of the W+1 convention.
    expect(maxAbsDifference(logits, await fixtureOutput('base', 'logits'))).toBeGreaterThan(0.1);
    logits.dispose();
    unwindowed.dispose();
  });

  it('builds exactly the eager 4-D mask transformers used (W+1 keys, float32 min)', async () => {
    const mask = buildAttentionMask({ batchSize: 1, queryLength: 24, pastLength: 0, slidingWindow: 16 })!;
    expect(mask.shape).toEqual([1, 1, 24, 24]);
    expect(maxAbsDifference(mask, await fixtureOutput('base', 'eager_mask_4d'))).toBe(0);
    mask.dispose();
  });

  it('reproduces the replicated 7-layer base (layers [0,1,2,3,2,3,4], shared weights)', async () => {
    const replicated = await loadMistral(baseModelDirectory);
    const original = replicated.decoderLayers().toArray();
    const layers = [0, 1, 2, 3, 2, 3, 4].map((source, position) =>
      position === source ? original[source] : original[source].cloneSharingParameters(),
    );
    replicated.setDecoderLayers(layers);
    expect(replicated.config.num_hidden_layers).toBe(7);
    expect(replicated.decoderLayers().toArray().map((layer) => layer.layerIndex)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(countParameters(replicated).total).toBe(201_408);
    const { logits } = replicated.eval().forward({ inputIds: inputs.inputIds });
    const difference = maxAbsDifference(logits, await fixtureOutput('layer_replication', 'logits_adapter_disabled'));
    console.info(`[${backend}] replicated logits max-abs: ${difference.toExponential(2)}`);
    expect(difference).toBeLessThan(TOLERANCE);
    logits.dispose();
    replicated.dispose();
  });

  it('computes the shifted cross-entropy loss and its gradients', () => {
    const labels = tf.tidy(() => {
      // Ignore the first five positions of row 1, as padding would be.
      const ignore = tf.tensor2d([...Array(24).fill(0), ...Array(5).fill(1), ...Array(19).fill(0)], [2, 24], 'bool');
      return tf.where(ignore, tf.fill([2, 24], -100, 'int32'), inputs.inputIds);
    });
    const { logits, loss } = model.forward({ inputIds: inputs.inputIds, labels });
    // Reference: mean over kept positions of −log softmax(logits[b, t])[labels[b, t+1]], in float64.
    const values = logits.dataSync();
    const targets = labels.dataSync();
    let total = 0;
    let count = 0;
    for (let row = 0; row < 2; row++) {
      for (let position = 0; position < 23; position++) {
        const target = targets[row * 24 + position + 1];
        if (target === -100) continue;
        const offset = (row * 24 + position) * 128;
        let largest = -Infinity;
        for (let token = 0; token < 128; token++) largest = Math.max(largest, values[offset + token]);
        let sum = 0;
        for (let token = 0; token < 128; token++) sum += Math.exp(values[offset + token] - largest);
        total += largest + Math.log(sum) - values[offset + target];
        count++;
      }
    }
    expect(count).toBe(23 + 19);
    expect(loss!.dataSync()[0]).toBeCloseTo(total / count, 4);

    const head = model.getSubmodule('model.layers.0.self_attn.q_proj') as Linear;
    const { value, grads } = tf.variableGrads(
      () => model.forward({ inputIds: inputs.inputIds, labels }).loss!,
      [head.weight.value],
    );
    const gradient = grads[head.weight.value.name];
    expect(gradient.shape).toEqual([64, 64]);
    const norm = tf.norm(gradient).dataSync()[0];
    expect(Number.isFinite(norm) && norm > 0).toBe(true);
    tf.dispose([logits, loss!, labels, value, gradient]);
  });

  it('routes through replaced submodules (adapter injection by path)', async () => {
    const before = model.forward({ inputIds: inputs.inputIds }).logits;
    const path = 'model.layers.2.self_attn.v_proj';
    const base = model.getSubmodule(path) as Linear;
    // A stand-in adapter: the base output plus a constant.
    class Shifted extends Module implements LinearLike {
      readonly kind = 'linear' as const;
      readonly inFeatures = base.inFeatures;
      readonly outFeatures = base.outFeatures;
      readonly bias = null;
      readonly weightAccess = base.weightAccess;
      calls = 0;
      forward(input: tf.Tensor): tf.Tensor {
        this.calls++;
        return tf.add(base.forward(input), 0.5);
      }
    }
    const shifted = new Shifted();
    model.setSubmodule(path, shifted);
    const after = model.forward({ inputIds: inputs.inputIds }).logits;
    model.setSubmodule(path, base);
    expect(shifted.calls).toBe(1);
    expect(maxAbsDifference(after, before)).toBeGreaterThan(1e-3);
    tf.dispose([before, after]);
  });
});

describeWithBackends('MistralForCausalLM structure', () => {
  const config = {
    vocab_size: 96,
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    sliding_window: 8,
  };

  it('uses transformers module names and honours tie_word_embeddings', () => {
    const model = new MistralForCausalLM({ ...config, tie_word_embeddings: true }, { meta: true });
    expect(model.namedModules().map(([name]) => name)).toEqual(
      expect.arrayContaining([
        'model.embed_tokens',
        'model.layers.1.self_attn.q_proj',
        'model.layers.1.self_attn.k_proj',
        'model.layers.1.self_attn.v_proj',
        'model.layers.1.self_attn.o_proj',
        'model.layers.1.mlp.gate_proj',
        'model.layers.1.mlp.up_proj',
        'model.layers.1.mlp.down_proj',
        'model.layers.1.input_layernorm',
        'model.layers.1.post_attention_layernorm',
        'model.norm',
        'lm_head',
      ]),
    );
    expect(model.getSubmodule('lm_head').parameter('weight')).toBe(model.getSubmodule('model.embed_tokens').parameter('weight'));
    expect(model.namedParameters().map(([name]) => name)).not.toContain('lm_head.weight');
    expect(model.defaultTargetModules).toEqual(['q_proj', 'v_proj']);
    expect(model.outputEmbeddingKey).toBe('lm_head');
  });

  it('initialises like transformers (N(0, 0.02) weights, unit norms, zero padding row), reproducibly', () => {
    manualSeed(3);
    const first = new MistralForCausalLM({ ...config, pad_token_id: 0 });
    manualSeed(3);
    const second = new MistralForCausalLM({ ...config, pad_token_id: 0 });
    const weight = first.getSubmodule('model.layers.0.mlp.up_proj').parameter('weight').value;
    const deviation = tf.tidy(() => tf.sqrt(tf.mean(tf.square(weight))).dataSync()[0]);
    expect(deviation).toBeGreaterThan(0.017);
    expect(deviation).toBeLessThan(0.023);
    expect([...first.getSubmodule('model.norm').parameter('weight').value.dataSync()]).toEqual(Array(32).fill(1));
    const embedding = first.getSubmodule('model.embed_tokens').parameter('weight').value;
    expect(embedding.dataSync().slice(0, 32).every((value) => value === 0)).toBe(true);
    expect(maxAbsDifference(weight, second.getSubmodule('model.layers.0.mlp.up_proj').parameter('weight').value)).toBe(0);
    first.dispose();
    second.dispose();
  });

  it('clones a layer sharing every Parameter object', () => {
    const model = new MistralForCausalLM(config);
    const layer = model.decoderLayers().at(1);
    const clone = layer.cloneSharingParameters();
    expect(clone).toBeInstanceOf(MistralDecoderLayer);
    expect(clone).not.toBe(layer);
    expect(clone.layerIndex).toBe(1);
    const original = new Map(layer.namedParameters());
    const cloned = clone.namedParameters();
    expect(cloned.map(([name]) => name)).toEqual([...original.keys()]);
    for (const [name, parameter] of cloned) expect(parameter).toBe(original.get(name));
    // Distinct module objects, so adapters injected into one copy stay out of the other.
    expect(clone.getSubmodule('self_attn.q_proj')).not.toBe(layer.getSubmodule('self_attn.q_proj'));
    model.dispose();
  });
});
