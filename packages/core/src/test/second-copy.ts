import { vi } from 'vitest';

/**
 * Evaluates the peft-ts packages `load` imports a second time, as when an application ends up with two installed
 * copies of them (lora resolved against one copy of @peft-ts/core, the user's model built with another): every class
 * they define, @peft-ts/config's included, is a distinct object from the one the test imported statically, while
 * tfjs-core stays shared (one backend registry). It resets vitest's module registry, so it suits tests that import
 * everything else statically: `const copy = await importAsSecondCopy(() => import('@peft-ts/core'))`.
 */
export async function importAsSecondCopy<T>(load: () => Promise<T>): Promise<T> {
  vi.resetModules();
  return load();
}
