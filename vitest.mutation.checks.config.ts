import { defineConfig } from 'vitest/config';

// The suite Stryker runs for the gate, the defensive checks and the Phase 3-4 processors: in-process tests
// on a shared loaded fixture (built once, unmutated, by the global setup), each running the mutated code
// inside its cases, not in beforeAll (Stryker would count that as static coverage and run every test).
export default defineConfig({
  test: {
    include: ['test/boundaries.checks.test.ts', 'test/boundaries.gate.test.ts', 'test/boundaries.lookbacks.test.ts'],
    globalSetup: ['test/support/loadedSetup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { METADATA_SERVER_DETECTION: 'none' },
  },
});
