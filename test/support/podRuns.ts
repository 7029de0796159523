// The test pod (test/fixtures/pod.mjs) and the table it writes one row to per attempt, for job runtime tests.

import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TableSchema } from '../../core/schema/table.js';

export const POD = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'fixtures', 'pod.mjs');

/** The table test/fixtures/pod.mjs writes one row to per attempt (its own copy of this schema must agree). */
export const podRuns: TableSchema = {
  dataset: 'nba_test',
  name: 'pod_runs',
  description: 'attempts of the test pod',
  columns: [
    { name: 'idx', type: 'INT64', description: 'JOB_COMPLETION_INDEX' },
    { name: 'attempt', type: 'INT64', description: 'attempt number, from 1' },
  ],
  partitionColumn: 'idx',
  key: ['idx', 'attempt'],
  clusterBy: [],
};
