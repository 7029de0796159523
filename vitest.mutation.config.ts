import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// The suite Stryker runs for each mutant (stryker.config.json): in-process tests only, no pod spawned. The
// tests of the gate, the defensive checks and the Phase 3-4 processors read a loaded fixture that the global
// setup builds once, unmutated, and serves (test/support/fixtureServer.ts); each runs the mutated code inside
// its cases, not in beforeAll (Stryker would count that as static coverage and run every test for it).
const FILES = [
  'test/suggest.test.ts',
  'test/streams.test.ts',
  'test/versions.test.ts',
  'test/versions.warehouse.test.ts',
  'test/decisions.pure.test.ts',
  'test/jobRules.test.ts',
  'test/report.test.ts',
  'test/indexes.test.ts',
  'test/controllerReconcile.test.ts',
  'test/boundaries.gate.test.ts',
  'test/checkData.test.ts',
  'test/phase4Rows.test.ts',
  'test/boundaries.lookbacks.test.ts',
  'test/boundaries.checks.test.ts',
  'test/validateChecks.test.ts',
];

/**
 * The files in the order above, cheapest whole file first (measured: from 20 ms for the pure cases to 13 s
 * for the validation checks): a static mutant (a module-level table) runs every file, and the run stops at
 * the first failure (a failed test, or a file that fails to load: see the reporter), so most die in the
 * first cheap file that imports their module.
 */
class ListedOrder extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => FILES.findIndex((name) => f.moduleId.endsWith(name));
    return [...files].sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    include: FILES,
    globalSetup: ['test/support/loadedSetup.ts'],
    // A file that fails to load (a static mutant breaking an import) counts as a failed test: see the reporter.
    reporters: ['default', './test/support/loadFailureReporter.ts'],
    sequence: { sequencer: ListedOrder },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { METADATA_SERVER_DETECTION: 'none' },
  },
});
