import { defineConfig } from 'vitest/config';

// The suite Stryker runs for each mutant: the test files that exercise the decision code in-process.
export default defineConfig({
  test: {
    include: ['test/indexes.test.ts', 'test/controllerReconcile.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { METADATA_SERVER_DETECTION: 'none' },
  },
});
