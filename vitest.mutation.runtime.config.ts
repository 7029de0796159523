import { defineConfig } from 'vitest/config';

// The suite Stryker runs for each mutant of the job rules, the index lists, the reconcile and the validation
// checks (stryker.runtime.config.json): in-process tests only, no pod spawned.
export default defineConfig({
  test: {
    include: [
      'test/indexes.test.ts',
      'test/controllerReconcile.test.ts',
      'test/jobRules.test.ts',
      'test/validateChecks.test.ts',
      'test/report.test.ts',
    ],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { METADATA_SERVER_DETECTION: 'none' },
  },
});
