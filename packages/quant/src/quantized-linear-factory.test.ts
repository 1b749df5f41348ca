import * as tf from '@tensorflow/tfjs-core';
import { createBitsAndBytesConfig, type BitsAndBytesConfigInput } from '@peft-ts/config';
import { initBackend } from '@peft-ts/core/backend';
import { beforeAll, describe, expect, it } from 'vitest';
import { Linear4bit } from './linear-4bit.js';
import { Linear8bitLt } from './linear-8bit-lt.js';
import { quantizedLinearFactory, type QuantizableLinear } from './quantized-linear-factory.js';

describe('quantizedLinearFactory', () => {
  beforeAll(() => initBackend('cpu'));

  const weight = () => tf.randomUniform([8, 64], -1, 1, 'float32', 1) as tf.Tensor2D;
  const context = (key: string): QuantizableLinear => ({ key, weight: weight(), inFeatures: 64, outFeatures: 8 });
  const factory = (input: BitsAndBytesConfigInput) => quantizedLinearFactory(createBitsAndBytesConfig(input), { onWarning: () => {} });

  it('builds 4-bit layers with the config\'s quant type and double quant', () => {
    const layer = factory({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true })(context('model.layers.0.mlp.up_proj'));
    expect(layer).toBeInstanceOf(Linear4bit);
    expect([(layer as Linear4bit).quantType, (layer as Linear4bit).doubleQuantized]).toEqual(['nf4', true]);
    const plain = factory({ loadIn4bit: true })(context('model.layers.0.mlp.up_proj')) as Linear4bit;
    expect([plain.quantType, plain.doubleQuantized]).toEqual(['fp4', false]);
  });

  it('builds 8-bit layers with llm_int8_threshold and keeps a bias', () => {
    const bias = tf.ones([8]);
    const layer = factory({ loadIn8bit: true, llmInt8Threshold: 4 })({ ...context('encoder.dense'), bias });
    expect(layer).toBeInstanceOf(Linear8bitLt);
    expect((layer as Linear8bitLt).threshold).toBe(4);
    expect(Array.from(layer!.bias!.value.dataSync())).toEqual(Array(8).fill(1));
  });

  it('leaves lm_head in float by default; an explicit skip list replaces that default, matching whole segments', () => {
    const defaults = factory({ loadIn4bit: true });
    expect(defaults(context('lm_head'))).toBeUndefined();
    const skipping = factory({ loadIn8bit: true, llmInt8SkipModules: ['mlp', 'layers.1.self_attn'] });
    expect(skipping(context('model.layers.0.mlp.gate_proj'))).toBeUndefined();
    expect(skipping(context('model.layers.1.self_attn.q_proj'))).toBeUndefined();
    expect(skipping(context('model.layers.10.self_attn.q_proj'))).toBeInstanceOf(Linear8bitLt);
    expect(skipping(context('lm_head'))).toBeInstanceOf(Linear8bitLt);
  });

  it('says once that a bf16/fp16 compute dtype computes in float32', () => {
    const warnings: string[] = [];
    const create = quantizedLinearFactory(createBitsAndBytesConfig({ loadIn4bit: true, bnb4bitComputeDtype: 'bfloat16' }), {
      onWarning: (message) => warnings.push(message),
    });
    create(context('a.q_proj'));
    create(context('a.k_proj'));
    expect(warnings).toEqual(["BitsAndBytesConfig.bnb4bitComputeDtype 'bfloat16': 4-bit layers compute in float32 (tfjs has no bfloat16 kernels)"]);
  });

  it('rejects configs it cannot honour, and weights that do not fit', () => {
    expect(() => factory({})).toThrow(/neither loadIn4bit nor loadIn8bit/);
    expect(() => quantizedLinearFactory({ ...createBitsAndBytesConfig({ loadIn4bit: true }), loadIn8bit: true })).toThrow(/both true/);
    expect(() => factory({ loadIn8bit: true, llmInt8HasFp16Weight: true })).toThrow(/llmInt8HasFp16Weight/);
    expect(() => factory({ loadIn4bit: true })({ ...context('x.q_proj'), inFeatures: 32 })).toThrow(/x.q_proj: expected a weight \[8, 32\], got \[8,64\]/);
  });
});
