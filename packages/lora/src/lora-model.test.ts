import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdapterInjectionError, MergeError, NonFiniteTensorError, TensorDtypeError, UnknownAdapterError, manualSeed } from '@peft-ts/core';
import { writeSafetensors } from '@peft-ts/core/safetensors';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { expect, it } from 'vitest';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadLoraModel, saveAdapter } from './adapter-io.js';
import { LoraLinear } from './lora-linear.js';
import { LoraModel } from './lora-model.js';
import { Mlp, createConvModel, mlpInput } from './testing/test-models.js';

const output = (model: { forward(x: tf.Tensor): tf.Tensor }, input: tf.Tensor) => tf.tidy(() => model.forward(input));

describeWithBackends('LoraModel', () => {
  it('is the identity at default init and differs once B is trained', () => {
    manualSeed(0);
    const model = new Mlp();
    const input = mlpInput();
    const base = output(model, input);
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0'] }));
    expect(maxAbsDifference(output(model, input), base)).toBe(0);
    const layer = model.getSubmodule('lin0') as LoraLinear;
    expect(layer.loraB('default').weight.value.dataSync().every((value) => value === 0)).toBe(true);
    // A ~ U(±1/√in) (kaiming-uniform with a=√5).
    const a = layer.loraA('default').weight.value.dataSync();
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(10));
    expect(lora.trainableParameters().map(([name]) => name)).toEqual(['lin0.lora_A.default.weight', 'lin0.lora_B.default.weight']);
  });

  it('computes scaling as PEFT does, with rank/alpha patterns and rsLoRA', () => {
    const model = new Mlp();
    new LoraModel(model, createLoraConfig({ targetModules: ['lin0', 'lin1'], r: 16, loraAlpha: 3 }));
    expect((model.getSubmodule('lin0') as LoraLinear).scaling('default')).toBe(0.1875);
    const patterned = new Mlp();
    new LoraModel(
      patterned,
      createLoraConfig({ targetModules: ['lin0', 'lin1'], r: 25, loraAlpha: 17, rankPattern: { lin1: 9 }, alphaPattern: { lin0: 11 }, useRslora: true }),
    );
    expect((patterned.getSubmodule('lin0') as LoraLinear).scaling('default')).toBe(11 / 5);
    expect((patterned.getSubmodule('lin1') as LoraLinear).scaling('default')).toBe(17 / 3);
  });

  it('disables, merges, unmerges and merge-and-unloads with equal outputs', async () => {
    manualSeed(1);
    const model = new Mlp();
    const input = mlpInput();
    const base = output(model, input);
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0', 'lin1'], initLoraWeights: false }));
    const adapted = output(model, input);
    expect(maxAbsDifference(adapted, base)).toBeGreaterThan(1e-3);
    expect(await lora.withAdaptersDisabled(() => maxAbsDifference(output(model, input), base))).toBe(0);
    await lora.mergeAdapter();
    expect(maxAbsDifference(output(model, input), adapted)).toBeLessThan(1e-3);
    await lora.unmergeAdapter();
    expect(maxAbsDifference(output(model, input), adapted)).toBeLessThan(1e-3);
    await lora.mergeAdapter({ safeMerge: true });
    // Disabling a merged model unmerges it for good (PEFT behaviour).
    expect(await lora.withAdaptersDisabled(() => maxAbsDifference(output(model, input), base))).toBeLessThan(1e-3);
    const plain = await lora.mergeAndUnload();
    expect(plain.getSubmodule('lin0').kind).toBe('linear');
    expect(maxAbsDifference(output(plain, input), adapted)).toBeLessThan(1e-3);
    expect(plain.namedParameters().map(([name]) => name)).toEqual(['lin0.weight', 'lin0.bias', 'lin1.weight', 'lin1.bias']);
  });

  it('safe merge refuses non-finite weights and leaves the base untouched', async () => {
    const model = new Mlp();
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0'], initLoraWeights: false }));
    const layer = model.getSubmodule('lin0') as LoraLinear;
    const before = layer.baseLayer.parameter('weight').value.dataSync().slice();
    layer.loraB('default').weight.set(tf.fill([20, 8], NaN));
    await expect(lora.mergeAdapter({ safeMerge: true })).rejects.toThrow(MergeError);
    await expect(lora.mergeAndUnload({ safeMerge: true })).rejects.toThrow(/NaNs detected in the merged weights/);
    expect(Array.from(layer.baseLayer.parameter('weight').value.dataSync())).toEqual(Array.from(before));
    expect(model.getSubmodule('lin0')).toBe(layer);
  });

  it('refuses to switch, add or delete adapters while merged (unmerging is async), and disabling unmerges', async () => {
    const model = new Mlp();
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0'], initLoraWeights: false }));
    lora.addAdapter('other', createLoraConfig({ targetModules: ['lin0'] }));
    await lora.mergeAdapter();
    expect(() => lora.setAdapter('other')).toThrow(/cannot switch to adapter 'other': default merged into the base weights; await unmergeAdapter\(\) first/);
    expect(() => lora.addAdapter('third', createLoraConfig({ targetModules: ['lin0'] }))).toThrow(MergeError);
    expect(() => lora.deleteAdapter('default')).toThrow(MergeError);
    lora.deleteAdapter('other');
    const layer = model.getSubmodule('lin0') as LoraLinear;
    layer.setAdaptersDisabled(true);
    expect(() => layer.forward(mlpInput())).toThrow(/cannot run with adapters disabled: default merged/);
    await lora.setAdaptersDisabled(true);
    expect(layer.isMerged).toBe(false);
    await lora.setAdaptersDisabled(false);
    lora.deleteAdapter('default');
  });

  it('holds several adapters: add (inactive), switch, delete', () => {
    manualSeed(2);
    const model = new Mlp();
    const input = mlpInput();
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0'], initLoraWeights: false }));
    const first = output(model, input);
    lora.addAdapter('other', createLoraConfig({ targetModules: ['lin0'], initLoraWeights: false, r: 2 }));
    expect(lora.activeAdapter).toBe('default');
    expect(maxAbsDifference(output(model, input), first)).toBe(0);
    expect(lora.trainableParameters().every(([name]) => name.includes('.default.'))).toBe(true);
    lora.setAdapter('other');
    const second = output(model, input);
    expect(maxAbsDifference(second, first)).toBeGreaterThan(1e-3);
    expect(lora.trainableParameters().map(([name]) => name)).toEqual(['lin0.lora_A.other.weight', 'lin0.lora_B.other.weight']);
    lora.deleteAdapter('other');
    expect(lora.adapterNames).toEqual(['default']);
    expect(lora.activeAdapter).toBe('default');
    expect(maxAbsDifference(output(model, input), first)).toBe(0);
    expect(() => lora.setAdapter('missing')).toThrow(UnknownAdapterError);
    expect(() => lora.deleteAdapter('missing')).toThrow('Adapter missing does not exist');
    lora.deleteAdapter('default');
    expect((model.getSubmodule('lin0') as LoraLinear).activeAdapters).toEqual([]);
    expect(output(model, input).shape).toEqual([9, 2]);
  });

  it('refuses a second adapter that trains biases, leaving the model unchanged', () => {
    const model = new Mlp();
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0'], bias: 'all' }));
    expect(lora.trainableParameters().map(([name]) => name)).toContain('lin1.bias');
    expect(() => lora.addAdapter('second', createLoraConfig({ targetModules: ['lin0'], bias: 'all' }))).toThrow(/only one adapter may train biases/);
    expect(lora.adapterNames).toEqual(['default']);
    expect((model.getSubmodule('lin0') as LoraLinear).adapterNames).toEqual(['default']);
  });

  it('reports targets that match nothing and layers it cannot wrap', () => {
    expect(() => new LoraModel(new Mlp(), createLoraConfig({ targetModules: ['q_proj'] }))).toThrow(AdapterInjectionError);
    expect(() => new LoraModel(new Mlp(), createLoraConfig({ targetModules: ['q_proj'] }))).toThrow(/\["q_proj"\] not found in the base model.*lin0/);
    expect(() => new LoraModel(createConvModel(), createLoraConfig({ targetModules: ['1'] }))).toThrow(
      /lora cannot wrap 1 \(relu\): supported layers are LoRA layers \(another adapter\), Linear \(float, 8-bit, 4-bit\), Embedding, Conv2d/,
    );
    expect(() => new LoraModel(new Mlp(), createLoraConfig({ targetModules: ['lin0'], useDora: true }))).toThrow(/@peft-ts\/dora/);
  });

  it('trains only adapter parameters', () => {
    manualSeed(3);
    const model = new Mlp();
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0', 'lin1'], initLoraWeights: false }));
    const before = new Map(model.namedParameters().map(([name, parameter]) => [name, parameter.value.dataSync().slice()]));
    const trainable = lora.trainableParameters().map(([, parameter]) => parameter.value);
    const input = mlpInput();
    const { grads } = tf.variableGrads(() => tf.sum(model.forward(input)) as tf.Scalar, trainable);
    for (const [name, parameter] of model.namedParameters()) {
      const gradient = grads[parameter.value.name];
      if (gradient) parameter.value.assign(tf.sub(parameter.value, tf.mul(gradient, 0.5)));
    }
    for (const [name, parameter] of model.namedParameters()) {
      const changed = maxAbsDifference(parameter.value, before.get(name)!) > 0;
      expect([name, changed]).toEqual([name, name.includes('lora_')]);
    }
  });
});

