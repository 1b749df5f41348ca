import * as tf from '@tensorflow/tfjs-core';
import { Embedding, Linear, PeftError, SeededRandom, UnknownAdapterError, hostMatrix, manualSeed, svd, type Module } from '@peft-ts/core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { createLoraConfig, type LoraConfigInput } from '@peft-ts/config';
import { expect, it } from 'vitest';
import type { LoraLayer } from './lora-layer.js';
import { LoraLinear } from './lora-linear.js';
import { LoraModel } from './lora-model.js';
import { ModulesToSaveWrapper } from './modules-to-save-wrapper.js';
import { Mlp, Sequential, createConvModel, mlpInput } from './testing/test-models.js';

const layerOf = (model: Module, key: string) => model.getSubmodule(key) as LoraLayer;
const delta = (model: Module, key: string, adapter: string) => tf.tidy(() => layerOf(model, key).deltaWeight(adapter));

/** An Mlp with adapters `a` (r 2, α 4: s = 2) and `b` (r 2, α 1: s = 0.5), both random (not no-ops). */
function mlpWithTwoAdapters(extra: LoraConfigInput = {}): { model: Mlp; lora: LoraModel } {
  manualSeed(3);
  const model = new Mlp();
  const common: LoraConfigInput = { targetModules: ['lin0', 'lin1'], initLoraWeights: false, ...extra };
  const lora = new LoraModel(model, createLoraConfig({ ...common, r: 2, loraAlpha: 4 }), { adapterName: 'a' });
  lora.addAdapter('b', createLoraConfig({ ...common, r: 2, loraAlpha: 1 }));
  return { model, lora };
}

/** Σ cᵢ·ΔWᵢ of the named adapters on one layer. */
function weightedDeltas(model: Module, key: string, terms: [string, number][]): tf.Tensor {
  return tf.tidy(() => tf.addN(terms.map(([adapter, coefficient]) => tf.mul(delta(model, key, adapter), coefficient))));
}

function factors(model: Module, key: string, adapter: string): { a: tf.Tensor; b: tf.Tensor } {
  const layer = layerOf(model, key) as LoraLinear;
  return { a: layer.loraA(adapter).weight.value, b: layer.loraB(adapter).weight.value };
}

/** relu(x·(W₀ + ΔW₀)ᵀ + b₀)·(W₁ + ΔW₁)ᵀ + b₁: the Mlp's output with the given deltas merged, computed directly. */
function mlpOutputWithDeltas(model: Mlp, delta0: tf.Tensor, delta1: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const parameter = (key: string, name: string) => layerOf(model, key).baseLayer.parameter(name).value;
    const hidden = tf.relu(tf.add(tf.matMul(mlpInput(), tf.add(parameter('lin0', 'weight'), delta0), false, true), parameter('lin0', 'bias')));
    return tf.add(tf.matMul(hidden, tf.add(parameter('lin1', 'weight'), delta1), false, true), parameter('lin1', 'bias'));
  });
}

