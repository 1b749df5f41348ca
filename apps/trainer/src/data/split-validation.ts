import { DataFormatError } from './data-format-error.js';
import { SeededRandom } from '@peft-ts/core';

/** Salt that keeps the split's stream apart from the epoch shuffles drawn from the same seed. */
const splitStream = 0x5eed_5911;

/**
 * Holds out ceil(fraction·n) items chosen by a seeded shuffle (as datasets' train_test_split sizes its test set);
 * both parts keep file order. The same items, seed and fraction always give the same split.
 */
export function splitValidation<T>(
  items: readonly T[],
  fraction: number,
  seed: number,
  source = 'data',
): { training: T[]; validation: T[] } {
  if (fraction === 0) return { training: [...items], validation: [] };
  const validationCount = Math.ceil(fraction * items.length);
  if (validationCount >= items.length) {
    throw new DataFormatError(
      `${source}: validation_split ${fraction} of ${items.length} examples leaves none for training`,
    );
  }
  const held = new Set(new SeededRandom(seed, splitStream).permutation(items.length).slice(0, validationCount));
  return {
    training: items.filter((_, index) => !held.has(index)),
    validation: items.filter((_, index) => held.has(index)),
  };
}
