import { QuantError } from './errors.js';

/** Rejects blocksizes bitsandbytes has no kernel for: powers of two from 64 to 4096. */
export function assertBlocksize(blocksize: number): void {
  const powerOfTwo = Number.isInteger(blocksize) && blocksize > 0 && (blocksize & (blocksize - 1)) === 0;
  if (!powerOfTwo || blocksize < 64 || blocksize > 4096) {
    throw new QuantError(`blocksize must be a power of two from 64 to 4096, got ${blocksize}`);
  }
}
