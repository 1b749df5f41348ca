import { NonFiniteTensorError } from './errors.js';

/** What a loader does about NaN/±Inf in stored weights: warn (the default), or refuse with `strict`. */
export type FiniteCheck = {
  /** Throw a NonFiniteTensorError instead of warning. */
  readonly strict?: boolean;
  /** Receives the warning; defaults to console.warn. */
  readonly onWarning?: (message: string) => void;
};

/** How many values are NaN or ±Inf: one pass, `x − x` is 0 exactly for finite numbers. */
export function countNonFinite(values: ArrayLike<number>): number {
  let count = 0;
  for (let index = 0; index < values.length; index++) {
    const value = values[index];
    if (value - value !== 0) count += 1;
  }
  return count;
}

/**
 * Checks a tensor's values as they were read from `file`: a weight full of NaN would otherwise load silently and
 * only show up as a NaN loss or garbage output much later.
 */
export function checkFiniteValues(values: ArrayLike<number>, where: { file: string; tensor: string }, check: FiniteCheck = {}): void {
  const count = countNonFinite(values);
  if (count === 0) return;
  const message = `${where.file}: tensor ${JSON.stringify(where.tensor)}: ${count} of ${values.length} values are NaN or ±Inf`;
  if (check.strict) throw new NonFiniteTensorError(message);
  (check.onWarning ?? console.warn)(message);
}
