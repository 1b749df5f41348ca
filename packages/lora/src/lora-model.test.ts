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
import { resolvePatternKey } from './resolve-layer-settings.js';
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

  it('matches rank_pattern keys as PEFT 0.10\'s re.match(".*\\.<key>$"): a top-level | does not reach mid-key', () => {
    const patterns = { rankPattern: { 'q_proj|v_proj': 2 }, alphaPattern: {} };
    expect(resolvePatternKey('model.layers.0.self_attn.q_proj', patterns)).toBe('q_proj|v_proj');
    expect(resolvePatternKey('model.layers.0.self_attn.xv_proj', patterns)).toBe('model.layers.0.self_attn.xv_proj');
    // Python anchors `v_proj$` at the start of the key too, so only a key that is exactly `v_proj` takes it.
    expect(resolvePatternKey('model.layers.0.self_attn.v_proj', patterns)).toBe('model.layers.0.self_attn.v_proj');
    expect(resolvePatternKey('model.layers.0.self_attn.v_proj', { rankPattern: { '(q_proj|v_proj)': 2 }, alphaPattern: {} })).toBe('(q_proj|v_proj)');
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

  it('on a merged model: setAdapter warns and unmerges, addAdapter keeps the merge, a merged adapter cannot be deleted (PEFT 0.10)', async () => {
    manualSeed(4);
    const model = new Mlp();
    const input = mlpInput();
    const warnings: string[] = [];
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0'], initLoraWeights: false }), { onWarning: (message) => warnings.push(message) });
    const adapted = output(model, input);
    lora.addAdapter('other', createLoraConfig({ targetModules: ['lin0'], initLoraWeights: false }));
    await lora.mergeAdapter();
    const layer = model.getSubmodule('lin0') as LoraLinear;
    lora.addAdapter('third', createLoraConfig({ targetModules: ['lin0', 'lin1'] }));
    expect(layer.mergedAdapters).toEqual(['default']);
    expect(maxAbsDifference(output(model, input), adapted)).toBeLessThan(1e-4);
    expect(() => lora.deleteAdapter('default')).toThrow(/cannot delete adapter 'default': it is merged/);
    lora.deleteAdapter('third');
    await lora.setAdapter('other');
    expect(warnings).toEqual(['Adapter cannot be set when the model is merged. Unmerging the model first.']);
    expect(layer.isMerged).toBe(false);
    expect(layer.activeAdapters).toEqual(['other']);
    await lora.setAdapter('default');
    expect(maxAbsDifference(output(model, input), adapted)).toBeLessThan(1e-4);
    layer.setAdaptersDisabled(true);
    await lora.mergeAdapter();
    expect(() => layer.forward(input)).toThrow(/cannot run with adapters disabled: default merged/);
    await lora.setAdaptersDisabled(true);
    expect(layer.isMerged).toBe(false);
    await lora.setAdaptersDisabled(false);
    lora.deleteAdapter('default');
  });

  it('unload() after a merge returns the base model with the merged weights, as PEFT does', async () => {
    manualSeed(5);
    const model = new Mlp();
    const input = mlpInput();
    const base = output(model, input);
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0', 'lin1'], initLoraWeights: false }));
    const adapted = output(model, input);
    await lora.mergeAdapter();
    const unloaded = await lora.unload();
    expect(unloaded.getSubmodule('lin0').kind).toBe('linear');
    expect(maxAbsDifference(output(unloaded, input), adapted)).toBeLessThan(1e-4);
    expect(maxAbsDifference(output(unloaded, input), base)).toBeGreaterThan(1e-3);
    const plain = new Mlp();
    const unmerged = new LoraModel(plain, createLoraConfig({ targetModules: ['lin0'], initLoraWeights: false }));
    const plainBase = await unmerged.withAdaptersDisabled(() => output(plain, input));
    expect(maxAbsDifference(output(await unmerged.unload(), input), plainBase)).toBe(0);
  });

  it('treats layer_replication: [] as no replication, as PEFT does', () => {
    const model = new Mlp();
    expect(() => new LoraModel(model, createLoraConfig({ targetModules: ['lin0'], layerReplication: [] }))).not.toThrow();
    expect(model.getSubmodule('lin0')).toBeInstanceOf(LoraLinear);
  });

  it('sums several active adapters, trains each of them, and merges each', async () => {
    manualSeed(6);
    const model = new Mlp();
    const input = mlpInput();
    const base = output(model, input);
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0', 'lin1'], initLoraWeights: false }));
    lora.addAdapter('other', createLoraConfig({ targetModules: ['lin1'], initLoraWeights: false, r: 2 }));
    const defaultOnly = output(model, input);
    await lora.setAdapter(['default', 'other']);
    expect(lora.activeAdapters).toEqual(['default', 'other']);
    expect(() => lora.activeAdapter).toThrow(/several adapters are active \(default, other\)/);
    const layer = model.getSubmodule('lin1') as LoraLinear;
    // lin0 holds only 'default'; lin1 adds both contributions to its base output.
    const hidden = tf.tidy(() => tf.relu((model.getSubmodule('lin0') as LoraLinear).forward(input)));
    const expected = tf.tidy(() =>
      tf.add(tf.add(layer.baseLayer.forward(hidden), layer.loraOutput('default', hidden)), layer.loraOutput('other', hidden)),
    );
    const both = output(model, input);
    expect(maxAbsDifference(both, expected)).toBeLessThan(1e-5);
    expect(maxAbsDifference(both, defaultOnly)).toBeGreaterThan(1e-3);
    expect(maxAbsDifference(both, base)).toBeGreaterThan(1e-3);
    expect(lora.trainableParameters().map(([name]) => name)).toEqual([
      'lin0.lora_A.default.weight',
      'lin0.lora_B.default.weight',
      'lin1.lora_A.default.weight',
      'lin1.lora_A.other.weight',
      'lin1.lora_B.default.weight',
      'lin1.lora_B.other.weight',
    ]);
    await lora.mergeAdapter();
    expect(layer.mergedAdapters).toEqual(['default', 'other']);
    expect(maxAbsDifference(output(model, input), both)).toBeLessThan(1e-4);
    await lora.unmergeAdapter();
    const merged = await lora.mergeAndUnload();
    expect(maxAbsDifference(output(merged, input), both)).toBeLessThan(1e-4);
  });

  it('refuses several active adapters with modules_to_save, an empty list and unknown names', async () => {
    const lora = new LoraModel(new Mlp(), createLoraConfig({ targetModules: ['lin0'], modulesToSave: ['lin1'] }));
    lora.addAdapter('other', createLoraConfig({ targetModules: ['lin0'], modulesToSave: ['lin1'] }));
    await expect(lora.setAdapter(['default', 'other'])).rejects.toThrow('Only one adapter can be set at a time for modules_to_save');
    await expect(lora.setAdapter([])).rejects.toThrow(/at least one adapter name/);
    await expect(lora.setAdapter(['default', 'missing'])).rejects.toThrow(UnknownAdapterError);
    expect(lora.activeAdapters).toEqual(['default']);
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
  it('loads what matches and reports missing and unexpected keys, as PEFT loads (strict=False)', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { readTensorFile, writeTensorFile } = await import('@peft-ts/core');
    const { saveAdapter, loadLoraModel, loadAdapter } = await import('./adapter-io.js');
    const directory = await mkdtemp(join(tmpdir(), 'peft-ts-keys-'));
    try {
      manualSeed(9);
      const saved = new LoraModel(new Mlp(), createLoraConfig({ targetModules: ['lin0', 'lin1'], initLoraWeights: false }));
      await saveAdapter(saved, directory);
      const file = join(directory, 'adapter_model.safetensors');
      const tensors = await readTensorFile(file);
      const loraA = tensors.get('base_model.model.lin0.lora_A.weight')!;
      tensors.delete('base_model.model.lin1.lora_B.weight');
      tensors.set('base_model.model.lin9.lora_A.weight', tf.zeros([8, 10]));
      await writeTensorFile(file, tensors, { format: 'pt' });
      const warnings: string[] = [];
      const loaded = await loadLoraModel(new Mlp(), directory, { onWarning: (message) => warnings.push(message) });
      expect(warnings).toEqual([
        `${file}: adapter 'default' loaded with keys missing (left at their initial values): base_model.model.lin1.lora_B.weight | ` +
          'unexpected (ignored): base_model.model.lin9.lora_A.weight',
      ]);
      expect(maxAbsDifference((loaded.model.getSubmodule('lin0') as LoraLinear).loraA('default').weight.value, loraA)).toBe(0);
      const result = await loadAdapter(loaded, directory, { adapterName: 'second', onWarning: () => {} });
      expect(result).toEqual({ missingKeys: ['base_model.model.lin1.lora_B.weight'], unexpectedKeys: ['base_model.model.lin9.lora_A.weight'] });
      expect(loaded.adapterNames).toEqual(['default', 'second']);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

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
