import { trainingBackends } from '@peft-ts/config';
import { describe, expect, it } from 'vitest';
import { backendNames } from './index.js';

describe('backendNames', () => {
  // A config may name only a backend initBackend can select, and every one it can select should be configurable.
  it("equals the training config's backend choices", () => {
    expect([...trainingBackends].sort()).toEqual([...backendNames].sort());
  });
});
