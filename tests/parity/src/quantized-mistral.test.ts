import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, manualSeed, readTensorFile, type LinearLike } from '@peft-ts/core';
import { rowNorms } from '@peft-ts/core/internal';
import { describeWithBackends, fixturePath, maxAbsDifference } from '@peft-ts/core/test';
import { createBitsAndBytesConfig, createLoraConfig, type BitsAndBytesConfigInput, type LoraConfigInput } from '@peft-ts/config';
import { doraMethod } from '@peft-ts/dora';
import { MAGNITUDE_PARAMETER } from '@peft-ts/dora/internal';
import { LoraLinear, LoraModel, loadLoraModel } from '@peft-ts/lora';
import { loadMistral, type MistralForCausalLM } from '@peft-ts/model-mistral';
import { Linear4bit, Linear8bitLt, int8VectorwiseQuantize, prepareModelForKbitTraining, quantize4bit, quantizedLinearFactory } from '@peft-ts/quant';
import { beforeAll, expect, it } from 'vitest';

const projections = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const nf4DoubleQuant: BitsAndBytesConfigInput = { loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true };
const int8: BitsAndBytesConfigInput = { loadIn8bit: true };

const isQuantized = (module: Module): module is Linear4bit | Linear8bitLt => module instanceof Linear4bit || module instanceof Linear8bitLt;

function loadQuantized(config: BitsAndBytesConfigInput): Promise<MistralForCausalLM> {
  return loadMistral(fixturePath('mistral', 'base_model'), { createLinear: quantizedLinearFactory(createBitsAndBytesConfig(config)) });
}

/** The float fixture model with every linear weight that `quantized` quantized replaced by its dequantized value. */
async function floatTwin(quantized: MistralForCausalLM): Promise<MistralForCausalLM> {
  const model = await loadMistral(fixturePath('mistral', 'base_model'));
  for (const [key, module] of quantized.namedModules()) {
    if (!isQuantized(module)) continue;
    const weight = module.weightAccess.getBaseWeight();
    model.getSubmodule(key).parameter('weight').set(weight);
    weight.dispose();
  }
  return model;
}

/** Scales every DoRA magnitude by seeded factors in [0.5, 1.5), so that m ≠ ‖W + ΔW‖ (PEFT's bnb DoRA tests use 10·rand). */
function setMagnitudes(model: Module, seed: number): void {
  for (const [, module] of model.namedModules()) {
    if (!(module instanceof LoraLinear) || !module.hasChild(MAGNITUDE_PARAMETER)) continue;
    const parameter = module.parameterDict(MAGNITUDE_PARAMETER).get('default')!;
    const value = tf.tidy(() => tf.mul(parameter.value, tf.randomUniform(parameter.shape as number[], 0.5, 1.5, 'float32', seed++)));
    parameter.set(value);
    value.dispose();
  }
}

/** One linear layer as a model, so LoraModel can target it as `proj`. */
class SingleLayer extends Module {
  readonly kind = 'single_layer';
  constructor(layer: LinearLike) {
    super();
    this.registerModule('proj', layer);
  }
  forward(input: tf.Tensor): tf.Tensor {
    return this.child<LinearLike>('proj').forward(input);
  }
}

/** Σ_i |x[t,i]|·|change[o,i]|: a bound on how far `x·Wᵀ` moves when W moves by `change`. */
function absoluteProduct(x: tf.Tensor, change: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.matMul(tf.abs(x), tf.abs(change), false, true));
}

/**
 * Bound on LLM.int8()'s activation rounding for `x·Wᵀ` (no outliers): each code is off by at most half a step,
 * max|x[t]|/254, so the product moves by at most that times Σ_i |W[o,i]|.
 */
function activationRoundingBound(x: tf.Tensor, weight: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.matMul(tf.div(tf.max(tf.abs(x), 1, true), 254), tf.reshape(tf.sum(tf.abs(weight), 1), [1, -1])));
}

