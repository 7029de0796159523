// The BigQuery warehouse through the real client library against the local BigQuery double: creation,
// parameterized queries, the per-date replace as one transaction, retries of transient errors only, the
// per-table serialization of mutations, large commits staged in chunks, and every statement parsed by
// sqlglot's BigQuery dialect.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BigQueryNames,
  type BigQueryWarehouse,
  type BigQueryWarehouseOptions,
  commitStatement,
  openBigQueryWarehouse,
  stagingStatement,
} from '../core/adapters/bigquery/warehouse.js';
import { ALL_TABLES } from '../core/adapters/index.js';
import { type BigQueryTarget, parseSetting } from '../core/config.js';
import { BadInputError, ProcessingError } from '../core/errors.js';
import { nbacPlayerBoxscore, nbacSchedule, processorRunHistory } from '../core/schema/raw.js';
import type { Row, TableSchema } from '../core/schema/table.js';
import { BigQueryDouble, type ObservedRequest } from './support/bigqueryServer.js';
import { Sqlglot } from './support/sqlglot.js';

const PROJECT = 'nba-test-project';
let double: BigQueryDouble;

beforeAll(async () => {
  double = await BigQueryDouble.start({ project: PROJECT, pageRows: 50 });
  process.env.BIGQUERY_EMULATOR_HOST = double.url;
});
afterAll(async () => {
  delete process.env.BIGQUERY_EMULATOR_HOST;
  await double.close();
});
beforeEach(() => {
  sleeps = [];
});
afterEach(() => {
  double.clearFaults();
  double.queryDelayMs = 0;
  // Nothing the adapter sent may be something the real API refuses or that breaks its contract.
  const violations = double.violations.splice(0);
  expect(violations).toEqual([]);
});

function bigQueryTarget(url: string): BigQueryTarget {
  const target = parseSetting('warehouse', url);
  if (target.kind !== 'bigquery') throw new Error(`${url} is not a BigQuery warehouse`);
  return target;
}

/** Waits the adapter asked for, instead of sleeping them. */
let sleeps: number[] = [];

async function open(query: string, options: BigQueryWarehouseOptions = {}): Promise<BigQueryWarehouse> {
  sleeps = [];
  return openBigQueryWarehouse(bigQueryTarget(`bigquery://${PROJECT}?${query}`), {
    retry: { baseDelayMs: 100, maxDelayMs: 1000 },
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    ...options,
  });
}

/** A valid row of a table: every column set from its type, then the overrides. */
function rowOf(table: TableSchema, overrides: Row): Row {
  const row: Row = {};
  for (const c of table.columns) {
    row[c.name] =
      c.type === 'STRING'
        ? `${c.name}-value`
        : c.type === 'INT64'
          ? 7
          : c.type === 'FLOAT64'
            ? 0.25
            : c.type === 'BOOL'
              ? true
              : c.type === 'DATE'
                ? '2021-10-19'
                : c.type === 'TIMESTAMP'
                  ? '2021-10-19T23:15:00.123Z'
                  : '{"k":1}';
  }
  return { ...row, ...overrides };
}

const game = (date: string, id: string, extra: Row = {}) =>
  rowOf(nbacSchedule, { game_date: date, game_id: id, season: '2021-22', game_status: 'Final', ...extra });

const run = (id: string, date: string, extra: Row = {}) =>
  rowOf(processorRunHistory, {
    run_id: id,
    data_date: date,
    error_message: null,
    job_name: null,
    job_index: null,
    details: '{"rows":2}',
    ...extra,
  });

const queriesSince = (n: number): ObservedRequest[] =>
  double.requests.slice(n).filter((r) => r.method === 'POST' && r.route === 'queries');
/** Load jobs sent since request `n` (the client's multipart uploads). */
const uploadsSince = (n: number): ObservedRequest[] => double.requests.slice(n).filter((r) => r.upload !== undefined);
const isUpload = (r: ObservedRequest) => r.upload !== undefined;
const loadOf = (r: ObservedRequest | undefined) =>
  (
    (r as ObservedRequest).body as {
      configuration: { load: { destinationTable: { tableId: string }; writeDisposition: string } };
    }
  ).configuration.load;

function bodyOf(r: ObservedRequest | undefined): {
  query: string;
  queryParameters?: { name: string; parameterType: { type: string; arrayType?: unknown }; parameterValue: unknown }[];
  location?: string;
  useLegacySql?: boolean;
} {
  return r?.body as never;
}

