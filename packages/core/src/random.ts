/**
 * A seedable stream of seeds for tfjs' random ops, so initialisation and dropout are reproducible
 * run to run (`manualSeed(42)` plays the role of `torch.manual_seed`).
 */
let state = 0x9e3779b9;

export function manualSeed(seed: number): void {
  state = seed >>> 0;
}

/** Next 32-bit seed (mulberry32 step). */
export function nextSeed(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let value = state;
  value = Math.imul(value ^ (value >>> 15), value | 1);
  value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
  return (value ^ (value >>> 14)) >>> 0;
}

/** The generator's position, to replay the same seeds later (gradient checkpointing, resume). */
export function randomState(): number {
  return state;
}

export function setRandomState(value: number): void {
  state = value >>> 0;
}