describeWithBackends('quantized Mistral (QLoRA)', () => {
  let inputIds: tf.Tensor2D;
  beforeAll(async () => {
    inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
  });
  const logitsOf = (model: MistralForCausalLM) => tf.tidy(() => model.forward({ inputIds }).logits);

  it.each([
    ['NF4 + double quant', nf4DoubleQuant],
    ['FP4', { loadIn4bit: true, bnb4bitQuantType: 'fp4' } as const],
  ])('%s: a quantized load gives the logits of the float model holding the dequantized weights', async (_, config) => {
    const model = await loadQuantized(config);
    const quantizedKeys = model.namedModules().filter(([, module]) => module instanceof Linear4bit).map(([key]) => key);
    expect(quantizedKeys).toHaveLength(5 * projections.length);
    expect(model.getSubmodule('lm_head')).toBeInstanceOf(Linear);
    const twin = await floatTwin(model);
    expect(maxAbsDifference(logitsOf(model), logitsOf(twin))).toBeLessThan(1e-5);
    model.dispose();
    twin.dispose();
  });

  it.each([
    ['4-bit', false, nf4DoubleQuant],
    ['4-bit', true, nf4DoubleQuant],
    ['8-bit', false, int8],
    ['8-bit', true, int8],
  ] as const)('%s: prepared model with LoRA (DoRA %s) trains: the loss falls over 10 Adam steps', async (_, useDora, config) => {
    manualSeed(3);
    // A fixed small batch: the first 12 tokens of both fixture rows.
    const batch = tf.slice(inputIds, [0, 0], [2, 12]);
    const model = prepareModelForKbitTraining(await loadQuantized(config));
    const lora = new LoraModel(model, createLoraConfig({ r: 4, loraAlpha: 8, targetModules: projections, useDora }), { method: doraMethod });
    const variables = lora.trainableParameters().map(([, parameter]) => parameter.value);
    expect(variables.length).toBe(5 * projections.length * (useDora ? 3 : 2));
    const optimizer = tf.train.adam(0.01);
    const losses: number[] = [];
    for (let step = 0; step < 10; step++) {
      const loss = optimizer.minimize(() => model.forward({ inputIds: batch, labels: batch }).loss!, true, variables)!;
      losses.push(loss.dataSync()[0]);
      loss.dispose();
    }
    optimizer.dispose();
    expect(losses.every(Number.isFinite)).toBe(true);
    // From ln(128) ≈ 4.85 to about 4.0 on both backends.
    expect(losses[9]).toBeLessThan(losses[0] - 0.5);
    // The quantized storage never trains.
    expect(model.namedParameters().filter(([name, parameter]) => parameter.requiresGrad && !name.includes('lora_'))).toEqual([]);
    model.dispose();
  });

  it('DoRA on 4-bit layers equals DoRA on float layers holding the dequantized weights', async () => {
    const config = createLoraConfig({ r: 4, loraAlpha: 8, targetModules: projections, useDora: true, initLoraWeights: false });
    const model = await loadQuantized(nf4DoubleQuant);
    const twin = await floatTwin(model);
    manualSeed(5);
    new LoraModel(model, config, { method: doraMethod });
    manualSeed(5);
    new LoraModel(twin, config, { method: doraMethod });
    // Initial magnitudes are the norms of the same dequantized weights.
    const magnitudes = (source: Module) => source.namedParameters().filter(([name]) => name.includes(MAGNITUDE_PARAMETER));
    const twinMagnitudes = new Map(magnitudes(twin));
    for (const [name, parameter] of magnitudes(model)) expect([name, maxAbsDifference(parameter.value, twinMagnitudes.get(name)!.value)]).toEqual([name, 0]);
    setMagnitudes(model, 100);
    setMagnitudes(twin, 100);
    expect(maxAbsDifference(logitsOf(model), logitsOf(twin))).toBeLessThan(1e-5);
    model.dispose();
    twin.dispose();
  });

  it('DoRA on an 8-bit layer differs from the float twin exactly by the rescaled int8 error of the base output', () => {
    // The DoRA norm, magnitude and adapter path see the same dequantized weight; only the reused base output
    // carries LLM.int8()'s activation rounding, scaled by m/‖W+ΔW‖: DoRA₈(x) − DoRA_float(x) = c ⊙ (base₈(x) − x·Wᵀ).
    const weight = tf.randomNormal([48, 96], 0, 0.2, 'float32', 31);
    const quantizedLayer = Linear8bitLt.fromWeight(weight, { threshold: 6 });
    const dequantized = quantizedLayer.weightAccess.getBaseWeight();
    const floatLayer = new Linear(96, 48, { bias: false });
    floatLayer.weight.set(dequantized);
    const config = createLoraConfig({ r: 4, loraAlpha: 8, targetModules: ['proj'], useDora: true, initLoraWeights: false });
    const quantizedModel = new SingleLayer(quantizedLayer);
    const floatModel = new SingleLayer(floatLayer);
    manualSeed(7);
    new LoraModel(quantizedModel, config, { method: doraMethod });
    manualSeed(7);
    new LoraModel(floatModel, config, { method: doraMethod });
    setMagnitudes(quantizedModel, 200);
    setMagnitudes(floatModel, 200);
    const input = tf.randomUniform([6, 96], -2, 2, 'float32', 32);
    // One outlier column exercises the float path of the int8 product too.
    const x = tf.concat([tf.slice(input, [0, 0], [6, 95]), tf.fill([6, 1], 7.5)], 1);
    const wrapped = quantizedModel.child<LoraLinear>('proj');
    const scale = tf.div(
      wrapped.parameterDict(MAGNITUDE_PARAMETER).get('default')!.value,
      rowNorms(tf.add(dequantized, wrapped.deltaWeight('default'))),
    );
    const expected = tf.mul(scale, tf.sub(quantizedLayer.forward(x), tf.matMul(x, dequantized, false, true)));
    expect(maxAbsDifference(tf.sub(quantizedModel.forward(x), floatModel.forward(x)), expected)).toBeLessThan(1e-5);
    quantizedModel.dispose();
    floatModel.dispose();
  });

  it.each([
    ['4-bit', false],
    ['4-bit', true],
    ['8-bit', false],
    ['8-bit', true],
  ] as const)('%s: merging LoRA (DoRA %s) re-quantizes; the merged output stays within the quantization error', async (kind, useDora) => {
    const weight = tf.randomNormal([48, 128], 0, 0.2, 'float32', 41);
    const layer: Linear4bit | Linear8bitLt =
      kind === '4-bit' ? Linear4bit.fromWeight(weight, { quantType: 'nf4', compressStatistics: true }) : Linear8bitLt.fromWeight(weight, { threshold: 6 });
    const dequantized = layer.weightAccess.getBaseWeight();
    const floatLayer = new Linear(128, 48, { bias: false });
    floatLayer.weight.set(dequantized);
    const loraConfig: LoraConfigInput = { r: 4, loraAlpha: 8, targetModules: ['proj'], useDora, initLoraWeights: false };
    const model = new SingleLayer(layer);
    const floatModel = new SingleLayer(floatLayer);
    manualSeed(9);
    const lora = new LoraModel(model, createLoraConfig(loraConfig), { method: doraMethod });
    manualSeed(9);
    const floatLora = new LoraModel(floatModel, createLoraConfig(loraConfig), { method: doraMethod });
    setMagnitudes(model, 300);
    setMagnitudes(floatModel, 300);
    const x = tf.randomUniform([5, 128], -2, 2, 'float32', 42);
    const unmerged = model.forward(x);
    const wrapped = model.child<LoraLinear>('proj');
    const scale = useDora
      ? tf.div(wrapped.parameterDict(MAGNITUDE_PARAMETER).get('default')!.value, rowNorms(tf.add(dequantized, wrapped.deltaWeight('default'))))
      : tf.ones([48]);
    // W' = the merge done in float (the float twin merges without rounding).
    await floatLora.mergeAdapter();
    const mergedFloat = floatLayer.weight.value.clone();
    const bytes = tf.memory().numBytes;
    await lora.mergeAdapter();
    // Re-quantizing reuses the storage; DoRA keeps the merge-time norms [48] to unmerge later, as PEFT does.
    expect(tf.memory().numBytes - bytes).toBe(useDora ? 4 * 48 : 0);
    expect(model.child<LoraLinear>('proj').baseLayer).toBe(layer);
    const values = mergedFloat.dataSync() as Float32Array;
    if (layer instanceof Linear4bit) expect(layer.quantized()).toEqual(quantize4bit(values, { quantType: 'nf4', compressStatistics: true, shape: [48, 128] }));
    else {
      const { quantized, rowStats } = int8VectorwiseQuantize(values, 48, 128);
      expect(layer.quantized()).toEqual({ quantized, rowStats, rows: 48, columns: 128 });
    }
    const merged = model.forward(x);
    // The merged layer computes with Q(W'); the error budget is |x|·|Q(W') − W'|, plus for 8-bit the int8
    // rounding of the activations in both the merged product and the unmerged (rescaled) base product.
    const requantized = layer.weightAccess.getBaseWeight();
    let bound = tf.add(absoluteProduct(x, tf.sub(requantized, mergedFloat)), 1e-5);
    if (layer instanceof Linear8bitLt) {
      bound = tf.add(bound, tf.add(activationRoundingBound(x, requantized), tf.mul(tf.abs(scale), activationRoundingBound(x, dequantized))));
    }
    const excess = tf.max(tf.sub(tf.abs(tf.sub(merged, unmerged)), bound)).dataSync()[0];
    expect(excess).toBeLessThanOrEqual(0);
    // The rounding is really there (the merged layer is not computing with W').
    expect(maxAbsDifference(merged, unmerged)).toBeGreaterThan(1e-4);
    model.dispose();
    floatModel.dispose();
  });

  it.each([
    ['4-bit', nf4DoubleQuant],
    ['8-bit', int8],
  ] as const)('%s with LoRA: gradient checkpointing gives the gradients computed without it', async (_, config) => {
    const model = prepareModelForKbitTraining(await loadQuantized(config));
    manualSeed(13);
    const lora = new LoraModel(model, createLoraConfig({ r: 4, loraAlpha: 8, targetModules: projections, initLoraWeights: false }));
    const variables = lora.trainableParameters().map(([, parameter]) => parameter.value);
    const gradients = (checkpointing: boolean) => {
      model.gradientCheckpointing = checkpointing;
      const { value, grads } = tf.variableGrads(() => model.forward({ inputIds, labels: inputIds }).loss!, variables);
      value.dispose();
      return grads;
    };
    const withCheckpointing = gradients(true);
    const without = gradients(false);
    for (const variable of variables) {
      expect([variable.name, maxAbsDifference(withCheckpointing[variable.name], without[variable.name]) < 1e-5]).toEqual([variable.name, true]);
    }
    expect(Object.values(without).some((gradient) => maxAbsDifference(gradient, tf.zerosLike(gradient)) > 0)).toBe(true);
    tf.dispose([...Object.values(withCheckpointing), ...Object.values(without)]);
    model.dispose();
  });

  it.each([nf4DoubleQuant, int8])('layer replication over quantized layers shares the codes and matches the float twin (%j)', async (config) => {
    const quantized = await loadQuantized(config);
    const twin = await floatTwin(quantized);
    const before = tf.memory().numBytes;
    const adapter = fixturePath('mistral', 'layer_replication', 'adapter');
    await loadLoraModel(quantized, adapter);
    const layers = quantized.decoderLayers().toArray();
    const base = (position: number) => (layers[position].getSubmodule('self_attn.q_proj') as LoraLinear).baseLayer;
    expect(base(2)).toBeInstanceOf(config.loadIn4bit ? Linear4bit : Linear8bitLt);
    expect(base(2).parameter('weight')).toBe(base(4).parameter('weight'));
    expect(base(2)).not.toBe(base(4));
    // Only the adapters are new: the fixture's 28,672 LoRA parameters in float32.
    expect(tf.memory().numBytes - before).toBe(28_672 * 4);
    await loadLoraModel(twin, adapter);
    const inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
    const difference = maxAbsDifference(quantized.forward({ inputIds }).logits, twin.forward({ inputIds }).logits);
    // 4-bit computes with exactly the dequantized weights; 8-bit adds its activation rounding.
    expect(difference).toBeLessThan(config.loadIn4bit ? 1e-5 : 5e-2);
  });
});
