import type { SafetensorsTensor } from '@peft-ts/core/safetensors';
import { DYNAMIC_MAP } from './dynamic-map.js';
import { fourBitCode } from './four-bit-code.js';
import type { Int8Matrix } from './int8-vectorwise-quantize.js';
import type { Quantized4bit } from './quantize-4bit.js';
import { serializeQuantState } from './serialize-quant-state.js';

/** bnb's `weight_format` code of the row-major layout, the only one it writes since 0.43 (`LINEAR_8BIT_WEIGHTS_FORMAT_MAPPING`). */
export const BNB_ROW_WEIGHT_FORMAT = 0;

/** The key of the JSON quant state entry for a quant type (`QuantState.as_dict(packed=True)`). */
export const quantStateKey = (quantType: string) => `weight.quant_state.bitsandbytes__${quantType}`;

/**
 * A 4-bit layer's tensors as bnb's `Linear4bit._save_to_state_dict` writes them (names relative to the layer): the
 * packed codes as uint8 [⌈n/2⌉, 1] under `weight`, then `weight.` + each entry of `QuantState.as_dict(packed=True)`:
 * `absmax` (fp32, or the uint8 codes when double-quantized), `quant_map` (the 16 code values), with double
 * quantization `nested_absmax` and `nested_quant_map` (the 256-entry dynamic map), and the other fields as JSON
 * bytes under `quant_state.bitsandbytes__<type>`.
 */
export function linear4bitStateDict({ packed, state }: Quantized4bit): Map<string, SafetensorsTensor> {
  const tensors = new Map<string, SafetensorsTensor>([
    ['weight', { dtype: 'U8', shape: [packed.length, 1], data: packed }],
    ['weight.quant_map', { dtype: 'F32', shape: [16], data: Float32Array.from(fourBitCode(state.quantType).values) }],
  ]);
  if (state.nested) {
    tensors.set('weight.absmax', { dtype: 'U8', shape: [state.nested.codes.length], data: state.nested.codes });
    tensors.set('weight.nested_absmax', { dtype: 'F32', shape: [state.nested.absmax.length], data: state.nested.absmax });
    tensors.set('weight.nested_quant_map', { dtype: 'F32', shape: [DYNAMIC_MAP.length], data: Float32Array.from(DYNAMIC_MAP) });
  } else {
    tensors.set('weight.absmax', { dtype: 'F32', shape: [state.absmax.length], data: state.absmax });
  }
  const json = serializeQuantState(state);
  tensors.set(quantStateKey(state.quantType), { dtype: 'U8', shape: [json.length], data: json });
  return tensors;
}

/**
 * An 8-bit layer's tensors as bnb's `Linear8bitLt._save_to_state_dict` writes them with `has_fp16_weights=False`:
 * the int8 codes [out, in] under `weight`, the fp32 row absmax under `SCB`, and `weight_format`, a uint8 scalar 0
 * (row-major).
 */
export function linear8bitStateDict({ quantized, rowStats, rows, columns }: Int8Matrix): Map<string, SafetensorsTensor> {
  return new Map<string, SafetensorsTensor>([
    ['weight', { dtype: 'I8', shape: [rows, columns], data: quantized }],
    ['SCB', { dtype: 'F32', shape: [rows], data: rowStats }],
    ['weight_format', { dtype: 'U8', shape: [], data: Uint8Array.of(BNB_ROW_WEIGHT_FORMAT) }],
  ]);
}
