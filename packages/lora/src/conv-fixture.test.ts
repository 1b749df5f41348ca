import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readTensorFile, withRowAdapters } from '@peft-ts/core';
import { describeWithBackends, fixturePath, maxAbsDifference } from '@peft-ts/core/test';
import { parseLoraConfigJson } from '@peft-ts/config';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadLoraModel, saveAdapter } from './adapter-io.js';
import { createConvModel } from './testing/test-models.js';

async function loadBase() {
  const model = createConvModel();
  model.loadStateDict(await readTensorFile(fixturePath('conv', 'base_model.safetensors')));
  return model;
}

describeWithBackends('conv LoRA parity with PEFT 0.10 (fixture conv/lora)', () => {
  let x: tf.Tensor;
  let outputs: Map<string, tf.Tensor>;
  let scratch: string;
  beforeAll(async () => {
    x = (await readTensorFile(fixturePath('conv', 'inputs.safetensors'))).get('x')!;
    outputs = await readTensorFile(fixturePath('conv', 'lora', 'outputs.safetensors'));
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-conv-'));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('base model output', async () => {
    const model = await loadBase();
    const expected = (await readTensorFile(fixturePath('conv', 'base_outputs.safetensors'))).get('y')!;
    expect(maxAbsDifference(model.forward(x), expected)).toBeLessThan(1e-5);
  });

  it('loads PEFT\'s adapter: adapted, disabled and merged outputs and merged weights', async () => {
    const model = await loadBase();
    const lora = await loadLoraModel(model, fixturePath('conv', 'lora', 'adapter'));
    expect(maxAbsDifference(model.forward(x), outputs.get('y')!)).toBeLessThan(1e-4);
    expect(await lora.withAdaptersDisabled(() => maxAbsDifference(model.forward(x), outputs.get('y_adapter_disabled')!))).toBeLessThan(1e-5);
    const merged = await lora.mergeAndUnload();
    expect(maxAbsDifference(merged.forward(x), outputs.get('y_merged')!)).toBeLessThan(1e-4);
    const expectedWeights = await readTensorFile(fixturePath('conv', 'lora', 'merged_model.safetensors'));
    for (const [name, tensor] of merged.stateDict()) {
      expect([name, maxAbsDifference(tensor, expectedWeights.get(name)!) < 1e-6]).toEqual([name, true]);
    }
  });

  it('a mixed batch (adapterNames) gives PEFT\'s adapted output for one image and the base output for the other', async () => {
    const model = (await loadBase()).eval();
    await loadLoraModel(model, fixturePath('conv', 'lora', 'adapter'));
    const base = (await readTensorFile(fixturePath('conv', 'base_outputs.safetensors'))).get('y')!;
    const y = withRowAdapters(model, ['__base__', 'default'], 2, () => model.forward(x));
    expect(maxAbsDifference(tf.slice(y, 0, 1), tf.slice(base, 0, 1))).toBeLessThan(1e-5);
    expect(maxAbsDifference(tf.slice(y, 1, 1), tf.slice(outputs.get('y')!, 1, 1))).toBeLessThan(1e-4);
  });

  it('saves PEFT\'s keys, shapes and config, and reloads to the same output', async () => {
    const model = await loadBase();
    const lora = await loadLoraModel(model, fixturePath('conv', 'lora', 'adapter'));
    const directory = join(scratch, 'saved');
    await saveAdapter(lora, directory);
    const ours = await readTensorFile(join(directory, ADAPTER_WEIGHTS_FILE));
    const peft = await readTensorFile(fixturePath('conv', 'lora', 'adapter', ADAPTER_WEIGHTS_FILE));
    expect([...ours.keys()].sort()).toEqual([...peft.keys()].sort());
    for (const [key, tensor] of peft) expect(ours.get(key)!.shape).toEqual(tensor.shape);
    const ourConfig = parseLoraConfigJson(await readFile(join(directory, ADAPTER_CONFIG_FILE), 'utf8'));
    const peftConfig = parseLoraConfigJson(await readFile(fixturePath('conv', 'lora', 'adapter', ADAPTER_CONFIG_FILE), 'utf8'));
    expect(new Set(ourConfig.targetModules)).toEqual(new Set(peftConfig.targetModules));
    expect({ ...ourConfig, targetModules: null }).toEqual({ ...peftConfig, targetModules: null });
    const reloaded = await loadLoraModel(await loadBase(), directory);
    expect(maxAbsDifference(reloaded.model.forward(x), outputs.get('y')!)).toBeLessThan(1e-4);
  });
});
