import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { manualSeed } from '@peft-ts/core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { expect, it } from 'vitest';
import { loadLoraModel, saveAdapter } from './adapter-io.js';
import { adapterStateSources } from './adapter-state-dict.js';
import { LoraModel } from './lora-model.js';
import { ModulesToSaveWrapper } from './modules-to-save-wrapper.js';
import { Mlp, mlpInput } from './testing/test-models.js';

describeWithBackends('modules_to_save', () => {
  it('trains a full copy, saves it under PEFT\'s key, falls back to the original when disabled', async () => {
    manualSeed(12);
    const model = new Mlp();
    const baseState = new Map([...model.stateDict()].map(([key, value]) => [key, value.clone()]));
    const input = mlpInput();
    const base = model.forward(input);
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0'], modulesToSave: ['lin1'] }));
    expect(model.getSubmodule('lin1')).toBeInstanceOf(ModulesToSaveWrapper);
    expect(lora.trainableParameters().map(([name]) => name)).toEqual([
      'lin0.lora_A.default.weight',
      'lin0.lora_B.default.weight',
      'lin1.modules_to_save.default.weight',
      'lin1.modules_to_save.default.bias',
    ]);
    const copy = model.getSubmodule('lin1.modules_to_save.default');
    copy.parameter('bias').set(tf.tensor1d([5, -5]));
    const trained = model.forward(input);
    expect(maxAbsDifference(trained, base)).toBeGreaterThan(1);
    expect(await lora.withAdaptersDisabled(() => maxAbsDifference(model.forward(input), base))).toBe(0);
    expect([...adapterStateSources(lora).keys()].sort()).toEqual([
      'base_model.model.lin0.lora_A.weight',
      'base_model.model.lin0.lora_B.weight',
      'base_model.model.lin1.bias',
      'base_model.model.lin1.weight',
    ]);

    const directory = await mkdtemp(join(tmpdir(), 'peft-ts-save-'));
    try {
      await saveAdapter(lora, directory);
      const fresh = new Mlp();
      fresh.loadStateDict(baseState);
      const reloaded = await loadLoraModel(fresh, directory);
      expect(maxAbsDifference(reloaded.model.forward(input), trained)).toBeLessThan(1e-5);
      const merged = await lora.mergeAndUnload();
      expect(merged.getSubmodule('lin1')).toBe(copy);
      expect(maxAbsDifference(merged.forward(input), trained)).toBeLessThan(1e-3);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
