/** NF4 value of each 4-bit code (bnb `get_4bit_type('nf4')`, the `dDequantizeNF4` leaves), as fp32. */
export const NF4_CODE = Float32Array.of(
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
);

/** The fp32 literals of the CUDA `dQuantizeNF4` tree: midpoints of adjacent NF4 values, ascending. */
const THRESHOLDS = Float32Array.of(
  -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544, -0.23460740596055984,
  -0.13791173323988914, -0.045525018125772476, 0.03979014977812767, 0.1202552504837513, 0.2035212516784668,
  0.2920137718319893, 0.3893125355243683, 0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
);

/**
 * NF4 code of a value already scaled by 1/absmax: the number of thresholds strictly below it, found with
 * the same four strict `>` tests as the CUDA tree (so NaN, from an all-zero block, gives code 0).
 */
export function encodeNf4(scaled: number): number {
  let code = 0;
  for (let step = 8; step > 0; step >>= 1) {
    if (scaled > THRESHOLDS[code + step - 1]) code += step;
  }
  return code;
}
