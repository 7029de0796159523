// `backfill query` on BigQuery: the warehouse's runSql through the real client library against the local
// BigQuery double. A dry run types each query first (JobStatistics2.statementType) and anything but a read is
// refused before a job runs; with write it runs; results come with their column names, also when empty.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BigQueryWarehouse, openBigQueryWarehouse } from '../core/adapters/bigquery/warehouse.js';
import { ALL_TABLES } from '../core/adapters/index.js';
import { parseSetting } from '../core/config.js';
import { BadInputError } from '../core/errors.js';
import type { SqlOutcome } from '../core/ports/warehouse.js';
import { nbacSchedule, processorRunHistory } from '../core/schema/raw.js';
import type { Row, TableSchema } from '../core/schema/table.js';
import { BigQueryDouble, type ObservedRequest } from './support/bigqueryServer.js';

const PROJECT = 'nba-query-project';
let double: BigQueryDouble;
let w: BigQueryWarehouse;

/** Every column from its type, then the overrides. */
function rowOf(table: TableSchema, overrides: Row): Row {
  const row: Row = {};
  for (const c of table.columns) {
    row[c.name] = { STRING: 'x', INT64: 7, FLOAT64: 0.25, BOOL: true, DATE: '2021-10-19', JSON: '{"k":1}' }[
      c.type as string
    ] as Row[string];
    if (c.type === 'TIMESTAMP') row[c.name] = '2021-10-19T23:15:00.123Z';
  }
  return { ...row, ...overrides };
}

beforeAll(async () => {
  double = await BigQueryDouble.start({ project: PROJECT });
  process.env.BIGQUERY_EMULATOR_HOST = double.url;
  const target = parseSetting('warehouse', `bigquery://${PROJECT}`);
  if (target.kind !== 'bigquery') throw new Error('not a BigQuery setting');
  w = await openBigQueryWarehouse(target, { retry: { attempts: 1 } });
  await w.ensureTables(ALL_TABLES);
  await w.commit({
    replace: [
      {
        table: nbacSchedule,
        date: '2021-10-19',
        rows: [
          rowOf(nbacSchedule, { game_id: '0022100001', home_score: 127, winner_team_abbr: 'MIL' }),
          rowOf(nbacSchedule, { game_id: '0022100002', home_score: 114, winner_team_abbr: 'GSW' }),
        ],
      },
    ],
    append: [{ table: processorRunHistory, rows: [rowOf(processorRunHistory, { error_message: null })] }],
  });
});
afterAll(async () => {
  delete process.env.BIGQUERY_EMULATOR_HOST;
  await double?.close();
});
afterEach(() => {
  expect(double.violations.splice(0)).toEqual([]);
});

function result(outcome: SqlOutcome) {
  if (!outcome.ok) throw new Error(`refused: ${JSON.stringify(outcome.refused)}`);
  return outcome.result;
}

const dryRuns = (since: number): ObservedRequest[] =>
  double.requests
    .slice(since)
    .filter((r) => r.route === 'jobs' && (r.body as { configuration?: { dryRun?: boolean } }).configuration?.dryRun);

const scheduleRows = () => double.rows('nba_raw', 'nbac_schedule', 'game_id');

