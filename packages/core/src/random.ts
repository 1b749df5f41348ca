/**
 * Seedable randomness: a global stream of seeds for tfjs' random ops, so initialisation and
 * dropout are reproducible (`manualSeed(42)` plays the role of `torch.manual_seed`), and
 * independent generators for data order and sampling.
 */

/** One mulberry32 step: the next state and its 32-bit output. */
function mulberry32(state: number): { state: number; value: number } {
  const next = (state + 0x6d2b79f5) >>> 0;
  let value = next;
  value = Math.imul(value ^ (value >>> 15), value | 1);
  value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
  return { state: next, value: (value ^ (value >>> 14)) >>> 0 };
}

let globalState = 0x9e3779b9;

export function manualSeed(seed: number): void {
  globalState = seed >>> 0;
}

/** Next 32-bit seed of the global stream. */
export function nextSeed(): number {
  const step = mulberry32(globalState);
  globalState = step.state;
  return step.value;
}

/** The global stream's position, to replay the same seeds later (gradient checkpointing, resume). */
export function randomState(): number {
  return globalState;
}

export function setRandomState(value: number): void {
  globalState = value >>> 0;
}

/** A generator independent of the global stream (data order, sampling): same seeds, same values on every backend. */
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
    const step = mulberry32(this.state);
    this.state = step.state;
    return step.value;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 2 ** 32;
  }

  /** Uniform integer in [0, bound). */
  nextInt(bound: number): number {
    return Math.floor(this.next() * bound);
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
