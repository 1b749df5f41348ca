import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
    testTimeout: 120_000,
    // Backend start-up in beforeAll hooks outlasts the 10 s default on a loaded machine.
    hookTimeout: 120_000,
  },
});