describe('runSql on BigQuery, read-only', () => {
  it('a SELECT is dry-run, then run: its columns in order and its values as JSON has them', async () => {
    const n = double.requests.length;
    const out = result(
      await w.runSql(
        `SELECT game_id, game_date, home_score, winner_team_abbr, started_at, error_message
           FROM nba_raw.nbac_schedule AS s
           JOIN nba_reference.processor_run_history AS h ON h.data_date = s.game_date
          ORDER BY game_id`,
        { write: false },
      ),
    );
    expect(dryRuns(n)).toHaveLength(1);
    expect(out.columns).toEqual([
      'game_id',
      'game_date',
      'home_score',
      'winner_team_abbr',
      'started_at',
      'error_message',
    ]);
    expect(out.rows).toEqual([
      ['0022100001', '2021-10-19', 127, 'MIL', '2021-10-19T23:15:00.123Z', null],
      ['0022100002', '2021-10-19', 114, 'GSW', '2021-10-19T23:15:00.123Z', null],
    ]);
  });

  it('an empty result still names its columns', async () => {
    const out = result(
      await w.runSql('SELECT game_id, home_score FROM nba_raw.nbac_schedule WHERE home_score < 0', { write: false }),
    );
    expect(out).toEqual({ columns: ['game_id', 'home_score'], rows: [] });
  });

  it.each([
    ['INSERT', "INSERT INTO nba_raw.nbac_schedule (game_id) VALUES ('0022100003')", 'INSERT'],
    ['INSERT ... SELECT', 'INSERT INTO nba_raw.nbac_schedule SELECT * FROM nba_raw.nbac_schedule', 'INSERT'],
    ['CREATE TABLE', 'CREATE TABLE nba_raw.scratch (a INT64)', 'CREATE_TABLE'],
    [
      'CREATE TABLE AS SELECT',
      'CREATE TABLE nba_raw.scratch AS SELECT game_id FROM nba_raw.nbac_schedule',
      'CREATE_TABLE_AS_SELECT',
    ],
    ['DROP TABLE', 'DROP TABLE nba_raw.nbac_schedule', 'DROP_TABLE'],
    ['DELETE', 'DELETE FROM nba_raw.nbac_schedule WHERE game_date = DATE(2021, 10, 19)', 'DELETE'],
    ['UPDATE', "UPDATE nba_raw.nbac_schedule SET winner_team_abbr = 'BKN' WHERE home_score > 0", 'UPDATE'],
    ['TRUNCATE', 'TRUNCATE TABLE nba_raw.nbac_schedule', 'TRUNCATE_TABLE'],
  ])('%s is refused by its dry-run type before any job runs', async (_name, sql, statementType) => {
    const before = await scheduleRows();
    const jobs = double.jobLog.length;
    const outcome = await w.runSql(sql, { write: false });
    expect(outcome).toEqual({ ok: false, refused: { statementType } });
    expect(double.jobLog.length).toBe(jobs);
    expect(await scheduleRows()).toEqual(before);
    expect(double.tables.has('nba_raw.scratch')).toBe(false);
  });

  it('a script is refused as SCRIPT, even when its first statement reads, and says why', async () => {
    const before = await scheduleRows();
    const outcome = await w.runSql(
      'SELECT COUNT(*) AS n FROM nba_raw.nbac_schedule; DELETE FROM nba_raw.nbac_schedule WHERE game_date = DATE(2021, 10, 19)',
      { write: false },
    );
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) {
      expect(outcome.refused.statementType).toBe('SCRIPT');
      expect(outcome.refused.detail).toMatch(/script of several statements/);
    }
    expect(await scheduleRows()).toEqual(before);
  });

  it('bad SQL fails the dry run as bad input, and nothing runs', async () => {
    const jobs = double.jobLog.length;
    await expect(w.runSql('SELEC 1', { write: false })).rejects.toBeInstanceOf(BadInputError);
    await expect(w.runSql('SELECT a FROM nba_raw.nope', { write: false })).rejects.toThrow(/Not found: Table/);
    expect(double.jobLog.length).toBe(jobs);
    // The double records what sqlglot could not parse; the real service answers it as invalidQuery, as here.
    double.violations.splice(0);
  });
});

describe('runSql on BigQuery with write', () => {
  it('runs an INSERT without a dry run and reports the rows it changed', async () => {
    const n = double.requests.length;
    const before = await scheduleRows();
    const out = result(
      await w.runSql('INSERT INTO nba_raw.nbac_schedule SELECT * FROM nba_raw.nbac_schedule', { write: true }),
    );
    expect(dryRuns(n)).toEqual([]);
    expect(out).toEqual({ columns: ['num_dml_affected_rows'], rows: [[before.length]] });
    expect(await scheduleRows()).toHaveLength(2 * before.length);
  });
});
