// Stage 1's failures: each date's failure is the current job's last attempt's, a failure log that cannot be
// written is said and the failures still recorded, and a failure log of the wrong season is refused.

import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDbWarehouse } from '../core/adapters/duckdb/warehouse.js';
import type { IndexedJobStatus } from '../core/ports/jobRuntime.js';
import { type RunRecord, type RunStatus, recordRun } from '../core/runs/history.js';
import { REFERENCE_TABLES } from '../core/schema/raw.js';
import { describeFailures } from '../core/stages/stage1.js';
import { createWorkspace, ensureBuilt, REPO_ROOT, type Workspace } from './support/workspace.js';

const JOB = 'backfill-stage1-2021-22-new';
const DATES = ['2021-11-01', '2021-11-02'];

/** A run of a processor on a date, finished `second` seconds into the hour. */
function run(
  processor: string,
  opts: { job?: string; index?: number; attempt?: number; status?: RunStatus; second: number; phase?: number },
): RunRecord {
  const at = new Date(Date.UTC(2024, 0, 1, 0, 0, opts.second));
  const status = opts.status ?? 'failed';
  return {
    runId: `${processor}-${opts.job ?? JOB}-${opts.attempt ?? 1}-${opts.second}`,
    processorName: processor,
    phase: opts.phase ?? 2,
    dataDate: DATES[opts.index ?? 0] as string,
    season: '2021-22',
    status,
    errorMessage: status === 'success' ? null : `${processor} error (job ${opts.job ?? JOB})`,
    rowsProcessed: 0,
    decision: status === 'success' ? 'processed' : status,
    attempt: opts.attempt ?? 1,
    startedAt: at,
    finishedAt: at,
    trigger: { command: 'jobs/phase2-date', stage: 'stage1', jobName: opts.job ?? JOB, jobIndex: opts.index ?? 0 },
    strictMode: false,
    details: {},
  };
}

const status: IndexedJobStatus = {
  jobName: JOB,
  completedIndexes: '1',
  failedIndexes: '0',
  succeeded: 1,
  failed: 1,
  conditions: [],
  startTime: '2024-01-01T00:00:00Z',
  completionTime: '2024-01-01T00:01:00Z',
  indexes: [{ index: 0, exitCodes: [1, 1], failures: 2, state: 'failed', reason: 'BackoffLimitExceeded', logs: 'l' }],
};

describe('describeFailures: a date is failed by a run of the current job and its last attempt', () => {
  const cases: [string, RunRecord[], string | null][] = [
    [
      "an older job's failure of another processor is not taken",
      [
        run('a_scraper_of_an_old_job', { job: 'backfill-stage1-2021-22-old', phase: 1, second: 1 }),
        run('nbac_player_boxscore', { attempt: 2, second: 30 }),
      ],
      'nbac_player_boxscore',
    ],
    [
      "the last attempt's failure, not the first's",
      [run('nbac_team_boxscore', { attempt: 1, second: 10 }), run('nbac_player_boxscore', { attempt: 2, second: 20 })],
      'nbac_player_boxscore',
    ],
    [
      'a failure before a blocked run, even when the block finished first',
      [
        run('nbac_schedule', { attempt: 2, status: 'blocked', second: 5 }),
        run('nbac_gamebook_player_stats', { attempt: 2, second: 9 }),
      ],
      'nbac_gamebook_player_stats',
    ],
    [
      'the first failure of the attempt',
      [run('nbac_team_boxscore', { attempt: 2, second: 12 }), run('nbac_player_boxscore', { attempt: 2, second: 11 })],
      'nbac_player_boxscore',
    ],
    [
      "another index's failure of the same job is not taken",
      [run('nbac_team_boxscore', { index: 1, attempt: 2, second: 3 })],
      null,
    ],
    [
      'a last attempt that failed no run (its pod died) takes nothing from the attempt before',
      [
        run('nbac_player_boxscore', { attempt: 1, second: 3 }),
        run('nbac_player_game_log_scraper', { attempt: 2, status: 'success', phase: 1, second: 40 }),
      ],
      null,
    ],
  ];

  it.each(cases)('%s', async (_name, runs, processor) => {
    const w = await DuckDbWarehouse.open(':memory:');
    try {
      await w.ensureTables(REFERENCE_TABLES);
      for (const r of runs) await recordRun(w, r);
      const [failed] = await describeFailures(w, JOB, status, DATES);
      expect(failed).toMatchObject({ date: '2021-11-01', index: 0, attempts: 2, processor });
      if (processor) expect(failed?.error).toBe(`${processor} error (job ${JOB})`);
      else expect(failed?.error).toBeNull();
    } finally {
      await w.close();
    }
  });
});

