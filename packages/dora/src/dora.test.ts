import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Linear, Module, manualSeed, readTensorFile, withRowAdapters, type AdapterTargetModel } from '@peft-ts/core';
import { describeWithBackends, fixturePath, maxAbsDifference } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { LoraLinear, LoraModel, adapterStateDict, loadLoraModel, saveAdapter } from '@peft-ts/lora';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAGNITUDE_PARAMETER } from './dora-variant.js';
import { doraMethod } from './dora-method.js';

class Single extends Module implements AdapterTargetModel {
  readonly kind = 'single';
  constructor(layer: Module) {
    super();
    this.registerModule('layer', layer);
  }
  forward(input: tf.Tensor): tf.Tensor {
    return this.child<Linear>('layer').forward(input);
  }
}

class ConvModel extends Module implements AdapterTargetModel {
  readonly kind = 'sequential';
  readonly peftAutoMapping = { base_model_class: 'Sequential', parent_library: 'torch.nn.modules.container' };
  constructor() {
    super();
    this.registerModule('0', new Conv2d(3, 8, 3));
    this.registerModule('2', new Conv2d(8, 4, 3));
  }
  forward(input: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.child<Conv2d>('2').forward(tf.relu(this.child<Conv2d>('0').forward(input))));
  }
}

/** The spec's worked example: W=[[1,2],[3,4]], A=[[1,0]], B=[[.5],[1]], alpha 2, r 1 (s = 2). */
function workedExample(useDora: boolean) {
  const base = new Linear(2, 2, { bias: false });
  base.weight.set(tf.tensor2d([[1, 2], [3, 4]]));
  const model = new Single(base);
  const lora = new LoraModel(model, createLoraConfig({ targetModules: ['layer'], r: 1, loraAlpha: 2, useDora }), { method: doraMethod });
  const layer = model.getSubmodule('layer') as LoraLinear;
  layer.loraA('default').weight.set(tf.tensor2d([[1, 0]]));
  layer.loraB('default').weight.set(tf.tensor2d([[0.5], [1]]));
  return { model, lora, layer };
}

describeWithBackends('DoRA', () => {
  it('reproduces the worked example: forward, merge, unmerge', async () => {
    const { model, lora, layer } = workedExample(true);
    // Magnitude was initialised before A/B were set: re-initialise it to ‖W + ΔW‖ = [√8, √41].
    layer.parameterDict(MAGNITUDE_PARAMETER).get('default')!.set(tf.tensor1d([Math.sqrt(8), Math.sqrt(41)]));
    const x = tf.tensor2d([[1, 1]]);
    expect(maxAbsDifference(model.forward(x), [4, 9])).toBeLessThan(1e-5);
    layer.parameterDict(MAGNITUDE_PARAMETER).get('default')!.set(tf.tensor1d([1, 1]));
    expect(maxAbsDifference(model.forward(x), [1.41421356, 1.40556386])).toBeLessThan(1e-6);
    await lora.mergeAdapter();
    expect(maxAbsDifference(layer.baseLayer.parameter('weight').value, [0.70710678, 0.70710678, 0.78086881, 0.62469505])).toBeLessThan(1e-6);
    expect(maxAbsDifference(model.forward(x), [1.41421356, 1.40556386])).toBeLessThan(1e-6);
    await lora.unmergeAdapter();
    expect(maxAbsDifference(layer.baseLayer.parameter('weight').value, [1, 2, 3, 4])).toBeLessThan(1e-6);
  });

  it('equals LoRA with the same A and B at init, and trains the magnitude', () => {
    manualSeed(5);
    const base = new Linear(6, 5);
    const x = tf.randomNormal([3, 6], 0, 1, 'float32', 9);
    const makeModel = () => {
      const copy = new Linear(6, 5);
      copy.loadStateDict(base.stateDict());
      return new Single(copy);
    };
    const loraModel = makeModel();
    manualSeed(6);
    new LoraModel(loraModel, createLoraConfig({ targetModules: ['layer'], initLoraWeights: false }));
    const doraModel = makeModel();
    manualSeed(6);
    const dora = new LoraModel(doraModel, createLoraConfig({ targetModules: ['layer'], initLoraWeights: false, useDora: true }), { method: doraMethod });
    expect(maxAbsDifference(doraModel.forward(x), loraModel.forward(x))).toBeLessThan(1e-5);
    expect(dora.trainableParameters().map(([name]) => name)).toEqual([
      'layer.lora_A.default.weight',
      'layer.lora_B.default.weight',
      'layer.lora_magnitude_vector.default',
    ]);
    const magnitude = dora.trainableParameters()[2][1].value;
    const { grads } = tf.variableGrads(() => tf.sum(tf.square(doraModel.forward(x) as tf.Tensor)) as tf.Scalar, [magnitude]);
    expect(maxAbsDifference(grads[magnitude.name], tf.zerosLike(magnitude))).toBeGreaterThan(0);
  });

  it('refuses per-row adapter names when DoRA is enabled, as PEFT 0.10 does (also for a named, inactive DoRA adapter)', async () => {
    const model = new Single(new Linear(6, 5));
    const x = tf.ones([2, 6]);
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['layer'], initLoraWeights: false }), { method: doraMethod });
    lora.addAdapter('dora', createLoraConfig({ targetModules: ['layer'], useDora: true }));
    model.eval();
    const mixed = (names: string[]) => withRowAdapters(model, names, 2, () => model.forward(x));
    expect(() => mixed(['default', '__base__'])).not.toThrow();
    expect(() => mixed(['default', 'dora'])).toThrow("Cannot pass `adapterNames` when DoRA is enabled (adapter 'dora')");
    await lora.setAdapter('dora');
    expect(() => mixed(['default', '__base__'])).toThrow(/when DoRA is enabled/);
  });

  it('keeps a magnitude per adapter and switches between two DoRA adapters', async () => {
    manualSeed(7);
    const model = new Single(new Linear(6, 5));
    const x = tf.randomNormal([3, 6], 0, 1, 'float32', 10);
    const config = createLoraConfig({ targetModules: ['layer'], initLoraWeights: false, useDora: true });
    const dora = new LoraModel(model, config, { method: doraMethod });
    const layer = model.getSubmodule('layer') as LoraLinear;
    layer.parameterDict(MAGNITUDE_PARAMETER).get('default')!.set(tf.fill([5], 2));
    const first = model.forward(x);
    dora.addAdapter('second', config);
    expect(layer.parameterDict(MAGNITUDE_PARAMETER).keys()).toEqual(['default', 'second']);
    await dora.setAdapter('second');
    const second = model.forward(x);
    expect(maxAbsDifference(second, first)).toBeGreaterThan(1e-3);
    await dora.setAdapter('default');
    expect(maxAbsDifference(model.forward(x), first)).toBe(0);
    dora.deleteAdapter('second');
    expect(layer.parameterDict(MAGNITUDE_PARAMETER).keys()).toEqual(['default']);
  });

  it('applies dropout in training and reuses the base output otherwise, with equal eval results', () => {
    manualSeed(8);
    const model = new Single(new Linear(6, 5));
    const x = tf.randomNormal([4, 6], 0, 1, 'float32', 11);
    new LoraModel(model, createLoraConfig({ targetModules: ['layer'], initLoraWeights: false, useDora: true, loraDropout: 0.5 }), {
      method: doraMethod,
    });
    model.eval();
    const evaluated = model.forward(x);
    model.train();
    expect(maxAbsDifference(model.forward(x), evaluated)).toBeGreaterThan(1e-4);
    // The explicit path with the identity dropout must equal the reuse path.
    const layer = model.getSubmodule('layer') as LoraLinear;
    const weight = layer.baseLayer.weightAccess.getBaseWeight();
    const manual = tf.tidy(() => {
      const delta = layer.deltaWeight('default');
      const norm = tf.sqrt(tf.sum(tf.square(tf.add(weight, delta)), 1));
      const scale = tf.div(layer.parameterDict(MAGNITUDE_PARAMETER).get('default')!.value, norm);
      return tf.add(tf.mul(scale, tf.matMul(x, tf.add(weight, delta), false, true)), layer.baseLayer.bias!.value);
    });
    expect(maxAbsDifference(evaluated, manual)).toBeLessThan(1e-5);
  });

  it('refuses DoRA on an Embedding with a clear error', async () => {
    const { Embedding } = await import('@peft-ts/core');
    expect(
      () => new LoraModel(new Single(new Embedding(10, 4)), createLoraConfig({ targetModules: ['layer'], useDora: true }), { method: doraMethod }),
    ).toThrow('layer: Embedding does not support DoRA yet');
  });
});

