import * as tf from '@tensorflow/tfjs-core';
import { PeftError, type StoredLayerTensors } from '@peft-ts/core';
import type { SafetensorsTensor } from '@peft-ts/core/safetensors';
import { describeWithBackends } from '@peft-ts/core/test';
import { expect, it } from 'vitest';
import { bnbCheckpointLinear } from './bnb-checkpoint-linear.js';
import { quantStateKey } from './bnb-state-dict.js';
import { DYNAMIC_MAP } from './dynamic-map.js';
import { Linear4bit } from './linear-4bit.js';
import { Linear8bitLt } from './linear-8bit-lt.js';
import type { QuantType } from './quant-state.js';
import { quantFixtures } from './test/index.js';

const fixtures = quantFixtures();
const [rows, columns] = [64, 128];

/** transformers' saved BitsAndBytesConfig (to_dict, as in config.json). */
const savedConfig = (overrides: Record<string, unknown>) => ({
  quant_method: 'bitsandbytes',
  _load_in_4bit: false,
  _load_in_8bit: false,
  load_in_4bit: false,
  load_in_8bit: false,
  llm_int8_threshold: 6.0,
  llm_int8_skip_modules: null,
  llm_int8_enable_fp32_cpu_offload: false,
  llm_int8_has_fp16_weight: false,
  bnb_4bit_quant_type: 'fp4',
  bnb_4bit_use_double_quant: false,
  bnb_4bit_compute_dtype: 'float32',
  bnb_4bit_quant_storage: 'uint8',
  ...overrides,
});

/** A double-quantized 4-bit layer's tensors as bnb 0.43 saves them, from the real bitsandbytes fixture codes. */
function fourBitTensors(quantType: QuantType): Map<string, SafetensorsTensor> {
  const packed = fixtures.uint8(`${quantType}_packed`);
  const nested = fixtures.float32(`${quantType}_dq_state2_absmax`);
  const blob = fixtures.uint8(`${quantType}_dq_quant_state_packed`);
  return new Map<string, SafetensorsTensor>([
    ['weight', { dtype: 'U8', shape: [packed.length, 1], data: packed }],
    ['weight.absmax', { dtype: 'U8', shape: [128], data: fixtures.uint8(`${quantType}_dq_absmax_q8`) }],
    ['weight.quant_map', { dtype: 'F32', shape: [16], data: fixtures.float32(`${quantType}_code`) }],
    ['weight.nested_absmax', { dtype: 'F32', shape: [nested.length], data: nested }],
    ['weight.nested_quant_map', { dtype: 'F32', shape: [256], data: fixtures.float32('dynamic_code_8bit') }],
    [quantStateKey(quantType), { dtype: 'U8', shape: [blob.length], data: blob }],
  ]);
}

function eightBitTensors(): Map<string, SafetensorsTensor> {
  return new Map<string, SafetensorsTensor>([
    ['weight', { dtype: 'I8', shape: [rows, columns], data: fixtures.int8('int8_q') }],
    ['SCB', { dtype: 'F32', shape: [rows], data: fixtures.float32('int8_row_stats') }],
    ['weight_format', { dtype: 'U8', shape: [], data: Uint8Array.of(0) }],
  ]);
}

const stored = (tensors: Map<string, SafetensorsTensor>, quantizationConfig: unknown): StoredLayerTensors => ({
  key: 'model.layers.0.mlp.down_proj',
  inFeatures: columns,
  outFeatures: rows,
  tensors,
  quantizationConfig,
  source: 'checkpoint/model.safetensors',
});

/** Tensors compared by dtype, shape and bytes. */
function expectSameTensors(actual: Map<string, SafetensorsTensor>, expected: Map<string, SafetensorsTensor>): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, tensor] of expected) {
    const written = actual.get(name)!;
    const bytes = (data: ArrayBufferView) => [...new Uint8Array(data.buffer, data.byteOffset, data.byteLength)];
    expect([name, written.dtype, written.shape, bytes(written.data)]).toEqual([name, tensor.dtype, tensor.shape, bytes(tensor.data)]);
  }
}

