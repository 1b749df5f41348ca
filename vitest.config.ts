import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// fixturePath (@peft-ts/core/test) reads the fixture folder from here; test workers inherit the environment.
process.env.PEFT_TS_FIXTURES ??= fileURLToPath(new URL('./fixtures/peft-0.10/', import.meta.url));

export default defineConfig({
  test: {
    projects: ['packages/*/vitest.config.ts', 'packages/models/*/vitest.config.ts', 'apps/*/vitest.config.ts', 'tests/*/vitest.config.ts'],
  },
});
