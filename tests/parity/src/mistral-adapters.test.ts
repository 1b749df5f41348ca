import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { countParameters, readTensorFile } from '@peft-ts/core';
import { describeWithBackends, fixturePath, maxAbsDifference } from '@peft-ts/core/test';
import { parseLoraConfigJson } from '@peft-ts/config';
import { doraMethod } from '@peft-ts/dora';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, LoraLinear, loadLoraModel, saveAdapter } from '@peft-ts/lora';
import { adapterStateSources } from '@peft-ts/lora/internal';
import { loadMistral, type MistralForCausalLM } from '@peft-ts/model-mistral';
import { afterAll, beforeAll, expect, it } from 'vitest';

const TOLERANCE = 1e-4;
const cases = ['lora', 'rslora', 'patterns', 'embedding', 'dora', 'layer_replication'] as const;

const logitsOf = (model: MistralForCausalLM, inputIds: tf.Tensor2D) => tf.tidy(() => model.forward({ inputIds }).logits);

describeWithBackends('Mistral adapters match PEFT 0.10', () => {
  let inputIds: tf.Tensor2D;
  let scratch: string;
  const differences: Record<string, number> = {};
  beforeAll(async () => {
    inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-parity-'));
  });
  afterAll(async () => {
    console.info(`max-abs logits differences: ${JSON.stringify(differences)}`);
    await rm(scratch, { recursive: true, force: true });
  });
  const record = (name: string, value: number) => {
    differences[name] = Math.max(differences[name] ?? 0, value);
    return value;
  };

  it.each(cases)('%s: logits with the adapter, disabled and merged; merged weights', async (name) => {
    const outputs = await readTensorFile(fixturePath('mistral', name, 'outputs.safetensors'));
    const model = await loadMistral(fixturePath('mistral', 'base_model'));
    const lora = await loadLoraModel(model, fixturePath('mistral', name, 'adapter'), { method: doraMethod });
    expect(record(`${name}.logits`, maxAbsDifference(logitsOf(model, inputIds), outputs.get('logits')!))).toBeLessThan(TOLERANCE);
    const disabled = await lora.withAdaptersDisabled(() => logitsOf(model, inputIds));
    expect(record(`${name}.disabled`, maxAbsDifference(disabled, outputs.get('logits_adapter_disabled')!))).toBeLessThan(TOLERANCE);
    if (name === 'layer_replication') return;
    const merged = await lora.mergeAndUnload();
    expect(record(`${name}.merged`, maxAbsDifference(logitsOf(merged, inputIds), outputs.get('merged_logits')!))).toBeLessThan(TOLERANCE);
    const sample = await readTensorFile(fixturePath('mistral', name, 'merged_sample.safetensors'));
    const weights = merged.stateDict();
    for (const [key, expected] of sample) expect([key, maxAbsDifference(weights.get(key)!, expected) < 1e-5]).toEqual([key, true]);
  });

  it.each(cases)('%s: our saved adapter has PEFT\'s keys, shapes and config, and reloads to the same logits', async (name) => {
    const peftDirectory = fixturePath('mistral', name, 'adapter');
    const model = await loadMistral(fixturePath('mistral', 'base_model'));
    const lora = await loadLoraModel(model, peftDirectory, { method: doraMethod });
    const directory = join(scratch, name);
    await saveAdapter(lora, directory);
    const ours = await readTensorFile(join(directory, ADAPTER_WEIGHTS_FILE));
    const peft = await readTensorFile(join(peftDirectory, ADAPTER_WEIGHTS_FILE));
    expect([...ours.keys()].sort()).toEqual([...peft.keys()].sort());
    for (const [key, tensor] of peft) expect([key, ours.get(key)!.shape]).toEqual([key, tensor.shape]);
    const ourText = await readFile(join(directory, ADAPTER_CONFIG_FILE), 'utf8');
    const peftText = await readFile(join(peftDirectory, ADAPTER_CONFIG_FILE), 'utf8');
    const ourConfig = parseLoraConfigJson(ourText);
    const peftConfig = parseLoraConfigJson(peftText);
    expect(new Set(ourConfig.targetModules)).toEqual(new Set(peftConfig.targetModules));
    expect({ ...ourConfig, targetModules: null }).toEqual({ ...peftConfig, targetModules: null });
    const reloaded = await loadLoraModel(await loadMistral(fixturePath('mistral', 'base_model')), directory, { method: doraMethod });
    const expected = (await readTensorFile(fixturePath('mistral', name, 'outputs.safetensors'))).get('logits')!;
    expect(maxAbsDifference(logitsOf(reloaded.model, inputIds), expected)).toBeLessThan(TOLERANCE);
  });

  it('patterns: resolves rank/alpha as PEFT 0.10 does (the rank key hides the alpha key)', async () => {
    const model = await loadMistral(fixturePath('mistral', 'base_model'));
    await loadLoraModel(model, fixturePath('mistral', 'patterns', 'adapter'));
    const facts = JSON.parse(await readFile(fixturePath('mistral', 'patterns', 'facts.json'), 'utf8')) as {
      modules: Record<string, { r: number; lora_alpha: number; scaling: number }>;
    };
    for (const [key, expected] of Object.entries(facts.modules)) {
      const layer = model.getSubmodule(key.replace('base_model.model.', '')) as LoraLinear;
      const settings = layer.adapterSettings('default');
      const { r, lora_alpha, scaling } = expected;
      expect({ key, r: settings.r, lora_alpha: settings.alpha, scaling: settings.scaling }).toEqual({ key, r, lora_alpha, scaling });
    }
  });

  it('layer_replication: 7 layers sharing base weights, distinct adapters, PEFT\'s parameter counts', async () => {
    const model = await loadMistral(fixturePath('mistral', 'base_model'));
    expect(countParameters(model).total).toBe(201_408);
    const lora = await loadLoraModel(model, fixturePath('mistral', 'layer_replication', 'adapter'), { isTrainable: true });
    const layers = model.decoderLayers().toArray();
    expect(layers.map((layer) => layer.layerIndex)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(model.config.num_hidden_layers).toBe(7);
    const weight = (position: number, path: string) => layers[position].getSubmodule(path).parameter('weight');
    for (const path of ['self_attn.q_proj.base_layer', 'mlp.down_proj.base_layer', 'input_layernorm']) {
      expect(weight(2, path)).toBe(weight(4, path));
      expect(weight(3, path)).toBe(weight(5, path));
      expect(weight(2, path)).not.toBe(weight(3, path));
    }
    const loraA = (position: number) => (layers[position].getSubmodule('self_attn.q_proj') as LoraLinear).loraA('default').weight;
    expect(loraA(2)).not.toBe(loraA(4));
    expect(countParameters(model)).toMatchObject({ total: 230_080, trainable: 28_672 });
    expect([...adapterStateSources(lora).keys()].filter((key) => key.includes('layers.6.'))).not.toHaveLength(0);
  });
});