it('the nested quant map of the fixture is the dynamic map the layers compute with', () => {
  expect([...fixtures.float32('dynamic_code_8bit')]).toEqual([...DYNAMIC_MAP]);
});

describeWithBackends('bitsandbytes checkpoint layers', () => {
  for (const quantType of ['nf4', 'fp4'] as const) {
    it(`${quantType}: a stored 4-bit layer keeps the stored codes, dequantizes as bnb, and saves the same tensors`, async () => {
      const tensors = fourBitTensors(quantType);
      const layer = bnbCheckpointLinear(stored(tensors, savedConfig({ load_in_4bit: true, _load_in_4bit: true, bnb_4bit_quant_type: quantType })));
      expect(layer).toBeInstanceOf(Linear4bit);
      const weight = layer.weightAccess.getBaseWeight();
      expect([...weight.dataSync()]).toEqual([...fixtures.float32(`${quantType}_dq_dequant`)]);
      weight.dispose();
      expectSameTensors(await (layer as Linear4bit).checkpointTensors(), tensors);
      layer.dispose();
    });
  }

  it('a stored 8-bit layer keeps the codes and SCB, dequantizes as bnb, and saves the same tensors', async () => {
    const tensors = eightBitTensors();
    const layer = bnbCheckpointLinear(stored(tensors, savedConfig({ load_in_8bit: true, _load_in_8bit: true, llm_int8_threshold: 3.5 })));
    expect(layer).toBeInstanceOf(Linear8bitLt);
    expect((layer as Linear8bitLt).threshold).toBe(3.5);
    const weight = layer.weightAccess.getBaseWeight();
    expect([...weight.dataSync()]).toEqual([...fixtures.float32('int8_dequant')]);
    weight.dispose();
    expectSameTensors(await (layer as Linear8bitLt).checkpointTensors(), tensors);
    layer.dispose();
  });

  it('names the layer and the tensor when the stored form is not what bitsandbytes writes', () => {
    const config4 = savedConfig({ load_in_4bit: true, bnb_4bit_quant_type: 'nf4' });
    const fail = (tensors: Map<string, SafetensorsTensor>, config: unknown = config4) => () => bnbCheckpointLinear(stored(tensors, config));
    const missing = fourBitTensors('nf4');
    missing.delete('weight.nested_absmax');
    expect(fail(missing)).toThrow(PeftError);
    expect(fail(missing)).toThrow('checkpoint/model.safetensors: model.layers.0.mlp.down_proj: missing weight.nested_absmax');
    const halfStorage = fourBitTensors('nf4');
    halfStorage.set('weight', { dtype: 'BF16', shape: [2048, 1], data: new Float32Array(2048) });
    expect(fail(halfStorage)).toThrow('bnb_4bit_quant_storage other than uint8');
    const customMap = fourBitTensors('nf4');
    customMap.set('weight.quant_map', { dtype: 'F32', shape: [16], data: fixtures.float32('fp4_code') });
    expect(fail(customMap)).toThrow("weight.quant_map: differs from bitsandbytes' table");
    expect(fail(fourBitTensors('nf4'), savedConfig({ load_in_8bit: true }))).toThrow('load_in_4bit is not true');
    expect(fail(fourBitTensors('nf4'), savedConfig({ load_in_4bit: true, quant_method: 'gptq' }))).toThrow('only "bitsandbytes" is supported');
    const tiled = eightBitTensors();
    tiled.set('weight_format', { dtype: 'U8', shape: [], data: Uint8Array.of(2) });
    expect(fail(tiled, savedConfig({ load_in_8bit: true }))).toThrow('weight_format: col_turing (a GPU tile layout) is not supported');
    const wrongShape = eightBitTensors();
    wrongShape.set('SCB', { dtype: 'F32', shape: [32], data: new Float32Array(32) });
    expect(fail(wrongShape, savedConfig({ load_in_8bit: true }))).toThrow('down_proj.SCB: expected F32 with 64 elements, got F32 [32]');
    expect(tf.memory().numTensors).toBeLessThan(1000);
  });
});
