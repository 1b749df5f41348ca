import { PeftError, type LinearLike, type StoredLayerTensors } from '@peft-ts/core';
import type { SafetensorsDtype, SafetensorsTensor } from '@peft-ts/core/safetensors';
import { parseBitsAndBytesConfigObject } from '@peft-ts/config';
import { BNB_ROW_WEIGHT_FORMAT, quantStateKey } from './bnb-state-dict.js';
import { DYNAMIC_MAP } from './dynamic-map.js';
import { fourBitCode } from './four-bit-code.js';
import { Linear4bit } from './linear-4bit.js';
import { Linear8bitLt } from './linear-8bit-lt.js';
import { parseQuantState } from './parse-quant-state.js';
import type { QuantType } from './quant-state.js';

/** Keys transformers adds to a saved `BitsAndBytesConfig` that are not its constructor arguments. */
const SAVED_ONLY_KEYS = ['quant_method', '_load_in_4bit', '_load_in_8bit'];

/** bnb's `LINEAR_8BIT_WEIGHTS_FORMAT_MAPPING`, for the message about tiled layouts. */
const WEIGHT_FORMATS = ['row', 'col32', 'col_turing', 'col_ampere'];

/**
 * Builds a `Linear4bit` or `Linear8bitLt` from a layer's tensors in a checkpoint saved by transformers with
 * bitsandbytes (a "-bnb-4bit" / "-bnb-8bit" model), the stored codes taken as they are: the `loadQuantizedLinear`
 * hook of a model loader (`loadMistral(dir, { loadQuantizedLinear: bnbCheckpointLinear })`). A 4-bit layer is read
 * from `weight` (uint8 packed codes) and the `weight.*` entries of bnb's `QuantState.as_dict(packed=True)`; an
 * 8-bit one from `weight` (int8), `SCB` and `weight_format`, with `llm_int8_threshold` from the config.
 */
export function bnbCheckpointLinear(layer: StoredLayerTensors): LinearLike {
  const where = `${layer.source}: ${layer.key}`;
  const config = quantizationConfigOf(layer);
  const has = (name: string) => layer.tensors.has(name);
  const quantTypes = (['nf4', 'fp4'] as const).filter((quantType) => has(quantStateKey(quantType)));
  if (has('SCB')) {
    if (!config.loadIn8bit) throw new PeftError(`${where}: stores 8-bit codes (SCB) but quantization_config.load_in_8bit is not true`);
    return linear8bit(layer, where, config.llmInt8Threshold);
  }
  if (quantTypes.length !== 1) {
    throw new PeftError(
      `${where}: expected one of ${quantStateKey('nf4')} or ${quantStateKey('fp4')} (a bitsandbytes 4-bit layer) or SCB (8-bit), ` +
        `got ${[...layer.tensors.keys()].join(', ')}`,
    );
  }
  if (!config.loadIn4bit) throw new PeftError(`${where}: stores 4-bit codes but quantization_config.load_in_4bit is not true`);
  return linear4bit(layer, where, quantTypes[0]!);
}

function quantizationConfigOf(layer: StoredLayerTensors) {
  const stored = layer.quantizationConfig;
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) {
    throw new PeftError(`${layer.source}: config.json quantization_config must be an object, got ${JSON.stringify(stored)}`);
  }
  const fields = stored as Record<string, unknown>;
  if (fields.quant_method !== undefined && fields.quant_method !== 'bitsandbytes') {
    throw new PeftError(`${layer.source}: config.json quantization_config.quant_method is ${JSON.stringify(fields.quant_method)}; only "bitsandbytes" is supported`);
  }
  const constructorFields = Object.fromEntries(Object.entries(fields).filter(([key]) => !SAVED_ONLY_KEYS.includes(key)));
  return parseBitsAndBytesConfigObject(constructorFields);
}

function tensor(layer: StoredLayerTensors, where: string, name: string, dtype: SafetensorsDtype, count: number): SafetensorsTensor {
  const stored = layer.tensors.get(name);
  if (!stored) throw new PeftError(`${where}: missing ${name} (a bitsandbytes layer stores it)`);
  const size = stored.shape.reduce((product, dimension) => product * dimension, 1);
  if (stored.dtype !== dtype || size !== count) {
    throw new PeftError(`${where}.${name}: expected ${dtype} with ${count} elements, got ${stored.dtype} [${stored.shape.join(', ')}]`);
  }
  return stored;
}

