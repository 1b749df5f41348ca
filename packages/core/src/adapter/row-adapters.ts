import * as tf from '@tensorflow/tfjs-core';
import { PeftError, UnknownAdapterError } from '../errors.js';
import type { Module } from '../module.js';

/** The row name that leaves a row of a mixed batch on the base model (PEFT's `"__base__"`). */
export const BASE_MODEL_ROW = '__base__';

/** What a model's forward input takes to route each batch row through its own adapter. */
export type RowAdapterInput = {
  /**
   * One adapter name per batch row, `__base__` for none (PEFT's `adapter_names`, a mixed batch); inference only.
   * Absent or null: every row uses the active adapters.
   */
  readonly adapterNames?: readonly string[] | null;
};

/** The per-row adapter names of the forward pass running now, as adapter layers see them. */
export type RowAdapterRouting = {
  readonly names: readonly string[];
  /** An adapter layer says which adapters it holds; a name no layer holds is an error once the pass ends. */
  recognize(adapterNames: readonly string[]): void;
};

let current: RowAdapterRouting | undefined;

/** The routing of the forward pass running now, or undefined when none was asked for. */
export function currentRowAdapters(): RowAdapterRouting | undefined {
  return current;
}

/** PEFT's checks on `adapter_names`: eval mode only, one name per row. */
export function checkRowAdapters(model: Module, adapterNames: readonly string[], batchSize: number): void {
  if (model.training) {
    throw new PeftError('Cannot pass `adapterNames` when the model is in training mode; call model.eval() first');
  }
  if (adapterNames.length !== batchSize) {
    throw new PeftError(
      `Length of \`adapterNames\` should be the same as the number of inputs, but got ${adapterNames.length} and ${batchSize} respectively`,
    );
  }
}

/**
 * Runs a model's forward with each batch row routed to its own adapter. A model calls this around its forward
 * when its input carries `adapterNames`; the adapter layers the pass reaches read the names through
 * `currentRowAdapters()` (PEFT injects them as a keyword argument with forward pre-hooks). Models import no
 * adapter code, and layers keep their `forward(input)` signature. The body runs in a tidy, so an error (an
 * adapter name no layer holds, found once the pass ends) frees what it computed.
 */
export function withRowAdapters<T extends tf.TensorContainer>(
  model: Module,
  adapterNames: readonly string[] | null | undefined,
  batchSize: number,
  body: () => T,
): T {
  if (adapterNames === null || adapterNames === undefined) return body();
  checkRowAdapters(model, adapterNames, batchSize);
  const recognized = new Set<string>([BASE_MODEL_ROW]);
  const outer = current;
  current = {
    names: [...adapterNames],
    recognize: (names) => {
      for (const name of names) recognized.add(name);
    },
  };
  try {
    return tf.tidy(() => {
      const result = body();
      const unknown = [...new Set(adapterNames)].filter((name) => !recognized.has(name));
      if (unknown.length) {
        throw new UnknownAdapterError(
          `adapterNames: no adapter layer holds ${unknown.map((name) => `'${name}'`).join(', ')} (use '${BASE_MODEL_ROW}' for the base model)`,
        );
      }
      return result;
    });
  } finally {
    current = outer;
  }
}
