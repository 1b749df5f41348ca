import * as tf from '@tensorflow/tfjs-core';
import { createBitsAndBytesConfig, createLoraConfig, type BitsAndBytesConfigInput } from '@peft-ts/config';
import { countParameters } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { fixturePath } from '@peft-ts/core/test';
import { LoraModel } from '@peft-ts/lora';
import { loadMistral } from '@peft-ts/model-mistral';
import { beforeAll, describe, expect, it } from 'vitest';
import { Linear4bit } from './linear-4bit.js';
import { Linear8bitLt } from './linear-8bit-lt.js';
import { quantizedLinearFactory } from './quantized-linear-factory.js';
import { quantizedParameterCount } from './quantized-parameter-count.js';
import { seededUniform } from './test/index.js';

// Expected counts are PEFT 0.10's get_nb_trainable_parameters: `numel` per parameter, a Params4bit's (its
// (n + 1) // 2 uint8 bytes) times 2; absmax, nested absmax and SCB are quant state, not parameters.
describe('parameter counts of quantized layers, as PEFT 0.10 reports them', () => {
  beforeAll(() => initBackend('cpu'));

  it('quantizedParameterCount: Int8Params numel, Params4bit ((n + 1) // 2) · 2', () => {
    expect(quantizedParameterCount([7, 9], 'int8')).toBe(7 * 9);
    expect(quantizedParameterCount([7, 9], '4bit')).toBe(Math.floor((7 * 9 + 1) / 2) * 2);
    expect(quantizedParameterCount([64, 128], '4bit')).toBe(64 * 128);
  });

  it.each([
    { quantType: 'nf4', compressStatistics: false },
    { quantType: 'nf4', compressStatistics: true },
    { quantType: 'fp4', compressStatistics: false },
    { quantType: 'fp4', compressStatistics: true },
  ] as const)('Linear4bit [7, 9] $quantType (double quant $compressStatistics): 64 weight + 7 bias parameters', (variant) => {
    const [weight, bias] = [tf.tensor2d(seededUniform(7 * 9, 5), [7, 9]), tf.zeros([7])];
    const layer = Linear4bit.fromWeight(weight, { ...variant, bias });
    // n = 63: (63 + 1) // 2 = 32 packed bytes, counted 32 · 2 = 64; the bias is a plain (trainable) parameter.
    const { total, trainable, bytes } = countParameters(layer);
    expect([total, trainable]).toEqual([32 * 2 + 7, 7]);
    // Bytes stay what is stored: 32 code bytes in 8 int32 words, the one block's absmax (fp32, or one 8-bit code
    // in a word plus one fp32 nested absmax), the fp32 bias.
    expect(bytes).toBe(8 * 4 + (variant.compressStatistics ? 4 + 4 : 4) + 7 * 4);
    expect(countParameters(layer.cloneSharingParameters()).total).toBe(total);
    tf.dispose([weight, bias]);
    layer.dispose();
  });

  it('Linear8bitLt [7, 9]: 63 weight + 7 bias parameters, SCB none', () => {
    const [weight, bias] = [tf.tensor2d(seededUniform(7 * 9, 6), [7, 9]), tf.zeros([7])];
    const layer = Linear8bitLt.fromWeight(weight, { bias });
    const { total, trainable, bytes } = countParameters(layer);
    expect([total, trainable]).toEqual([7 * 9 + 7, 7]);
    // 63 codes in 16 int32 words, 7 fp32 SCB, 7 fp32 bias.
    expect(bytes).toBe(16 * 4 + 7 * 4 + 7 * 4);
    tf.dispose([weight, bias]);
    layer.dispose();
  });

  it.each([{ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }, { loadIn8bit: true }, null] as const)(
    'QLoRA on the tiny Mistral (%j): the float model\'s counts',
    async (quantization: BitsAndBytesConfigInput | null) => {
      const createLinear = quantization ? quantizedLinearFactory(createBitsAndBytesConfig(quantization), { onWarning: () => {} }) : undefined;
      const model = await loadMistral(fixturePath('mistral', 'base_model'), { createLinear });
      new LoraModel(model, createLoraConfig({ r: 4, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }));
      // hidden 64, intermediate 128, 4 heads of 16, 2 KV heads (k, v: 32), 5 layers, vocab 128, lm_head untied in float.
      const linears = 64 * 64 + 2 * (32 * 64) + 64 * 64 + 3 * (128 * 64);
      const base = 5 * (linears + 2 * 64) + 128 * 64 + 128 * 64 + 64;
      expect(base).toBe(201_408);
      // r · (in + out) per adapted linear: q, k, v, o, gate, up, down.
      const adapter = 5 * 4 * ((64 + 64) + 2 * (64 + 32) + (64 + 64) + 2 * (64 + 128) + (128 + 64));
      expect(countParameters(model)).toMatchObject({ trainable: adapter, total: base + adapter });
      expect([adapter, base + adapter]).toEqual([20_480, 221_888]);
      model.dispose();
    },
  );
});
