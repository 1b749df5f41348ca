import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { countParameters, readTensorFile } from '@peft-ts/core';
import { describeWithBackends, fixturePath, maxAbsDifference } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { doraMethod } from '@peft-ts/dora';
import { LoraModel, loadLoraModel } from '@peft-ts/lora';
import { MistralForCausalLM, loadMistral, mistral7bV01Config, saveMistral } from '@peft-ts/model-mistral';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@peft-ts/core/backend';

const projections = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

const mistral7b = mistral7bV01Config;

describe('shape-only plan of Mistral-7B-v0.1 with LoRA and a 64-layer replication map', () => {
  beforeAll(() => initBackend('cpu'));

  it('reports 64 layers and 7,283,675,136 parameters without allocating', () => {
    const before = tf.memory().numTensors;
    const model = new MistralForCausalLM(mistral7b, { meta: true });
    expect(countParameters(model).total).toBe(7_241_732_096);
    new LoraModel(
      model,
      createLoraConfig({ r: 8, loraAlpha: 16, targetModules: projections, layerReplication: [[0, 16], [8, 24], [16, 32], [16, 32]] }),
    );
    expect(model.decoderLayers().length).toBe(64);
    expect(model.config.num_hidden_layers).toBe(64);
    expect(countParameters(model)).toMatchObject({ total: 7_283_675_136, trainable: 41_943_040 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('counts DoRA magnitudes too (PEFT: Σ out_features per layer)', () => {
    const model = new MistralForCausalLM(mistral7b, { meta: true });
    new LoraModel(model, createLoraConfig({ r: 16, loraAlpha: 32, targetModules: 'all-linear', useDora: true }), { method: doraMethod });
    expect(countParameters(model).trainable).toBe(41_943_040 + 1_376_256);
  });
});

describeWithBackends('layer replication on the fixture Mistral', () => {
  let inputIds: tf.Tensor2D;
  let scratch: string;
  beforeAll(async () => {
    inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-replication-'));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('adds only the adapter bytes', async () => {
    const model = await loadMistral(fixturePath('mistral', 'base_model'));
    const before = tf.memory().numBytes;
    const lora = new LoraModel(model, createLoraConfig({ r: 4, loraAlpha: 8, targetModules: projections, layerReplication: [[0, 4], [2, 5]] }));
    expect(tf.memory().numBytes - before).toBe(lora.countParameters().trainable * 4);
  });

  it('merge-and-unload gives an expanded standalone checkpoint with the same logits', async () => {
    const model = await loadMistral(fixturePath('mistral', 'base_model'));
    const lora = await loadLoraModel(model, fixturePath('mistral', 'layer_replication', 'adapter'));
    const expected = tf.tidy(() => model.forward({ inputIds }).logits);
    await expect(lora.mergeAdapter()).rejects.toThrow(/share base weights/);
    const merged = await lora.mergeAndUnload();
    expect(countParameters(merged).total).toBe(201_408 + 2 * (201_408 - 2 * 128 * 64 - 64) / 5);
    const directory = join(scratch, 'expanded');
    await saveMistral(merged, directory);
    const reloaded = await loadMistral(directory);
    expect(reloaded.config.num_hidden_layers).toBe(7);
    expect(maxAbsDifference(tf.tidy(() => reloaded.forward({ inputIds }).logits), expected)).toBeLessThan(1e-4);
  });

  it('refuses a second, different replication map and bad ranges', async () => {
    const model = await loadMistral(fixturePath('mistral', 'base_model'));
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['q_proj'], layerReplication: [[0, 4], [2, 5]] }));
    expect(() => lora.addAdapter('other', createLoraConfig({ targetModules: ['q_proj'], layerReplication: [[0, 5]] }))).toThrow(
      /already replicated with \[\[0,4\],\[2,5\]\]/,
    );
    lora.addAdapter('same', createLoraConfig({ targetModules: ['q_proj'], layerReplication: [[0, 4], [2, 5]] }));
    expect(model.decoderLayers().length).toBe(7);
    const fresh = await loadMistral(fixturePath('mistral', 'base_model'));
    expect(() => new LoraModel(fresh, createLoraConfig({ targetModules: ['q_proj'], layerReplication: [[0, 6]] }))).toThrow(
      'layer_replication[0] = [0,6]: out of bounds for a model with 5 layers',
    );
  });
});