/** Saves an Mlp adapter with `r` on lin0 to a scratch directory, runs `body` on it, then removes it. */
async function withSavedAdapter(r: number, body: (paths: { directory: string; config: string; weights: string }) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), 'peft-ts-adapter-'));
  try {
    await saveAdapter(new LoraModel(new Mlp(), createLoraConfig({ targetModules: ['lin0'], r })), directory);
    await body({ directory, config: join(directory, ADAPTER_CONFIG_FILE), weights: join(directory, ADAPTER_WEIGHTS_FILE) });
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

const editFile = async (path: string, from: string, to: string) => writeFile(path, (await readFile(path, 'utf8')).replace(from, to));

describeWithBackends('adapter loading errors', () => {
  it('names every key whose rank does not fit the config (r in the config vs the checkpoint), before allocating', () =>
    withSavedAdapter(4, async ({ directory, config, weights }) => {
      await editFile(config, '"r": 4', '"r": 2');
      await expect(loadLoraModel(new Mlp(), directory)).rejects.toThrow(
        `${weights}: ranks do not fit ${config} (r / rank_pattern): base_model.model.lin0.lora_A.weight has rank 4 [4, 10], the config gives r 2`,
      );
    }));

  it('names the config file when its target modules are not in the model', () =>
    withSavedAdapter(2, async ({ directory, config }) => {
      await editFile(config, '"lin0"', '"lin9"');
      await expect(loadLoraModel(new Mlp(), directory)).rejects.toThrow(new RegExp(`^${config}: target_modules \\["lin9"\\] not found in the base model`));
    }));

  it('names an integer tensor with its dtype and the accepted ones, and warns (or with strict refuses) NaN weights', () =>
    withSavedAdapter(2, async ({ directory, weights }) => {
      const lora = (key: string) => `base_model.model.lin0.${key}.weight`;
      await writeSafetensors(weights, new Map([
        [lora('lora_A'), { dtype: 'I64', shape: [2, 10], data: new BigInt64Array(20) }],
        [lora('lora_B'), { dtype: 'F32', shape: [20, 2], data: new Float32Array(40) }],
      ] as const));
      const wrongDtype = loadLoraModel(new Mlp(), directory);
      await expect(wrongDtype).rejects.toBeInstanceOf(TensorDtypeError);
      await expect(wrongDtype).rejects.toThrow(`${weights}: tensor "${lora('lora_A')}" has dtype I64; expected F32, F16, BF16`);

      const nan = new Float32Array(40).fill(Number.NaN, 0, 3);
      await writeSafetensors(weights, new Map([
        [lora('lora_A'), { dtype: 'F32', shape: [2, 10], data: new Float32Array(20) }],
        [lora('lora_B'), { dtype: 'F32', shape: [20, 2], data: nan }],
      ] as const));
      const warnings: string[] = [];
      await loadLoraModel(new Mlp(), directory, { onWarning: (message) => warnings.push(message) });
      const expected = `${weights}: tensor "${lora('lora_B')}": 3 of 40 values are NaN or ±Inf`;
      expect(warnings).toEqual([expected]);
      const refusal = loadLoraModel(new Mlp(), directory, { strict: true });
      await expect(refusal).rejects.toBeInstanceOf(NonFiniteTensorError);
      await expect(refusal).rejects.toThrow(expected);
    }));
});

describeWithBackends('layer_replication', () => {
  it('an empty list is no replication, as in PEFT (even on a model without decoder layers)', () => {
    const lora = new LoraModel(new Mlp(), createLoraConfig({ targetModules: ['lin0'], r: 2, layerReplication: [] }));
    expect(lora.config('default').layerReplication).toEqual([]);
    lora.model.dispose();
  });
});
