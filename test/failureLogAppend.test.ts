// The failure log is appended once per (job, index): a report written again adds nothing, a new index of the
// same job or another job's rows are added.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DuckDbWarehouse } from '../core/adapters/duckdb/warehouse.js';
import { backfillFailureLog } from '../core/schema/raw.js';
import type { FailureLogEntry } from '../core/stages/failureLog.js';
import { appendFailureLog, failureLogRows } from '../core/stages/stage1.js';

const entry = (date: string, index: number): FailureLogEntry =>
  ({
    date,
    index,
    processor: 'nbac_player_boxscore',
    error: 'boom',
    attempts: 2,
    exitCodes: [1, 1],
    reason: 'BackoffLimitExceeded',
    logs: 'kubectl logs ...',
  }) as FailureLogEntry;

describe('appendFailureLog', () => {
  it('adds each (job, index) once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nba-failure-log-'));
    const w = await DuckDbWarehouse.open(join(dir, 'w.duckdb'));
    try {
      await w.ensureTables([backfillFailureLog]);
      const at = '2021-11-01T00:00:00.000Z';
      const first = failureLogRows('job-a', '2021-22', [entry('2021-10-20', 1), entry('2021-10-22', 3)], at);
      expect(await appendFailureLog(w, first)).toBe(2);
      // The same report again: nothing.
      expect(await appendFailureLog(w, first)).toBe(0);
      // A later report of the same job with one more index, and another job's row for the same date.
      expect(
        await appendFailureLog(
          w,
          failureLogRows('job-a', '2021-22', [entry('2021-10-20', 1), entry('2021-10-21', 2)], at),
        ),
      ).toBe(1);
      expect(await appendFailureLog(w, failureLogRows('job-b', '2021-22', [entry('2021-10-20', 0)], at))).toBe(1);
      expect(await appendFailureLog(w, [])).toBe(0);
      const rows = await w.query(
        'SELECT job_name, job_index, CAST(data_date AS STRING) AS d FROM nba_reference.backfill_failure_log ORDER BY job_name, job_index',
      );
      expect(rows).toEqual([
        { job_name: 'job-a', job_index: 1, d: '2021-10-20' },
        { job_name: 'job-a', job_index: 2, d: '2021-10-21' },
        { job_name: 'job-a', job_index: 3, d: '2021-10-22' },
        { job_name: 'job-b', job_index: 0, d: '2021-10-20' },
      ]);
    } finally {
      await w.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
