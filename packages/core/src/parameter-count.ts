import type { Module } from './module.js';

export type ParameterCount = {
  /** Every parameter counted once, shared tensors included once (PyTorch `parameters()`). */
  readonly total: number;
  readonly trainable: number;
  /** Backend bytes of all parameters, counted once. */
  readonly bytes: number;
};

/** Counts parameters of a (possibly shape-only) module tree without touching any tensor. */
export function countParameters(module: Module): ParameterCount {
  let total = 0;
  let trainable = 0;
  let bytes = 0;
  for (const [, parameter] of module.namedParameters()) {
    total += parameter.size;
    bytes += parameter.byteLength;
    if (parameter.requiresGrad) trainable += parameter.size;
  }
  return { total, trainable, bytes };
}

/** Freezes everything, then unfreezes parameters whose name contains one of `markers`. */
export function markTrainableByName(module: Module, markers: readonly string[]): void {
  for (const [name, parameter] of module.namedParameters({ includeShared: true })) {
    parameter.requiresGrad = markers.some((marker) => name.includes(marker));
  }
}