const fast = ['--retry-delay-ms', '0'];

describe('a failure log file that cannot be written', () => {
  let ws: Workspace;
  let out: Awaited<ReturnType<Workspace['cli']>>;
  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspace();
    cpSync(join(REPO_ROOT, 'plans'), join(ws.dir, 'plans'), { recursive: true });
    writeFileSync(join(ws.dir, 'faults.json'), JSON.stringify({ permanent: ['2021-10-20'] }));
    // A file where the failures folder should be: the failure log cannot be written, deterministically.
    mkdirSync(join(ws.dir, '.backfill', 'logs'), { recursive: true });
    writeFileSync(join(ws.dir, '.backfill', 'logs', 'failures'), 'not a folder\n');
    out = await ws.cli([
      'stage1',
      '--season',
      '2021-22',
      '--end-date',
      '2021-10-20',
      ...fast,
      '--faults',
      join(ws.dir, 'faults.json'),
    ]);
  }, 120_000);
  afterAll(() => ws?.remove());

  it('is said on stderr with its path and reason; the exit code is still 1 for the failed date', () => {
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(
      /could not write the failure log \.backfill\/logs\/failures\/nba-stage1-[^ ]+\.json: (ENOTDIR|EEXIST)/,
    );
    expect(out.stdout).toMatch(/failure log: not written .*nba_reference\.backfill_failure_log/);
    expect(out.stdout).toMatch(/1 of 2 dates loaded, 1 failed/);
  });

  it('still records the failed date in nba_reference.backfill_failure_log', async () => {
    const rows = await ws.query(
      'SELECT CAST(data_date AS STRING) AS d, processor_name, reason FROM nba_reference.backfill_failure_log',
    );
    expect(rows).toEqual([
      { d: '2021-10-20', processor_name: 'nbac_player_game_log_scraper', reason: 'BackoffLimitExceeded' },
    ]);
  });
});

describe('retry --from-log refuses a failure log of the wrong season before anything runs', () => {
  const log = (season: string, dates: string[]) => ({
    jobName: 'backfill-stage1-x',
    season,
    completedIndexes: '',
    failedIndexes: dates.map((_d, i) => i).join(','),
    failed: dates.map((date, index) => ({
      date,
      index,
      processor: null,
      error: null,
      attempts: 1,
      reason: 'BackoffLimitExceeded',
      logs: '',
    })),
  });
  const cases: [string, object, string[], RegExp][] = [
    [
      'a date after its season',
      log('2021-22', ['2021-11-02', '2022-10-20']),
      [],
      /failure log .*log\.json: 2022-10-20 is outside season 2021-22 \(2021-10-19\.\.2022-06-16\)/,
    ],
    [
      'dates before its season',
      log('2022-23', ['2021-11-02', '2021-11-03']),
      [],
      /failure log .*log\.json: 2021-11-02, 2021-11-03 are outside season 2022-23/,
    ],
    ['a season that does not exist', log('1999-00', ['1999-11-02']), [], /season "1999-00" is not one of 2021-22/],
    [
      'a log of another season than --season',
      log('2021-22', ['2021-11-02']),
      ['--season', '2022-23'],
      /--from-log .*log\.json is for season 2021-22, not 2022-23/,
    ],
  ];

  it.each(cases)('%s: exit 2, the file named, no warehouse opened', async (_name, body, flags, message) => {
    await ensureBuilt();
    const ws = createWorkspace();
    try {
      const file = join(ws.dir, 'log.json');
      writeFileSync(file, JSON.stringify(body));
      const out = await ws.cli(['retry', '--from-log', file, ...flags, ...fast]);
      expect(out.code).toBe(2);
      expect(out.stderr).toMatch(message);
      expect(out.stdout).not.toMatch(/retrying/);
      expect(existsSync(join(ws.dir, '.backfill', 'warehouse.duckdb'))).toBe(false);
    } finally {
      ws.remove();
    }
  });
});
