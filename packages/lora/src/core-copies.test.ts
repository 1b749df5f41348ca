import * as tf from '@tensorflow/tfjs-core';
import { AdapterInjectionError, Linear, ModulePathError, ModulesToSaveWrapper } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { importAsSecondCopy, maxAbsDifference } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { beforeAll, describe, expect, it } from 'vitest';
import { LoraConv2d } from './lora-conv2d.js';
import { LoraEmbedding } from './lora-embedding.js';
import { LoraLinear } from './lora-linear.js';
import { LoraModel } from './lora-model.js';

describe('LoraModel over a model built with a second copy of @peft-ts/core', () => {
  beforeAll(() => initBackend('cpu'));

  async function secondCopyModel() {
    const copy = await importAsSecondCopy(() => import('@peft-ts/core'));
    /** Has `kind` 'embedding' as Embedding does, but is no Embedding. */
    class EmbeddingLookAlike extends copy.Module {
      readonly kind = 'embedding';
      forward(input: tf.Tensor): tf.Tensor {
        return input;
      }
    }
    class Net extends copy.Module {
      readonly kind = 'net';
      constructor() {
        super();
        this.registerModule('embed', new copy.Embedding(12, 6));
        this.registerModule('proj', new copy.Linear(6, 4));
        this.registerModule('conv', new copy.Conv2d(1, 2, 3));
        this.registerModule('norm', new copy.RMSNorm(6));
        this.registerModule('lookalike', new EmbeddingLookAlike());
      }
      forward(input: tf.Tensor): tf.Tensor {
        return input;
      }
    }
    return { copy, model: new Net() };
  }

  it('wraps its Linear, Embedding and Conv2d layers, which keep computing as before, and copies a module to save', async () => {
    const { copy, model } = await secondCopyModel();
    expect(copy.Linear).not.toBe(Linear);
    const embedding = model.getSubmodule('embed');
    const ids = tf.tensor2d([[0, 3, 11]], [1, 3], 'int32');
    const before = (embedding as InstanceType<typeof copy.Embedding>).forward(ids);
    new LoraModel(model, createLoraConfig({ targetModules: ['embed', 'proj', 'conv'], modulesToSave: ['norm'] }));
    const wrapped = ['embed', 'proj', 'conv'].map((path) => model.getSubmodule(path));
    expect(wrapped.map((layer) => layer.constructor)).toEqual([LoraEmbedding, LoraLinear, LoraConv2d]);
    expect((wrapped[0] as LoraEmbedding).baseLayer).toBe(embedding);
    expect(maxAbsDifference((wrapped[0] as LoraEmbedding).forward(ids), before)).toBe(0);
    expect(model.getSubmodule('norm')).toBeInstanceOf(ModulesToSaveWrapper);
  });

  it('still refuses a module that only looks like an Embedding', async () => {
    const { model } = await secondCopyModel();
    expect(() => new LoraModel(model, createLoraConfig({ targetModules: ['lookalike'] }))).toThrow(AdapterInjectionError);
  });

  it("throws errors that this copy's error classes catch", async () => {
    const { model } = await secondCopyModel();
    expect(() => model.getSubmodule('missing')).toThrow(ModulePathError);
    expect(() => model.getSubmodule('missing')).not.toThrow(AdapterInjectionError);
  });
});
