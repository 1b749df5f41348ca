/**
 * max |v| over each run of `blocksize` consecutive values (the last run may be shorter).
 * NaN is skipped, as the CUDA kernel's `fmaxf` does.
 */
export function blockwiseAbsmax(values: Float32Array, blocksize: number): Float32Array {
  const absmax = new Float32Array(Math.ceil(values.length / blocksize));
  for (let block = 0; block < absmax.length; block++) {
    const end = Math.min(values.length, (block + 1) * blocksize);
    let max = 0;
    for (let index = block * blocksize; index < end; index++) {
      const magnitude = Math.abs(values[index]);
      if (magnitude > max) max = magnitude;
    }
    absmax[block] = max;
  }
  return absmax;
}