describeWithBackends('addWeightedAdapter', () => {
  it('cat stacks A·w·s and B: ΔW is the weighted sum of the deltas, r the sum of the ranks, and the logits follow', async () => {
    const { model, lora } = mlpWithTwoAdapters();
    await lora.addWeightedAdapter(['a', 'b'], [0.7, -1.3], 'ab', 'cat');
    const config = lora.config('ab');
    expect([config.r, config.loraAlpha, config.targetModules, config.useRslora]).toEqual([4, 4, ['lin0', 'lin1'], false]);
    expect(lora.activeAdapter).toBe('a');
    expect(layerOf(model, 'lin0').scaling('ab')).toBe(1);
    for (const key of ['lin0', 'lin1']) {
      expect(maxAbsDifference(delta(model, key, 'ab'), weightedDeltas(model, key, [['a', 0.7], ['b', -1.3]]))).toBeLessThan(1e-5);
    }
    const expected = mlpOutputWithDeltas(
      model,
      weightedDeltas(model, 'lin0', [['a', 0.7], ['b', -1.3]]),
      weightedDeltas(model, 'lin1', [['a', 0.7], ['b', -1.3]]),
    );
    await lora.setAdapter('ab');
    expect(maxAbsDifference(model.forward(mlpInput()), expected)).toBeLessThan(1e-3);
  });

  it('cat takes different ranks and target modules; layers missing a source keep zero padding', async () => {
    manualSeed(4);
    const model = new Mlp();
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0', 'lin1'], r: 2, loraAlpha: 2, initLoraWeights: false }), { adapterName: 'a' });
    lora.addAdapter('c', createLoraConfig({ targetModules: ['lin0'], r: 3, loraAlpha: 6, initLoraWeights: false }));
    await lora.addWeightedAdapter(['a', 'c'], [1, 0.5], 'ac', 'cat');
    expect(lora.config('ac').r).toBe(5);
    expect(maxAbsDifference(delta(model, 'lin0', 'ac'), weightedDeltas(model, 'lin0', [['a', 1], ['c', 0.5]]))).toBeLessThan(1e-5);
    expect(maxAbsDifference(delta(model, 'lin1', 'ac'), delta(model, 'lin1', 'a'))).toBeLessThan(1e-5);
    const paddedB = factors(model, 'lin1', 'ac').b.arraySync() as number[][];
    expect(paddedB.every((row) => row.slice(2).every((value) => value === 0))).toBe(true);
  });

  it('linear merges A and B separately with √(w·s): cross terms included, as PEFT', async () => {
    const { model, lora } = mlpWithTwoAdapters();
    await lora.addWeightedAdapter(['a', 'b'], [0.6, 2], 'ab', 'linear');
    const [wa, wb] = [Math.sqrt(0.6 * 2), Math.sqrt(2 * 0.5)];
    for (const key of ['lin0', 'lin1']) {
      const a = factors(model, key, 'a');
      const b = factors(model, key, 'b');
      const expected = tf.tidy(() => tf.matMul(tf.add(tf.mul(a.b, wa), tf.mul(b.b, wb)), tf.add(tf.mul(a.a, wa), tf.mul(b.a, wb))));
      expect(maxAbsDifference(delta(model, key, 'ab'), expected)).toBeLessThan(1e-5);
    }
    expect(lora.config('ab').r).toBe(2);
  });

  it('one adapter is scaled linearly whatever the type: ΔW = w·ΔW_a exactly', async () => {
    const { model, lora } = mlpWithTwoAdapters();
    await lora.addWeightedAdapter(['a'], [0.7], 'scaled');
    expect(maxAbsDifference(delta(model, 'lin0', 'scaled'), weightedDeltas(model, 'lin0', [['a', 0.7]]))).toBeLessThan(1e-5);
  });

  it('svd weights each ΔW (which holds s) by w·s again, as PEFT 0.10, and reconstructs a combination within the rank', async () => {
    const { model, lora } = mlpWithTwoAdapters({ targetModules: ['lin0'] });
    await lora.addWeightedAdapter(['a', 'b'], [0.7, 1.5], 'full', 'svd', { svdRank: 4 });
    const expected = weightedDeltas(model, 'lin0', [['a', 0.7 * 2], ['b', 1.5 * 0.5]]);
    expect(maxAbsDifference(delta(model, 'lin0', 'full'), expected)).toBeLessThan(1e-5);
    expect(lora.config('full').r).toBe(4);
  });

  it('svd truncates to the largest source rank by default: the best rank-r approximation', async () => {
    const { model, lora } = mlpWithTwoAdapters();
    await lora.addWeightedAdapter(['a', 'b'], [0.7, 1.5], 'truncated', 'svd', { svdFullMatrices: true });
    expect(lora.config('truncated').r).toBe(2);
    const combination = weightedDeltas(model, 'lin0', [['a', 1.4], ['b', 0.75]]);
    const exact = svd(hostMatrix(20, 10, combination.dataSync()));
    const result = delta(model, 'lin0', 'truncated');
    const residual = tf.tidy(() => tf.norm(tf.sub(combination, result)).dataSync()[0]);
    expect(residual).toBeCloseTo(Math.hypot(exact.s[2], exact.s[3]), 4);
    const found = svd(hostMatrix(20, 10, result.dataSync()));
    expect(found.s[0]).toBeCloseTo(exact.s[0], 4);
    expect(found.s[1]).toBeCloseTo(exact.s[1], 4);
    // svd decomposes the stacked factors; dare_linear_svd at density 1 decomposes the dense sum: one result.
    await lora.addWeightedAdapter(['a', 'b'], [0.7, 1.5], 'dense', 'dare_linear_svd', { density: 1 });
    expect(maxAbsDifference(delta(model, 'lin0', 'dense'), result)).toBeLessThan(1e-5);
    // lin1 (2 × 20) has total rank 4 ≥ 2: decomposed dense, and exact at rank 2.
    expect(maxAbsDifference(delta(model, 'lin1', 'truncated'), weightedDeltas(model, 'lin1', [['a', 1.4], ['b', 0.75]]))).toBeLessThan(1e-5);
  });

  it('svdClamp clamps both factors to ± the quantile of their entries', async () => {
    const { model, lora } = mlpWithTwoAdapters();
    await lora.addWeightedAdapter(['a', 'b'], [0.7, 1.5], 'plain', 'svd');
    await lora.addWeightedAdapter(['a', 'b'], [0.7, 1.5], 'clamped', 'svd', { svdClamp: 0.8 });
    const plain = factors(model, 'lin0', 'plain');
    const values = [...plain.b.dataSync(), ...plain.a.dataSync()].sort((x, y) => x - y);
    const position = 0.8 * (values.length - 1);
    const limit = values[Math.floor(position)] + (values[Math.ceil(position)] - values[Math.floor(position)]) * (position % 1);
    const clamped = factors(model, 'lin0', 'clamped');
    expect(maxAbsDifference(clamped.a, tf.clipByValue(plain.a, -limit, limit))).toBeLessThan(1e-6);
    expect(maxAbsDifference(clamped.b, tf.clipByValue(plain.b, -limit, limit))).toBeLessThan(1e-6);
  });

  it('ties with one sign everywhere is the weighted mean of the factors; the sign election decides otherwise', async () => {
    const { model, lora } = mlpWithTwoAdapters({ targetModules: ['lin1'] });
    const a = factors(model, 'lin1', 'a');
    // b = (3·A_a, 2·B_a): same signs. Scalings 2 and 0.5, weights 1 and 2: factor weights √2 and 1.
    (layerOf(model, 'lin1') as LoraLinear).loraA('b').weight.set(tf.mul(a.a, 3));
    (layerOf(model, 'lin1') as LoraLinear).loraB('b').weight.set(tf.mul(a.b, 2));
    await lora.addWeightedAdapter(['a', 'b'], [1, 2], 'same', 'ties', { density: 1 });
    const mean = (x: tf.Tensor, factor: number) => tf.mul(x, (Math.SQRT2 + factor) / 2);
    expect(maxAbsDifference(factors(model, 'lin1', 'same').a, mean(a.a, 3))).toBeLessThan(1e-6);
    expect(maxAbsDifference(factors(model, 'lin1', 'same').b, mean(a.b, 2))).toBeLessThan(1e-6);

    // b's A = −3·A_a: the sum elects b's sign, so only b's entries count ("total");
    // the sign count ties at 0 and elects +, so each entry keeps whichever is positive ("frequency").
    (layerOf(model, 'lin1') as LoraLinear).loraA('b').weight.set(tf.mul(a.a, -3));
    await lora.addWeightedAdapter(['a', 'b'], [1, 2], 'total', 'ties', { density: 1 });
    expect(maxAbsDifference(factors(model, 'lin1', 'total').a, tf.mul(a.a, -3))).toBeLessThan(1e-6);
    await lora.addWeightedAdapter(['a', 'b'], [1, 2], 'frequency', 'ties', { density: 1, majoritySignMethod: 'frequency' });
    const positive = tf.where(tf.greater(a.a, 0), tf.mul(a.a, Math.SQRT2), tf.mul(a.a, -3));
    expect(maxAbsDifference(factors(model, 'lin1', 'frequency').a, positive)).toBeLessThan(1e-6);
  });

  it('magnitude_prune keeps the top density fraction of each factor by magnitude', async () => {
    const { model, lora } = mlpWithTwoAdapters();
    await lora.addWeightedAdapter(['a', 'b'], [1, 2], 'pruned', 'magnitude_prune', { density: 0.3 });
    const keepTop = (x: tf.Tensor, fraction: number) =>
      tf.tidy(() => {
        const flat = tf.abs(tf.reshape(x, [-1]));
        const k = Math.trunc(fraction * flat.size);
        const threshold = tf.topk(flat, k).values.min();
        return tf.where(tf.greaterEqual(tf.abs(x), threshold), x, tf.zerosLike(x));
      });
    const [wa, wb] = [Math.sqrt(1 * 2), Math.sqrt(2 * 0.5)];
    const a = factors(model, 'lin0', 'a');
    const b = factors(model, 'lin0', 'b');
    const expectedA = tf.add(tf.mul(keepTop(a.a, 0.3), wa), tf.mul(keepTop(b.a, 0.3), wb));
    expect(maxAbsDifference(factors(model, 'lin0', 'pruned').a, expectedA)).toBeLessThan(1e-6);
    const expectedB = tf.add(tf.mul(keepTop(a.b, 0.3), wa), tf.mul(keepTop(b.b, 0.3), wb));
    expect(maxAbsDifference(factors(model, 'lin0', 'pruned').b, expectedB)).toBeLessThan(1e-6);
  });

  it('magnitude_prune_svd and ties_svd apply the rule to the scaled deltas (exact within the rank)', async () => {
    // lin1 is 20 → 2: rank 2 holds any ΔW.
    const { model, lora } = mlpWithTwoAdapters({ targetModules: ['lin1'] });
    await lora.addWeightedAdapter(['a', 'b'], [1, 3], 'pruned', 'magnitude_prune_svd', { density: 0.5 });
    const scaled = (adapter: string, coefficient: number) => tf.mul(delta(model, 'lin1', adapter), coefficient);
    const top = (x: tf.Tensor) =>
      tf.tidy(() => {
        const threshold = tf.topk(tf.abs(tf.reshape(x, [-1])), x.size / 2).values.min();
        return tf.where(tf.greaterEqual(tf.abs(x), threshold), x, tf.zerosLike(x));
      });
    const expected = tf.add(tf.mul(top(delta(model, 'lin1', 'a')), 2), tf.mul(top(delta(model, 'lin1', 'b')), 1.5));
    expect(maxAbsDifference(delta(model, 'lin1', 'pruned'), expected)).toBeLessThan(1e-5);

    await lora.addWeightedAdapter(['a', 'b'], [1, 3], 'ties', 'ties_svd', { density: 1 });
    const da = delta(model, 'lin1', 'a');
    const db = delta(model, 'lin1', 'b');
    const elected = tf.sign(tf.add(da, db)).arraySync() as number[][];
    const [wa, wb] = [scaled('a', 2).arraySync() as number[][], scaled('b', 1.5).arraySync() as number[][]];
    const [sa, sb] = [tf.sign(da).arraySync() as number[][], tf.sign(db).arraySync() as number[][]];
    const tiesExpected = elected.map((row, i) =>
      row.map((sign, j) => {
        const agreeing = [sa[i][j] === (sign >= 0 ? 1 : -1) ? wa[i][j] : null, sb[i][j] === (sign >= 0 ? 1 : -1) ? wb[i][j] : null].filter(
          (value): value is number => value !== null,
        );
        return agreeing.reduce((sum, value) => sum + value, 0) / Math.max(agreeing.length, 1);
      }),
    );
    expect(maxAbsDifference(delta(model, 'lin1', 'ties'), tf.tensor2d(tiesExpected))).toBeLessThan(1e-5);
  });

  it('DARE keeps about density of the entries, rescaled by 1/density, reproducibly from its generator', async () => {
    manualSeed(9);
    const model = new Sequential(new Linear(128, 128));
    const common: LoraConfigInput = { targetModules: ['0'], r: 16, initLoraWeights: false };
    const lora = new LoraModel(model, createLoraConfig({ ...common, loraAlpha: 16 }), { adapterName: 'a' });
    lora.addAdapter('zero', createLoraConfig({ ...common, loraAlpha: 16 }));
    // Weight 0 for the second source leaves √(w·s)·DARE(A_a) alone (s = 1).
    await lora.addWeightedAdapter(['a', 'zero'], [1, 0], 'dare', 'dare_linear', { density: 0.4, random: new SeededRandom(1) });
    const source = factors(model, '0', 'a').a.dataSync();
    const result = factors(model, '0', 'dare').a.dataSync();
    let kept = 0;
    result.forEach((value, index) => {
      if (value === 0) return;
      kept++;
      expect(value).toBeCloseTo(source[index] / 0.4, 5);
    });
    expect(Math.abs(kept / result.length - 0.4)).toBeLessThan(0.03);
    await lora.addWeightedAdapter(['a', 'zero'], [1, 0], 'again', 'dare_linear', { density: 0.4, random: new SeededRandom(1) });
    expect(maxAbsDifference(factors(model, '0', 'again').a, factors(model, '0', 'dare').a)).toBe(0);
    await lora.addWeightedAdapter(['a', 'zero'], [1, 0], 'other', 'dare_linear', { density: 0.4, random: new SeededRandom(2) });
    expect(maxAbsDifference(factors(model, '0', 'other').a, factors(model, '0', 'dare').a)).toBeGreaterThan(0);
    // Density 1 drops nothing: dare_ties is then ties, dare_linear_svd is svd.
    await lora.addWeightedAdapter(['a', 'zero'], [1, 0.5], 'dareTies', 'dare_ties', { density: 1 });
    await lora.addWeightedAdapter(['a', 'zero'], [1, 0.5], 'ties', 'ties', { density: 1 });
    expect(maxAbsDifference(delta(model, '0', 'dareTies'), delta(model, '0', 'ties'))).toBe(0);
    await lora.addWeightedAdapter(['a', 'zero'], [1, 0.5], 'dareSvd', 'dare_linear_svd', { density: 1, svdRank: 32 });
    expect(maxAbsDifference(delta(model, '0', 'dareSvd'), weightedDeltas(model, '0', [['a', 1], ['zero', 0.5]]))).toBeLessThan(1e-5);
  });

  it('combines Conv2d and Embedding adapters (svd reshapes the conv delta, transposes the embedding one)', async () => {
    manualSeed(5);
    const conv = createConvModel();
    const convLora = new LoraModel(conv, createLoraConfig({ targetModules: ['0', '2'], r: 2, loraAlpha: 2, initLoraWeights: false }), { adapterName: 'a' });
    convLora.addAdapter('b', createLoraConfig({ targetModules: ['0', '2'], r: 2, loraAlpha: 2, initLoraWeights: false }));
    await convLora.addWeightedAdapter(['a', 'b'], [0.5, 2], 'cat', 'cat');
    await convLora.addWeightedAdapter(['a', 'b'], [0.5, 2], 'svd', 'svd', { svdRank: 4 });
    for (const key of ['0', '2']) {
      const expected = weightedDeltas(conv, key, [['a', 0.5], ['b', 2]]);
      expect(maxAbsDifference(delta(conv, key, 'cat'), expected)).toBeLessThan(1e-5);
      expect(maxAbsDifference(delta(conv, key, 'svd'), expected)).toBeLessThan(1e-5);
    }

    const embedding = new Sequential(new Embedding(12, 6));
    const embeddingLora = new LoraModel(embedding, createLoraConfig({ targetModules: ['0'], r: 2, loraAlpha: 4, initLoraWeights: false }), { adapterName: 'a' });
    embeddingLora.addAdapter('b', createLoraConfig({ targetModules: ['0'], r: 2, loraAlpha: 2, initLoraWeights: false }));
    await embeddingLora.addWeightedAdapter(['a', 'b'], [1, -1], 'svd', 'svd', { svdRank: 4 });
    await embeddingLora.addWeightedAdapter(['a', 'b'], [1, -1], 'cat', 'cat');
    expect(maxAbsDifference(delta(embedding, '0', 'svd'), weightedDeltas(embedding, '0', [['a', 2], ['b', -1]]))).toBeLessThan(1e-5);
    expect(maxAbsDifference(delta(embedding, '0', 'cat'), weightedDeltas(embedding, '0', [['a', 1], ['b', -1]]))).toBeLessThan(1e-5);
    await embeddingLora.setAdapter('cat');
    const ids = tf.tensor2d([[0, 5, 11]], [1, 3], 'int32');
    const expectedRows = tf.gather(tf.add(layerOf(embedding, '0').baseLayer.parameter('weight').value, delta(embedding, '0', 'cat')), ids);
    expect(maxAbsDifference(embedding.forward(ids), expectedRows)).toBeLessThan(1e-5);
  });

  it('gives the new adapter a fresh copy of each module to save, as PEFT 0.10', async () => {
    const { model, lora } = mlpWithTwoAdapters({ targetModules: ['lin0'], modulesToSave: ['lin1'] });
    const wrapper = model.getSubmodule('lin1') as ModulesToSaveWrapper;
    wrapper.copyFor('a')!.parameter('bias').set(tf.tensor1d([5, -5]));
    await lora.addWeightedAdapter(['a', 'b'], [1, 1], 'ab', 'cat');
    expect(lora.config('ab').modulesToSave).toEqual(['lin1']);
    expect(maxAbsDifference(wrapper.copyFor('ab')!.parameter('bias').value, wrapper.originalModule.parameter('bias').value)).toBe(0);
  });

  it('refuses what PEFT refuses, and bad requests, with the reason', async () => {
    const { lora } = mlpWithTwoAdapters();
    lora.addAdapter('r4', createLoraConfig({ targetModules: ['lin0'], r: 4 }));
    lora.addAdapter('regex', createLoraConfig({ targetModules: '.*lin0', r: 2 }));
    lora.addAdapter('patterned', createLoraConfig({ targetModules: ['lin0'], r: 2, rankPattern: { lin0: 3 } }));
    const attempt = (...args: Parameters<LoraModel['addWeightedAdapter']>) => lora.addWeightedAdapter(...args);
    await expect(attempt(['a', 'r4'], [1, 1], 'x', 'linear')).rejects.toThrow(
      'all adapters must have the same r value when using combination_type linear (got r = 2, 4); use cat or an *_svd type',
    );
    await expect(attempt(['a', 'missing'], [1, 1], 'x')).rejects.toThrow(UnknownAdapterError);
    await expect(attempt(['a', 'b'], [1, 1], 'a')).rejects.toThrow("addWeightedAdapter: adapter 'a' already exists");
    await expect(attempt(['a', 'b'], [1], 'x')).rejects.toThrow('weights: expected 2 weights (one per adapter), got 1');
    await expect(attempt(['a', 'b'], [1, 1], 'x', 'ties')).rejects.toThrow('density: ties needs a density between 0 and 1');
    await expect(attempt(['a', 'b'], [1, -1], 'x', 'linear')).rejects.toThrow("weights must be ≥ 0 (adapter 'b' has -1)");
    await expect(attempt(['a', 'b'], [1, 1], 'x', 'bogus' as never)).rejects.toThrow("combinationType: expected one of svd, linear, cat");
    await expect(attempt(['a', 'regex'], [1, 1], 'x', 'cat')).rejects.toThrow('mix lists and regex strings');
    await expect(attempt(['a', 'patterned'], [1, 1], 'x', 'cat')).rejects.toThrow("adapter 'patterned' has rank_pattern or alpha_pattern");
    await expect(attempt(['a', 'b'], [1, 1], 'x', 'svd', { svdRank: 3 })).rejects.toThrow(
      "layer 'lin1': svd rank 3 exceeds its ΔW's smaller side (2×20)",
    );
    lora.addAdapter('negative', createLoraConfig({ targetModules: ['lin0'], r: 2, loraAlpha: -2 }));
    await expect(attempt(['a', 'negative'], [1, 1], 'x', 'linear')).rejects.toThrow('linear needs weight·scaling ≥ 0 (a negative lora_alpha gives scaling -1)');
    // A failed combination leaves no half-made adapter behind.
    expect(lora.adapterNames).not.toContain('x');
    await expect(attempt(['a', 'b'], [1, 1], 'x', 'svd', { svdClamp: 2 })).rejects.toThrow(PeftError);
  });
});
