import type { Module } from './module.js';

/**
 * Parameters as PEFT 0.10's `get_nb_trainable_parameters` counts them: each parameter's `logicalSize`, shared
 * tensors once (PyTorch `parameters()`). A quantized or half weight counts as the values it stands for, not its
 * packed words; quantization statistics count nothing.
 */
export type ParameterCount = {
  readonly total: number;
  readonly trainable: number;
  /** Backend bytes of all parameters, counted once: what they occupy, packed storage and statistics included. */
  readonly bytes: number;
};

/** Counts parameters of a (possibly shape-only) module tree without touching any tensor. */
export function countParameters(module: Module): ParameterCount {
  let total = 0;
  let trainable = 0;
  let bytes = 0;
  for (const [, parameter] of module.namedParameters()) {
    total += parameter.logicalSize;
    bytes += parameter.byteLength;
    if (parameter.requiresGrad) trainable += parameter.logicalSize;
  }
  return { total, trainable, bytes };
}

/** Freezes everything, then unfreezes parameters whose name contains one of `markers`. */
export function markTrainableByName(module: Module, markers: readonly string[]): void {
  for (const [name, parameter] of module.namedParameters({ includeShared: true })) {
    parameter.requiresGrad = markers.some((marker) => name.includes(marker));
  }
}