/** The stored table must be the one the layer computes with, bit for bit (custom code tables are not supported). */
function assertTable(stored: SafetensorsTensor, expected: Float32Array, where: string, name: string): void {
  const actual = new Uint32Array((stored.data as Float32Array).buffer, (stored.data as Float32Array).byteOffset, expected.length);
  const wanted = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  if (actual.some((bits, index) => bits !== wanted[index])) throw new PeftError(`${where}.${name}: differs from bitsandbytes' table, which the layer computes with`);
}

function linear4bit(layer: StoredLayerTensors, where: string, quantType: QuantType): Linear4bit {
  const { outFeatures, inFeatures } = layer;
  const count = outFeatures * inFeatures;
  const stateBytes = layer.tensors.get(quantStateKey(quantType))!;
  if (stateBytes.dtype !== 'U8') throw new PeftError(`${where}.${quantStateKey(quantType)}: expected U8 JSON bytes, got ${stateBytes.dtype}`);
  const state = parseQuantState(stateBytes.data as Uint8Array);
  if (state.quantType !== quantType) throw new PeftError(`${where}: ${quantStateKey(quantType)} holds quant_type ${state.quantType}`);
  if (state.shape.join() !== `${outFeatures},${inFeatures}`) {
    throw new PeftError(`${where}: the quant state's shape [${state.shape.join(', ')}] is not the layer's [${outFeatures}, ${inFeatures}]`);
  }
  const stored = layer.tensors.get('weight');
  if (stored && stored.dtype !== 'U8') {
    throw new PeftError(`${where}.weight: ${stored.dtype} storage (bnb_4bit_quant_storage other than uint8) is not supported; expected U8 packed codes`);
  }
  const packed = tensor(layer, where, 'weight', 'U8', Math.ceil(count / 2)).data as Uint8Array;
  assertTable(tensor(layer, where, 'weight.quant_map', 'F32', 16), fourBitCode(quantType).values, where, 'weight.quant_map');
  const blocks = Math.ceil(count / state.blocksize);
  const fields = { quantType, blocksize: state.blocksize, shape: [outFeatures, inFeatures], dtype: state.dtype };
  if (!state.nested) {
    const absmax = tensor(layer, where, 'weight.absmax', 'F32', blocks).data as Float32Array;
    return new Linear4bit({ packed, state: { ...fields, absmax } });
  }
  assertTable(tensor(layer, where, 'weight.nested_quant_map', 'F32', DYNAMIC_MAP.length), DYNAMIC_MAP, where, 'weight.nested_quant_map');
  const codes = tensor(layer, where, 'weight.absmax', 'U8', blocks).data as Uint8Array;
  const nestedAbsmax = tensor(layer, where, 'weight.nested_absmax', 'F32', Math.ceil(blocks / state.nested.blocksize)).data as Float32Array;
  const nested = { codes, absmax: nestedAbsmax, offset: state.nested.offset, blocksize: state.nested.blocksize };
  return new Linear4bit({ packed, state: { ...fields, nested } });
}

function linear8bit(layer: StoredLayerTensors, where: string, threshold: number): Linear8bitLt {
  const { outFeatures: rows, inFeatures: columns } = layer;
  const format = layer.tensors.get('weight_format');
  if (format) {
    const code = Number(tensor(layer, where, 'weight_format', 'U8', 1).data[0]);
    if (code !== BNB_ROW_WEIGHT_FORMAT) {
      throw new PeftError(`${where}.weight_format: ${WEIGHT_FORMATS[code] ?? code} (a GPU tile layout) is not supported; save the model with bitsandbytes ≥ 0.43, which writes row-major codes`);
    }
  }
  const quantized = tensor(layer, where, 'weight', 'I8', rows * columns).data as Int8Array;
  const rowStats = tensor(layer, where, 'SCB', 'F32', rows).data as Float32Array;
  return new Linear8bitLt({ quantized, rowStats, rows, columns }, { threshold });
}
