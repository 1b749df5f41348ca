/**
 * A seedable 32-bit generator (mulberry32) for data order, kept apart from tfjs' random state so that shuffles
 * depend only on the seed and the epoch and can be recomputed on resume.
 */
export class SeededRandom {
  private state: number;

  /** Every value in `seeds` (e.g. the run's seed and the epoch) selects a different stream. */
  constructor(...seeds: number[]) {
    let state = 0x2545f491;
    for (const seed of seeds) state = Math.imul(state ^ (seed >>> 0), 0x9e3779b1) ^ (state >>> 15);
    this.state = state >>> 0;
  }

  /** Next unsigned 32-bit value. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let value = this.state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return (value ^ (value >>> 14)) >>> 0;
  }

  /** Uniform integer in [0, bound). */
  nextInt(bound: number): number {
    return Math.floor((this.nextUint32() / 2 ** 32) * bound);
  }

  /** 0 … count−1 in a random order (Fisher–Yates). */
  permutation(count: number): number[] {
    const order = Array.from({ length: count }, (_, index) => index);
    for (let index = count - 1; index > 0; index--) {
      const other = this.nextInt(index + 1);
      [order[index], order[other]] = [order[other], order[index]];
    }
    return order;
  }
}
