import { HalfEmbedding, Linear } from '@peft-ts/core';
import { markTrainableByName } from '@peft-ts/core/internal';
import { fixturePath } from '@peft-ts/core/test';
import { createBitsAndBytesConfig, createLoraConfig } from '@peft-ts/config';
import { initBackend } from '@peft-ts/core/backend';
import { LoraModel } from '@peft-ts/lora';
import { loadMistral } from '@peft-ts/model-mistral';
import { quantizedLinearFactory } from '@peft-ts/quant';
import { beforeAll, describe, expect, it } from 'vitest';
import { parameterReport } from './parameter-report.js';

describe('parameterReport', () => {
  beforeAll(() => initBackend('cpu'));

  it.each([{ loadIn4bit: true, bnb4bitUseDoubleQuant: true }, { loadIn8bit: true }, null])('counts quantized weights as their float size (%j)', async (quantization) => {
    const createLinear = quantization ? quantizedLinearFactory(createBitsAndBytesConfig(quantization)) : undefined;
    const model = await loadMistral(fixturePath('mistral', 'base_model'), { createLinear });
    new LoraModel(model, createLoraConfig({ r: 4, targetModules: ['q_proj', 'v_proj'] }));
    // 5 layers × (q: 4·(64+64) + v: 4·(64+32)) LoRA parameters over the 201,408 of the base.
    const adapter = 5 * (4 * 128 + 4 * 96);
    expect(parameterReport(model)).toMatchObject({ trainable: adapter, total: 201_408 + adapter });
    // PEFT 0.10 prints `100 * trainable_params / all_param` as Python's repr of the float.
    expect(parameterReport(model).line).toBe('trainable params: 4,480 || all params: 205,888 || trainable%: 2.175940317065589');
  });

  it('prints the percentage as Python prints a float', () => {
    const layer = new Linear(4, 3, { meta: true });
    expect(parameterReport(layer).line).toBe('trainable params: 15 || all params: 15 || trainable%: 100.0');
    markTrainableByName(layer, ['bias']);
    expect(parameterReport(layer).line).toBe('trainable params: 3 || all params: 15 || trainable%: 20.0');
    markTrainableByName(layer, []);
    expect(parameterReport(layer).line).toBe('trainable params: 0 || all params: 15 || trainable%: 0.0');
  });

  it('counts half-precision weights (a bf16 checkpoint) as their float size', async () => {
    const directory = new URL('../../demo/base-model', import.meta.url).pathname;
    const [half, widened] = [await loadMistral(directory), await loadMistral(directory, { torchDtype: 'float32' })];
    expect(half.getSubmodule('model.embed_tokens')).toBeInstanceOf(HalfEmbedding);
    // The half weights are frozen as loaded, the widened ones are not until an adapter freezes them: compare totals.
    expect(parameterReport(half).total).toBe(parameterReport(widened).total);
    half.dispose();
    widened.dispose();
  });
});
