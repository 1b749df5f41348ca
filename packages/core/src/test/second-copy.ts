import * as config from '@peft-ts/config';
import { vi } from 'vitest';

/**
 * Evaluates the peft-ts packages `load` imports a second time, as when an application ends up with two installed
 * copies of them (lora resolved against one copy of @peft-ts/core, the user's model built with another): every class
 * they define is a distinct object from the one the test imported statically, while @peft-ts/config and tfjs-core
 * stay shared, as a package manager dedupes them. It resets vitest's module registry, so it suits tests that import
 * everything else statically: `const copy = await importAsSecondCopy(() => import('@peft-ts/core'))`.
 */
export async function importAsSecondCopy<T>(load: () => Promise<T>): Promise<T> {
  vi.resetModules();
  // config registers its zod schemas under global ids, which a second evaluation would register again and throw.
  vi.doMock('@peft-ts/config', () => config);
  try {
    return await load();
  } finally {
    vi.doUnmock('@peft-ts/config');
  }
}
