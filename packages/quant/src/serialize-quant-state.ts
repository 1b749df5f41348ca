import { formatPythonFloat } from '@peft-ts/config/internal';
import type { QuantState4bit } from './quant-state.js';

/**
 * The bytes of bnb's `weight.quant_state.bitsandbytes__{nf4,fp4}` entry: UTF-8 of Python
 * `json.dumps` over the non-tensor fields of `QuantState.as_dict(packed=True)`, in its key order and with
 * its `", "` / `": "` separators. The nested fields appear only for double-quantized states.
 */
export function serializeQuantState(state: QuantState4bit): Uint8Array {
  const fields = [
    `"quant_type": ${JSON.stringify(state.quantType)}`,
    `"blocksize": ${state.blocksize}`,
    `"dtype": ${JSON.stringify(state.dtype)}`,
    `"shape": [${state.shape.join(', ')}]`,
  ];
  if (state.nested !== undefined) {
    fields.push(
      `"nested_blocksize": ${state.nested.blocksize}`,
      // The nested absmax is always fp32 in bnb.
      `"nested_dtype": "float32"`,
      `"nested_offset": ${formatPythonFloat(state.nested.offset, { allowNan: true })}`,
    );
  }
  return new TextEncoder().encode(`{${fields.join(', ')}}`);
}