describe('the warehouse URL', () => {
  it('reads the project, the location and the dataset prefix, with US and no prefix by default', () => {
    expect(parseSetting('warehouse', 'bigquery://my-project-1')).toEqual({
      kind: 'bigquery',
      url: 'bigquery://my-project-1',
      project: 'my-project-1',
      location: 'US',
      datasetPrefix: '',
    });
    const url = 'bigquery://my-project-1?location=europe-west1&datasetPrefix=dev_';
    expect(parseSetting('warehouse', url)).toEqual({
      kind: 'bigquery',
      url,
      project: 'my-project-1',
      location: 'europe-west1',
      datasetPrefix: 'dev_',
    });
  });

  it.each([
    ['bigquery://My_Project', 'bigquery://<project>'],
    ['bigquery://my-project-1?keyFile=/tmp/key.json', 'unknown setting "keyFile"'],
    ['bigquery://my-project-1?datasetPrefix=dev-', 'datasetPrefix "dev-"'],
    ['bigquery://my-project-1?location=us%20east', 'location "us east"'],
  ])('refuses %s as bad input naming the setting', (url, says) => {
    expect(() => parseSetting('warehouse', url)).toThrow(BadInputError);
    expect(() => parseSetting('warehouse', url)).toThrow(/^warehouse = "bigquery:\/\/[^"]+": /);
    expect(() => parseSetting('warehouse', url)).toThrow(says);
  });
});