describeWithBackends('conv DoRA parity with PEFT 0.10 (fixture conv/dora)', () => {
  let x: tf.Tensor;
  let outputs: Map<string, tf.Tensor>;
  let scratch: string;
  const loadBase = async () => {
    const model = new ConvModel();
    model.loadStateDict(await readTensorFile(fixturePath('conv', 'base_model.safetensors')));
    return model;
  };
  beforeAll(async () => {
    x = (await readTensorFile(fixturePath('conv', 'inputs.safetensors'))).get('x')!;
    outputs = await readTensorFile(fixturePath('conv', 'dora', 'outputs.safetensors'));
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-dora-'));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('adapted, disabled, merged outputs and merged weights; saved keys and reload', async () => {
    const model = await loadBase();
    const dora = await loadLoraModel(model, fixturePath('conv', 'dora', 'adapter'), { method: doraMethod });
    expect(maxAbsDifference(model.forward(x), outputs.get('y')!)).toBeLessThan(1e-4);
    expect(await dora.withAdaptersDisabled(() => maxAbsDifference(model.forward(x), outputs.get('y_adapter_disabled')!))).toBeLessThan(1e-5);
    const saved = adapterStateDict(dora);
    const peft = await readTensorFile(fixturePath('conv', 'dora', 'adapter', 'adapter_model.safetensors'));
    expect([...saved.keys()].sort()).toEqual([...peft.keys()].sort());
    for (const [key, tensor] of peft) expect([key, saved.get(key)!.shape]).toEqual([key, tensor.shape]);
    tf.dispose([...saved.values()]);
    await saveAdapter(dora, join(scratch, 'saved'));
    const reloaded = await loadLoraModel(await loadBase(), join(scratch, 'saved'), { method: doraMethod });
    expect(maxAbsDifference(reloaded.model.forward(x), outputs.get('y')!)).toBeLessThan(1e-4);
    const merged = await dora.mergeAndUnload();
    expect(maxAbsDifference(merged.forward(x), outputs.get('y_merged')!)).toBeLessThan(1e-4);
    const expectedWeights = await readTensorFile(fixturePath('conv', 'dora', 'merged_model.safetensors'));
    for (const [name, tensor] of merged.stateDict()) expect([name, maxAbsDifference(tensor, expectedWeights.get(name)!) < 1e-5]).toEqual([name, true]);
  });
});
