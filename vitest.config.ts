import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';

/**
 * The four-season file (whole seasons through Phases 1-4, about 1.5 minutes) runs in CI's own slice
 * (`npm run test:seasons`, which .ci/run calls after `npm test`), so that `npm test` stays a suite people run
 * often.
 */
const FOUR_SEASONS = 'test/phase34Seasons.test.ts';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: process.env.BACKFILL_FOUR_SEASONS ? configDefaults.exclude : [...configDefaults.exclude, FOUR_SEASONS],
    // Tests that load whole seasons into DuckDB take seconds each on a 2-core machine.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // At least two test files at a time (vitest's default, one fewer than the cores, is one on a 2-core machine):
    // most files spend much of their time waiting for a `backfill` child process, and files run side by side
    // safely (temp folders, loopback ports, a Pub/Sub project each, a build lock).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    env: { METADATA_SERVER_DETECTION: 'none' },
  },
});
