import { torchLinspaceFloat32 } from './torch-linspace.js';

/**
 * bnb `create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)`: for exponents i = 0..6 the
 * 2^i midpoints of `linspace(0.1, 1, 2^i + 1)` times 10^(i−6), with their negatives, plus 0 and 1, sorted:
 * 256 fp32 values, index 127 is 0. All arithmetic is fp32 as torch does it.
 */
export function createDynamicMap(): Float32Array {
  const values = [0, 1];
  for (let exponent = 0; exponent < 7; exponent++) {
    const boundaries = torchLinspaceFloat32(0.1, 1, 2 ** exponent + 1);
    // Parsing the literal gives the correctly rounded power of ten Python uses; Math.pow need not.
    const scale = Math.fround(Number(`1e${exponent - 6}`));
    for (let index = 0; index + 1 < boundaries.length; index++) {
      const midpoint = Math.fround(boundaries[index] + boundaries[index + 1]) / 2;
      const value = Math.fround(scale * midpoint);
      values.push(value, -value);
    }
  }
  return Float32Array.from(values.sort((a, b) => a - b));
}

/** The signed dynamic map, built once; shared, so callers must not write to it. */
export const DYNAMIC_MAP = createDynamicMap();