describe('creating datasets and tables', () => {
  it('creates the four datasets in the location, each table partitioned by its date and clustered on its keys', async () => {
    const w = await open('location=EU&datasetPrefix=c1_');
    await w.ensureTables(ALL_TABLES);
    for (const d of ['nba_raw', 'nba_analytics', 'nba_precompute', 'nba_reference']) {
      expect(double.datasets.get(`c1_${d}`)?.location).toBe('EU');
    }
    for (const t of ALL_TABLES) {
      const made = double.tables.get(`c1_${t.dataset}.${t.name}`);
      expect(made?.timePartitioning).toEqual({ type: 'DAY', field: t.partitionColumn });
      expect(made?.clustering).toEqual({ fields: t.clusterBy });
      expect(made?.fields.map((f) => [f.name, f.type, f.mode])).toEqual(
        t.columns.map((c) => [c.name, c.type, c.nullable ? 'NULLABLE' : 'REQUIRED']),
      );
    }
  });

  it('opening again creates nothing and alters nothing', async () => {
    const before = double.requests.length;
    const w = await open('location=EU&datasetPrefix=c1_');
    await w.ensureTables(ALL_TABLES);
    const made = double.requests.slice(before);
    expect(made.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(made.length).toBe(4 + ALL_TABLES.length);
  });

  it('refuses a table that exists with another schema, naming it and what differs', async () => {
    const w = await open('datasetPrefix=c2_');
    const older: TableSchema = {
      ...nbacSchedule,
      columns: nbacSchedule.columns.filter((c) => c.name !== 'winner_team_abbr'),
    };
    await w.ensureTables([older]);
    const err = await w.ensureTables([nbacSchedule]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toContain(`\`${PROJECT}.c2_nba_raw.nbac_schedule\``);
    expect((err as Error).message).toContain('winner_team_abbr STRING (found nothing)');
  });

  it('refuses a dataset that is in another location than the configured one', async () => {
    await (await open('datasetPrefix=c3_')).ensureTables([nbacSchedule]);
    const err = await (await open('location=EU&datasetPrefix=c3_')).ensureTables([nbacSchedule]).catch((e) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toContain(`${PROJECT}:c3_nba_raw is in US, not in the configured location EU`);
  });
});

describe('queries', () => {
  let w: BigQueryWarehouse;
  beforeAll(async () => {
    w = await open('datasetPrefix=q1_');
    await w.ensureTables(ALL_TABLES);
    const games = Array.from({ length: 120 }, (_v, i) =>
      game(i < 60 ? '2021-10-19' : '2021-10-20', `0022100${String(i).padStart(3, '0')}`, { home_score: 100 + i }),
    );
    await w.commit({
      replace: [
        { table: nbacSchedule, date: '2021-10-19', rows: games.slice(0, 60) },
        { table: nbacSchedule, date: '2021-10-20', rows: games.slice(60) },
      ],
      append: [{ table: processorRunHistory, rows: [run('run-q-1', '2021-10-19')] }],
    });
  });

  it('sends every value as a typed query parameter and names tables with the project and prefix', async () => {
    const n = double.requests.length;
    const rows = await w.query(
      `SELECT game_id, home_score FROM nba_raw.nbac_schedule
        WHERE game_date = @date AND season = @season AND home_score >= @min ORDER BY game_id`,
      { date: '2021-10-19', season: '2021-22', min: 158, unused: 'x' },
    );
    expect(rows).toEqual([
      { game_id: '0022100058', home_score: 158 },
      { game_id: '0022100059', home_score: 159 },
    ]);
    const body = bodyOf(queriesSince(n)[0]);
    expect(body.query).toContain(`FROM \`${PROJECT}.q1_nba_raw.nbac_schedule\``);
    expect(body.useLegacySql).toBe(false);
    expect(body.location).toBe('US');
    expect(body.queryParameters).toEqual([
      { name: 'date', parameterType: { type: 'STRING' }, parameterValue: { value: '2021-10-19' } },
      { name: 'season', parameterType: { type: 'STRING' }, parameterValue: { value: '2021-22' } },
      { name: 'min', parameterType: { type: 'INT64' }, parameterValue: { value: 158 } },
    ]);
  });

  it('reads every column type back as plain values, as the embedded warehouse does', async () => {
    const [r] = await w.query('SELECT * FROM nba_reference.processor_run_history WHERE data_date = @d', {
      d: '2021-10-19',
    });
    expect(r).toMatchObject({
      run_id: 'run-q-1',
      phase: 7,
      data_date: '2021-10-19',
      success: true,
      error_message: null,
      started_at: '2021-10-19T23:15:00.123Z',
      job_index: null,
    });
    expect(JSON.parse(String(r?.details))).toEqual({ rows: 2 });
  });

  it('renames a parameter named with a reserved word', async () => {
    const n = double.requests.length;
    const [r] = await w.query(
      'SELECT COUNT(*) AS n FROM nba_raw.nbac_schedule WHERE game_date BETWEEN @start AND @end',
      {
        start: '2021-10-19',
        end: '2021-10-20',
      },
    );
    expect(r?.n).toBe(120);
    const body = bodyOf(queriesSince(n)[0]);
    expect(body.query).toContain('BETWEEN @start AND @p_end');
    expect(body.queryParameters?.map((p) => p.name)).toEqual(['start', 'p_end']);
  });

  it('refuses a query whose parameter has no value, without sending it', async () => {
    const n = double.requests.length;
    await expect(w.query('SELECT 1 AS x FROM nba_raw.nbac_schedule WHERE game_date = @date', {})).rejects.toThrow(
      /query parameter @date has no value/,
    );
    expect(double.requests.length).toBe(n);
  });

  it('follows result pages and waits for a query that is not complete yet', async () => {
    const n = double.requests.length;
    double.slowQueries = 1;
    const rows = await w.query(
      'SELECT game_id FROM nba_raw.nbac_schedule WHERE game_date BETWEEN @a AND @b ORDER BY game_id',
      {
        a: '2021-10-19',
        b: '2021-10-20',
      },
    );
    expect(rows.map((r) => r.game_id)).toEqual(
      Array.from({ length: 120 }, (_v, i) => `0022100${String(i).padStart(3, '0')}`),
    );
    const polls = double.requests.slice(n).filter((r) => r.method === 'GET' && r.route.startsWith('queries/'));
    expect(polls.length).toBeGreaterThanOrEqual(3);
    expect(polls.some((r) => r.query.pageToken === '50')).toBe(true);
  });
});

describe('commits', () => {
  let w: BigQueryWarehouse;
  beforeAll(async () => {
    w = await open('datasetPrefix=w1_');
    await w.ensureTables(ALL_TABLES);
  });
  const scheduleRows = async () =>
    (await double.rows('w1_nba_raw', 'nbac_schedule', 'game_id')).map((r) => `${r.game_date} ${r.game_id}`);

  it('replaces each date’s partition by a load job of its own, then appends, with no transaction', async () => {
    await w.commit({
      replace: [
        { table: nbacSchedule, date: '2021-10-19', rows: [game('2021-10-19', 'g1'), game('2021-10-19', 'g2')] },
        { table: nbacSchedule, date: '2021-10-20', rows: [game('2021-10-20', 'g3')] },
      ],
      append: [],
    });
    const n = double.requests.length;
    const jobs = double.jobLog.length;
    await w.commit({
      replace: [{ table: nbacSchedule, date: '2021-10-19', rows: [game('2021-10-19', 'g4')] }],
      append: [{ table: processorRunHistory, rows: [run('run-w-1', '2021-10-19')] }],
    });
    expect(await scheduleRows()).toEqual(['2021-10-20 g3', '2021-10-19 g4']);
    const [upload] = uploadsSince(n);
    expect(uploadsSince(n)).toHaveLength(1);
    expect(loadOf(upload)).toMatchObject({
      destinationTable: { tableId: 'nbac_schedule$20211019' },
      sourceFormat: 'NEWLINE_DELIMITED_JSON',
      writeDisposition: 'WRITE_TRUNCATE',
      createDisposition: 'CREATE_NEVER',
    });
    expect(
      upload?.upload
        ?.trim()
        .split('\n')
        .map((l) => JSON.parse(l).game_id),
    ).toEqual(['g4']);
    // The run history goes last, as one INSERT: the date's commit marker.
    const [insert] = queriesSince(n);
    expect(queriesSince(n)).toHaveLength(1);
    expect(bodyOf(insert).query).toMatch(/^INSERT INTO `[^`]+processor_run_history`/);
    expect(bodyOf(insert).query).not.toContain('TRANSACTION');
    expect(double.jobLog.slice(jobs).map((j) => j.kind)).toEqual(['load', 'dml']);
  });

  it('an empty replace empties the date', async () => {
    await w.commit({ replace: [{ table: nbacSchedule, date: '2021-10-20', rows: [] }], append: [] });
    expect(await scheduleRows()).toEqual(['2021-10-19 g4']);
  });

  it('a failed load leaves its partition as it was and writes no run history, and is not retried', async () => {
    const n = double.requests.length;
    const err = await w
      .commit({
        replace: [
          { table: nbacSchedule, date: '2021-10-19', rows: [game('2021-10-19', 'g5')] },
          { table: nbacPlayerBoxscore, date: '2021-10-19', rows: [rowOf(nbacPlayerBoxscore, { player_name: null })] },
        ],
        append: [{ table: processorRunHistory, rows: [run('run-w-2', '2021-10-19')] }],
      })
      .catch((e: unknown) => e);
    // The job failed after it was created: no HTTP status, and its reason says the input was bad.
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toMatch(/Missing required field: player_name/);
    expect((err as Error).message).toContain('load nba_raw.nbac_player_boxscore 2021-10-19');
    expect(
      uploadsSince(n)
        .map((r) => loadOf(r).destinationTable.tableId)
        .sort(),
    ).toEqual(['nbac_player_boxscore$20211019', 'nbac_schedule$20211019']);
    expect(await double.rows('w1_nba_raw', 'nbac_player_boxscore')).toEqual([]);
    // The schedule's partition was replaced on its own; without the run history the date does not count
    // (RunBatch writes a pending marker before the loads: see bigqueryPipeline and runBatchMarkers).
    expect(await scheduleRows()).toEqual(['2021-10-19 g5']);
    expect(queriesSince(n)).toEqual([]);
    const history = await double.rows('w1_nba_reference', 'processor_run_history');
    expect(history.map((r) => r.run_id)).toEqual(['run-w-1']);
  });

  it('refuses a row of another date in a replace before sending anything', async () => {
    const n = double.requests.length;
    await expect(
      w.commit({
        replace: [{ table: nbacSchedule, date: '2021-10-19', rows: [game('2021-10-20', 'g6')] }],
        append: [],
      }),
    ).rejects.toThrow('a row for 2021-10-20 was handed to the replace of 2021-10-19');
    expect(double.requests.length).toBe(n);
  });

  it('a commit retried after its first try landed unseen adds nothing twice', async () => {
    const n = double.requests.length;
    for (const match of [isUpload, (r: ObservedRequest) => r.route === 'queries']) {
      double.inject({
        match,
        status: 503,
        reason: 'backendError',
        message: 'Backend error. Job aborted.',
        afterExecute: true,
      });
    }
    await w.commit({
      replace: [{ table: nbacSchedule, date: '2021-10-21', rows: [game('2021-10-21', 'g7')] }],
      append: [{ table: processorRunHistory, rows: [run('run-w-3', '2021-10-21'), run('run-w-4', '2021-10-21')] }],
    });
    expect(uploadsSince(n).map((r) => r.status)).toEqual([503, 200]);
    expect(queriesSince(n).map((r) => r.status)).toEqual([503, 200]);
    expect(sleeps).toHaveLength(2);
    const history = await double.rows('w1_nba_reference', 'processor_run_history', 'run_id');
    expect(history.map((r) => r.run_id)).toEqual(['run-w-1', 'run-w-3', 'run-w-4']);
    expect(await scheduleRows()).toEqual(['2021-10-19 g5', '2021-10-21 g7']);
  });

  it('appends alone as one INSERT, with no transaction around it', async () => {
    const n = double.requests.length;
    await w.append(processorRunHistory, [run('run-w-5', '2021-10-22')]);
    const body = bodyOf(queriesSince(n)[0]);
    expect(body.query).toMatch(/^INSERT INTO `[^`]+processor_run_history`/);
    expect(body.query).not.toContain('TRANSACTION');
    expect(body.query).toContain('t.data_date BETWEEN @a0_first AND @a0_last AND t.run_id = r.run_id');
  });
});

describe('errors and retries', () => {
  let w: BigQueryWarehouse;
  beforeAll(async () => {
    w = await open('datasetPrefix=e1_');
    await w.ensureTables([nbacSchedule, processorRunHistory]);
  });
  const count = () =>
    w.query('SELECT COUNT(*) AS n FROM nba_raw.nbac_schedule WHERE game_date = @d', { d: '2021-10-19' });

  it('retries rate limits and server errors with growing, bounded backoff, then succeeds', async () => {
    const n = double.requests.length;
    double.inject({ match: (r) => r.route === 'queries', status: 429, reason: 'rateLimitExceeded' });
    double.inject({ match: (r) => r.route === 'queries', status: 503, reason: 'backendError' });
    double.inject({ match: (r) => r.route === 'queries', status: 500, reason: 'internalError' });
    double.inject({ match: (r) => r.route === 'queries', status: 403, reason: 'rateLimitExceeded' });
    expect(await count()).toEqual([{ n: 0 }]);
    expect(queriesSince(n).map((r) => r.status)).toEqual([429, 503, 500, 403, 200]);
    // base 100 ms doubling, capped at 1000 ms, times 0.75 (jitter at 0.5)
    expect(sleeps).toEqual([75, 150, 300, 600]);
  });

  it('retries a load refused by a rate limit, and a DELETE aborted by a concurrent update', async () => {
    double.inject({
      match: isUpload,
      status: 403,
      reason: 'rateLimitExceeded',
      message: 'Exceeded rate limits: too many table update operations for this table.',
    });
    const outcome = await w.commit({
      replace: [{ table: nbacSchedule, date: '2021-10-19', rows: [game('2021-10-19', 'e1')] }],
      append: [],
    });
    expect(outcome).toEqual({ tries: 2 });
    expect(sleeps).toEqual([75]);
    expect(await count()).toEqual([{ n: 1 }]);
    double.inject({
      match: (r) => r.route === 'queries',
      status: 400,
      reason: 'invalidQuery',
      message: `Could not serialize access to table ${PROJECT}:e1_nba_raw.nbac_schedule due to concurrent update`,
    });
    sleeps = [];
    expect(await w.commit({ replace: [{ table: nbacSchedule, date: '2021-10-19', rows: [] }], append: [] })).toEqual({
      tries: 2,
    });
    expect(sleeps).toEqual([75]);
    // A commit no job of which was retried reports one try.
    expect(await w.commit({ replace: [{ table: nbacSchedule, date: '2021-10-20', rows: [] }], append: [] })).toEqual({
      tries: 1,
    });
    expect(await count()).toEqual([{ n: 0 }]);
  });

  it('a load whose upload is answered 200 with no job is looked up by its id, and sent again if BigQuery never made it', async () => {
    const n = double.requests.length;
    // Nothing was done: jobs.get does not know the job, so the load is sent again.
    double.inject({ match: isUpload, status: 200, reason: 'none', emptyAnswer: true });
    const outcome = await w.commit({
      replace: [{ table: nbacSchedule, date: '2021-10-23', rows: [game('2021-10-23', 'u1')] }],
      append: [],
    });
    expect(outcome).toEqual({ tries: 2 });
    expect(uploadsSince(n).map((r) => r.status)).toEqual([200, 200]);
    const first = bodyOf(uploadsSince(n)[0]) as unknown as { jobReference: { jobId: string } };
    expect(first.jobReference.jobId).toMatch(/^nba_load_[0-9a-f]{32}$/);
    expect(
      double.requests
        .slice(n)
        .some((r) => r.method === 'GET' && r.route === `jobs/${first.jobReference.jobId}` && r.status === 404),
    ).toBe(true);
    // The job ran and only its answer was lost: found by its id, not sent twice.
    const m = double.requests.length;
    double.inject({ match: isUpload, status: 200, reason: 'none', emptyAnswer: true, afterExecute: true });
    sleeps = [];
    expect(
      await w.commit({
        replace: [{ table: nbacSchedule, date: '2021-10-23', rows: [game('2021-10-23', 'u2')] }],
        append: [],
      }),
    ).toEqual({ tries: 1 });
    expect(uploadsSince(m)).toHaveLength(1);
    expect(sleeps).toEqual([]);
    const rows = await double.rows('e1_nba_raw', 'nbac_schedule', 'game_id');
    expect(rows.filter((r) => String(r.game_date) === '2021-10-23').map((r) => r.game_id)).toEqual(['u2']);
  });

  it('does not retry a bad request; the user sees BigQuery’s message and what was being written', async () => {
    const n = double.requests.length;
    double.inject({
      match: isUpload,
      status: 400,
      reason: 'invalid',
      message: 'Provided Schema does not match Table x. Field game_id has changed type',
    });
    const err = await w
      .commit({ replace: [{ table: nbacSchedule, date: '2021-10-19', rows: [game('2021-10-19', 'e2')] }], append: [] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toContain('Field game_id has changed type (HTTP 400, invalid)');
    expect((err as Error).message).toContain('commit of nba_raw.nbac_schedule 2021-10-19');
    expect(uploadsSince(n)).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('does not retry a table that is not found', async () => {
    const n = double.requests.length;
    const err = await w
      .query('SELECT COUNT(*) AS n FROM nba_raw.nbac_team_boxscore WHERE game_date = @d', { d: '2021-10-19' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toContain(`Not found: Table ${PROJECT}:e1_nba_raw.nbac_team_boxscore`);
    expect(queriesSince(n)).toHaveLength(1);
  });

  it('gives up after the configured tries with a transient ProcessingError', async () => {
    const few = await open('datasetPrefix=e1_', { retry: { attempts: 3, baseDelayMs: 100, maxDelayMs: 1000 } });
    const n = double.requests.length;
    double.inject({ match: (r) => r.route === 'queries', status: 503, reason: 'backendError', times: 5 });
    const err = await few
      .query('SELECT COUNT(*) AS n FROM nba_raw.nbac_schedule WHERE game_date = @d', { d: '2021-10-19' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessingError);
    expect((err as ProcessingError).transient).toBe(true);
    expect((err as Error).message).toMatch(/failed after 3 attempts: .*\(HTTP 503, backendError\)/);
    expect(queriesSince(n)).toHaveLength(3);
  });

  it('retries the creation of datasets and tables too', async () => {
    const other = await open('datasetPrefix=e2_');
    double.inject({ match: (r) => r.method === 'POST' && r.route === 'datasets', status: 503, reason: 'backendError' });
    double.inject({
      match: (r) => r.method === 'POST' && r.route.endsWith('/tables'),
      status: 500,
      reason: 'internalError',
    });
    await other.ensureTables([nbacSchedule]);
    expect(double.tables.has('e2_nba_raw.nbac_schedule')).toBe(true);
    expect(sleeps).toHaveLength(2);
  });
});

describe('concurrency', () => {
  it('replaces dates of one table side by side (a load each), and appends beside them', async () => {
    const w = await open('datasetPrefix=k1_');
    await w.ensureTables([nbacSchedule, processorRunHistory]);
    const dates = ['2021-10-19', '2021-10-20', '2021-10-21'];
    await Promise.all(
      dates.map((d) =>
        w.commit({
          replace: [{ table: nbacSchedule, date: d, rows: [game(d, `k-${d}`)] }],
          append: [{ table: processorRunHistory, rows: [run(`run-k-${d}`, d)] }],
        }),
      ),
    );
    const rows = await double.rows('k1_nba_raw', 'nbac_schedule', 'game_date');
    expect(rows.map((r) => r.game_id)).toEqual(dates.map((d) => `k-${d}`));
    expect(double.abortedTransactions).toBe(0);
  });
});

describe('a batch of dates (Stage 3)', () => {
  it('replaces many days of a table in a handful of jobs: a staging load, one DELETE, one INSERT', async () => {
    const w = await open('datasetPrefix=b1_');
    await w.ensureTables([nbacSchedule, processorRunHistory]);
    await w.commit({
      replace: ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22'].map((d) => ({
        table: nbacSchedule,
        date: d,
        rows: [game(d, `old-${d}`)],
      })),
      append: [],
    });
    const n = double.requests.length;
    const jobs = double.jobLog.length;
    const outcome = await w.commit({
      replace: [
        { table: nbacSchedule, date: '2021-10-19', rows: [game('2021-10-19', 'a1'), game('2021-10-19', 'a2')] },
        { table: nbacSchedule, date: '2021-10-20', rows: [] },
        { table: nbacSchedule, date: '2021-10-22', rows: [game('2021-10-22', 'c1')] },
      ],
      append: [{ table: processorRunHistory, rows: [run('run-b-1', '2021-10-19')] }],
    });
    expect(outcome).toEqual({ tries: 1 });
    const rows = await double.rows('b1_nba_raw', 'nbac_schedule', 'game_date, game_id');
    expect(rows.map((r) => `${r.game_date} ${r.game_id}`)).toEqual([
      '2021-10-19 a1',
      '2021-10-19 a2',
      '2021-10-21 old-2021-10-21',
      '2021-10-22 c1',
    ]);
    expect(double.jobLog.slice(jobs).map((j) => j.kind)).toEqual(['load', 'dml', 'dml', 'dml']);
    const [remove, insert] = queriesSince(n).map((r) => bodyOf(r).query);
    expect(remove).toMatch(
      /^DELETE FROM `[^`]+nbac_schedule` WHERE game_date BETWEEN @first AND @last AND game_date IN/,
    );
    expect(insert).toMatch(/^INSERT INTO `[^`]+nbac_schedule` .*\nSELECT .* FROM `[^`]+_staging_/s);
    expect(loadOf(uploadsSince(n)[0]).destinationTable.tableId).toMatch(/^_staging_[0-9a-f]{16}_nbac_schedule$/);
    expect([...double.tables.keys()].filter((k) => k.includes('_staging_'))).toEqual([]);
  });
});

describe('large commits', () => {
  it('loads a large replace in one job, and stages a large append in chunks before one INSERT', async () => {
    const w = await open('datasetPrefix=s1_', { maxRequestBytes: 40_000 });
    await w.ensureTables([nbacPlayerBoxscore, processorRunHistory]);
    const rows = Array.from({ length: 150 }, (_v, i) =>
      rowOf(nbacPlayerBoxscore, { game_date: '2021-10-19', game_id: 'g1', player_id: 1000 + i }),
    );
    const runs = Array.from({ length: 150 }, (_v, i) => run(`run-s-${1000 + i}`, '2021-10-19'));
    const n = double.requests.length;
    await w.commit({
      replace: [{ table: nbacPlayerBoxscore, date: '2021-10-19', rows }],
      append: [{ table: processorRunHistory, rows: runs }],
    });
    const made = double.requests.slice(n);
    expect(uploadsSince(n)).toHaveLength(1);
    const jobs = made.filter((r) => r.method === 'POST' && r.route === 'jobs' && !isUpload(r));
    expect(jobs.length).toBeGreaterThanOrEqual(3);
    for (const j of jobs) {
      expect(j.body).toMatchObject({
        configuration: { query: { writeDisposition: 'WRITE_TRUNCATE', createDisposition: 'CREATE_NEVER' } },
      });
    }
    const staging = made.filter((r) => r.method === 'POST' && r.route.endsWith('/tables'));
    expect(staging).toHaveLength(jobs.length);
    for (const s of staging) expect(s.body).toMatchObject({ expirationTime: expect.stringMatching(/^\d+$/) });
    const [insert] = queriesSince(n);
    expect(queriesSince(n)).toHaveLength(1);
    expect(bodyOf(insert).query).toContain('UNION ALL');
    expect(bodyOf(insert).queryParameters?.some((p) => p.parameterType.type === 'ARRAY')).toBe(false);
    expect(made.filter((r) => r.method === 'DELETE')).toHaveLength(jobs.length);
    expect([...double.tables.keys()].filter((k) => k.includes('_staging_'))).toEqual([]);
    const stored = await double.rows('s1_nba_raw', 'nbac_player_boxscore', 'player_id');
    expect(stored.map((r) => Number(r.player_id))).toEqual(rows.map((r) => r.player_id));
    const history = await double.rows('s1_nba_reference', 'processor_run_history', 'run_id');
    expect(history.map((r) => r.run_id)).toEqual(runs.map((r) => r.run_id));
  });
});

describe('every statement the adapter can emit', () => {
  it('parses with sqlglot’s BigQuery dialect, with no value written into the SQL', async () => {
    const glot = await Sqlglot.start();
    try {
      const names = new BigQueryNames(bigQueryTarget(`bigquery://${PROJECT}?datasetPrefix=dev_`));
      const rows = [game('2021-10-19', 'g1')];
      const history = [run('r1', '2021-10-19')];
      const statements = [
        commitStatement(names, [{ kind: 'replace', table: nbacSchedule, date: '2021-10-19', rows }]),
        commitStatement(names, [{ kind: 'replace', table: nbacSchedule, date: '2021-10-19', rows: [] }]),
        commitStatement(names, [{ kind: 'append', table: processorRunHistory, rows: history }]),
        commitStatement(names, [
          { kind: 'replace', table: nbacSchedule, date: '2021-10-19', rows },
          { kind: 'replace', table: nbacPlayerBoxscore, date: '2021-10-19', rows: [] },
          { kind: 'append', table: processorRunHistory, rows: history },
        ]),
        commitStatement(names, [
          { kind: 'replace', table: nbacSchedule, date: '2021-10-19', rows, staged: ['`p.d._staging_1_0_0`'] },
          {
            kind: 'append',
            table: processorRunHistory,
            rows: history,
            staged: ['`p.d._staging_1_1_0`', '`p.d._staging_1_1_1`'],
          },
        ]),
        stagingStatement(nbacSchedule, rows),
        (await open('datasetPrefix=dev_')).queryStatement(
          'SELECT * FROM nba_raw.nbac_schedule WHERE game_date BETWEEN @start AND @end',
          { start: '2021-10-19', end: '2021-10-20' },
        ),
      ];
      const kinds: string[][] = [];
      for (const s of statements) {
        const infos = await glot.prepare({ sql: s.query, project: PROJECT, transpile: false });
        expect(infos.flatMap((i) => i.problems)).toEqual([]);
        expect(new Set(infos.flatMap((i) => i.parameters))).toEqual(new Set(Object.keys(s.params)));
        kinds.push(infos.map((i) => i.kind));
      }
      expect(kinds).toEqual([
        ['begin', 'delete', 'insert', 'commit'],
        ['delete'],
        ['insert'],
        ['begin', 'delete', 'insert', 'delete', 'insert', 'commit'],
        ['begin', 'delete', 'insert', 'insert', 'commit'],
        ['select'],
        ['select'],
      ]);
    } finally {
      await glot.close();
    }
  });
  it('are checked by a pruning test that tells a read of one date from a scan of the table', async () => {
    const glot = await Sqlglot.start();
    try {
      const tables = { 'd.box': 'game_date' };
      const scans = async (sql: string) =>
        (await glot.prepare({ sql, project: PROJECT, tables, transpile: false })).flatMap((i) => [
          ...i.unprunedScans,
          ...i.problems,
        ]);
      expect(await scans('SELECT * FROM `p.d.box` AS b WHERE b.game_date = @date')).toEqual([]);
      expect(await scans('SELECT * FROM `p.d.box` WHERE season = @season AND game_date BETWEEN @a AND @b')).toEqual([]);
      expect(await scans('SELECT * FROM `p.d.box` WHERE season = @season')).toEqual(['d.box']);
      expect(
        await scans(
          'SELECT * FROM `p.d.box` AS b WHERE b.player_id IN (SELECT player_id FROM `p.d.box` WHERE game_date = @date)',
        ),
      ).toEqual(['d.box']);
      expect(
        await scans(
          'SELECT * FROM `p.d.box` AS b JOIN `p.d.box` AS c ON c.game_date = b.game_date WHERE b.game_date = @d',
        ),
      ).toEqual(['d.box']);
      expect(await scans('DELETE FROM `p.d.box` WHERE season = @season')).toEqual([
        'DELETE from d.box does not filter on its partition column game_date',
      ]);
    } finally {
      await glot.close();
    }
  });
});
