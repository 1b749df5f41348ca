import type { QuantizedWeightFormat } from './quantized-weight-bytes.js';

/**
 * Parameters PEFT 0.10's `get_nb_trainable_parameters` counts for a bitsandbytes weight of `shape`: an `Int8Params`
 * its numel; a `Params4bit` (uint8 storage) its numel, the ⌈n/2⌉ bytes `quantize_4bit` packs, times 2, so an odd n
 * counts n + 1. The quantization statistics (absmax, nested absmax, SCB) are not parameters there.
 */
export function quantizedParameterCount(shape: readonly number[], kind: QuantizedWeightFormat['kind']): number {
  const values = shape.reduce((product, size) => product * size, 1);
  return kind === 'int8' ? values : 2 * Math.ceil(values / 2);
}
