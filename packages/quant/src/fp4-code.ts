/** Raw FP4 magnitudes of codes 0–7 (bnb `get_4bit_type('fp4')`), normalised by the largest, 12. */
const MAGNITUDES = [0, 0.0625, 8, 12, 4, 6, 2, 3];

/**
 * FP4 value of each 4-bit code as fp32 (bit 3 is the sign), as bnb's `quant_map`: its "−0" for code 8 is the
 * Python integer −0, i.e. +0, so code 8 dequantizes to +0 (the CUDA tree gives −0; the values are equal).
 */
export const FP4_CODE = Float32Array.from([...MAGNITUDES, ...MAGNITUDES.map((magnitude) => 0 - magnitude)], (raw) =>
  Math.fround(raw / 12),
);

/** The fp32 literals of the CUDA `dQuantizeFP4` tree: midpoints of the sorted magnitudes. */
const THRESHOLDS = Float32Array.of(0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333);

/** Magnitude code of each rank in ascending magnitude order (0, 1/192, 1/6, 1/4, 1/3, 1/2, 2/3, 1). */
const CODE_BY_RANK = [0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011];

/**
 * FP4 code of a value already scaled by 1/absmax, as the CUDA `dQuantizeFP4` emits it: the sign bit is set
 * iff the value is < 0 (tiny negatives give −0, code 8), and the magnitude rank is the number of thresholds
 * strictly below |value|. NaN gives code 0.
 */
export function encodeFp4(scaled: number): number {
  const magnitude = Math.abs(scaled);
  let rank = 0;
  for (let step = 4; step > 0; step >>= 1) {
    if (magnitude > THRESHOLDS[rank + step - 1]) rank += step;
  }
  return CODE_BY_RANK[rank] + (scaled < 0 ? 0b1000 : 0);
}
