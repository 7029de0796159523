// The processors' SQL on both engines through one dialect seam: Phases 1-4 for the first dates of 2021-22
// run through the BigQuery warehouse (the real client against the BigQuery double, which parses every
// statement with sqlglot's BigQuery dialect and runs it on DuckDB) and through the embedded DuckDB warehouse,
// then every table, the run history, the quality gate and the validation are compared. BigQuery runs Phase 3-4
// as one Stage 3 batch of the dates (the range SQL), DuckDB date by date.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Adapters, ALL_TABLES, openAdapters } from '../core/adapters/index.js';
import { CheckedWarehouse } from '../core/checks/data.js';
import { loadConfig } from '../core/config.js';
import { type DateRunResult, runInBatch, runPhases1And2, runPhases3And4, stage3Processors } from '../core/dateRun.js';
import type { IsoDate } from '../core/dates.js';
import { runGate } from '../core/gate.js';
import { silentLogger } from '../core/log.js';
import type { PipelinePorts } from '../core/pipeline/processor.js';
import { getSeason } from '../core/pipeline/seasons.js';
import { buildPlan } from '../core/plan.js';
import type { Warehouse } from '../core/ports/warehouse.js';
import { processorRunHistory } from '../core/schema/raw.js';
import { qualifiedName, type Row, type TableSchema } from '../core/schema/table.js';
import { validate } from '../core/stages/validate.js';
import { openTestPipeline, type TestPipeline } from './support/adapters.js';
import { BigQueryDouble } from './support/bigqueryServer.js';

const PROJECT = 'nba-e2e-project';
const DATES: IsoDate[] = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22', '2021-10-23'];
const RANGE = { start: DATES[0] as IsoDate, end: DATES.at(-1) as IsoDate };
const log = silentLogger();
const opts = { trigger: { command: 'test', stage: 'stage3' }, skipDownstreamTrigger: true };

/**
 * Reads that do not filter on a partition column with a constant, and why that is accepted: the schedule
 * of a season (about 1,300 small rows, clustered on season) read once per season by the checks and the plan.
 */
const SEASON_SCANS = [/^FROM `[^`]+\.e2e_nba_raw\.nbac_schedule` WHERE season = @season AND game_status = 'Final'/];

let double: BigQueryDouble;
let embedded: TestPipeline;
let bigquery: Adapters;
let dir: string;
const results: { engine: string; phase: string; result: DateRunResult }[] = [];
/** Statements the double saw while the phases ran (before the gate and the validation). */
let phaseStatements = 0;

async function runDates(engine: string, adapters: Adapters): Promise<void> {
  for (const date of DATES)
    results.push({ engine, phase: '1-2', result: await runPhases1And2(adapters, log, date, opts) });
  const ports: PipelinePorts = { ...adapters, warehouse: new CheckedWarehouse(adapters.warehouse) };
  if (engine === 'bigquery') {
    for (const result of await runInBatch(ports, () => log, DATES, stage3Processors(), opts))
      results.push({ engine, phase: '3-4', result });
  } else {
    for (const date of DATES)
      results.push({ engine, phase: '3-4', result: await runPhases3And4(ports, log, date, opts) });
  }
}

beforeAll(async () => {
  double = await BigQueryDouble.start({ project: PROJECT });
  process.env.BIGQUERY_EMULATOR_HOST = double.url;
  dir = mkdtempSync(join(tmpdir(), 'nba-backfill-bq-e2e-'));
  // Configuration only: the same flags as `--warehouse bigquery://...`, through the one place adapters are chosen.
  const config = loadConfig({
    env: {},
    flags: { warehouse: `bigquery://${PROJECT}?datasetPrefix=e2e_`, objects: `file:${join(dir, 'objects')}` },
  });
  bigquery = await openAdapters(config);
  embedded = await openTestPipeline();
  await runDates('bigquery', bigquery);
  phaseStatements = double.statements.length;
  await runDates('duckdb', embedded.adapters);
});

afterAll(async () => {
  await bigquery?.close();
  await embedded?.dispose();
  await double?.close();
  delete process.env.BIGQUERY_EMULATOR_HOST;
  rmSync(dir, { recursive: true, force: true });
});

/** A timestamp as milliseconds: DuckDB writes `2021-10-19 12:00:00.123` (UTC), BigQuery an ISO text. */
function instant(text: string): number {
  return Date.parse(/(Z|[+-]\d\d(:?\d\d)?)$/.test(text) ? text : `${text.replace(' ', 'T')}Z`);
}

/** A table's rows over the dates, sorted by partition and key, with timestamps as instants. */
async function contents(warehouse: Warehouse, table: TableSchema): Promise<Row[]> {
  const rows = await warehouse.query(
    `SELECT * FROM ${qualifiedName(table)} WHERE ${table.partitionColumn} BETWEEN @start AND @end`,
    RANGE,
  );
  const timestamps = table.columns.filter((c) => c.type === 'TIMESTAMP').map((c) => c.name);
  for (const r of rows) for (const c of timestamps) if (r[c] !== null) r[c] = instant(String(r[c]));
  const key = (r: Row) => [table.partitionColumn, ...table.key].map((k) => String(r[k])).join('|');
  return rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** Equal rows, floats within a relative 1e-9 (BigQuery's float literals are FLOAT64, DuckDB's DECIMAL). */
function expectSameRows(table: string, actual: readonly Row[], expected: readonly Row[]): void {
  expect(actual.length, `${table}: rows`).toBe(expected.length);
  actual.forEach((row, i) => {
    const want = expected[i] as Row;
    expect(Object.keys(row).sort(), `${table}: columns`).toEqual(Object.keys(want).sort());
    for (const [k, v] of Object.entries(want)) {
      const got = row[k];
      if (typeof v === 'number' && typeof got === 'number' && !Number.isInteger(v)) {
        expect(Math.abs(got - v), `${table} row ${i} ${k}: ${got} vs ${v}`).toBeLessThanOrEqual(
          1e-9 * Math.max(1, Math.abs(v)),
        );
      } else {
        expect(got, `${table} row ${i} ${k}`).toEqual(v);
      }
    }
  });
}

describe('Phases 1-4 through the BigQuery warehouse and the embedded one', () => {
  it('runs every processor of every date on both engines without a failure', () => {
    expect(results).toHaveLength(4 * DATES.length);
    for (const r of results) {
      expect(r.result.failures.map((f) => `${r.engine} ${r.phase} ${f.processor}: ${f.error.message}`)).toEqual([]);
    }
    const rowsOf = (engine: string) => results.filter((r) => r.engine === engine).map((r) => r.result.rows);
    expect(rowsOf('bigquery')).toEqual(rowsOf('duckdb'));
    expect(double.violations).toEqual([]);
    // The batch's range SQL ran on BigQuery (each processor over the five dates, @d0..@d4), not the one-date
    // fallback a processor failing over the range would take.
    const ranged = double.statements.slice(0, phaseStatements).filter((st) => /@d4\b/.test(st.sql));
    expect(ranged.length).toBeGreaterThanOrEqual(3);
  });

  it.each(ALL_TABLES.filter((t) => t !== processorRunHistory).map((t) => [qualifiedName(t), t] as const))(
    'holds the same rows in %s on both engines',
    async (name, table) => {
      const want = await contents(embedded.adapters.warehouse, table);
      const got = await contents(bigquery.warehouse, table);
      if (!name.endsWith('backfill_failure_log')) expect(want.length).toBeGreaterThan(0);
      expectSameRows(name, got, want);
    },
  );

  it('records the same runs in the run history, and on BigQuery a pending marker before each writing run', async () => {
    const summary = async (w: Warehouse, markers: 'with' | 'without') =>
      (await contents(w, processorRunHistory))
        .filter((r) => (markers === 'with') === String(r.run_id).endsWith('-pending'))
        .map((r) =>
          [r.data_date, r.processor_name, r.phase, r.status, r.rows_processed, r.processing_decision].join(' '),
        )
        .sort();
    const want = await summary(embedded.adapters.warehouse, 'without');
    expect(want.length).toBeGreaterThanOrEqual(DATES.length * 14);
    expect(await summary(bigquery.warehouse, 'without')).toEqual(want);
    expect(await summary(embedded.adapters.warehouse, 'with')).toEqual([]);
    // One marker per writing run (partitions are replaced one job at a time), superseded by the run's row.
    const markers = await summary(bigquery.warehouse, 'with');
    expect(markers.length).toBeGreaterThanOrEqual(DATES.length * 5);
    expect(markers.every((m) => / blocked 0 blocked$/.test(m))).toBe(true);
    const ran = new Set(want.map((r) => r.split(' ').slice(0, 2).join(' ')));
    expect(markers.filter((m) => !ran.has(m.split(' ').slice(0, 2).join(' ')))).toEqual([]);
  });

  it('reads and writes a date through its partition: no statement of the phases scans a table unfiltered', () => {
    const scans = double.statements
      .slice(0, phaseStatements)
      .filter((s) => s.info.unprunedScans.length > 0)
      .map((s) =>
        s.sql
          .replace(/\s+/g, ' ')
          .trim()
          .replace(/^SELECT .*? (FROM `)/, '$1'),
      );
    const unexpected = [...new Set(scans)].filter((sql) => !SEASON_SCANS.some((allowed) => allowed.test(sql)));
    expect(unexpected).toEqual([]);
    // Stage 1 replaces a date's partition by a load job of its own; a Stage 3 batch deletes its days in one
    // statement filtered on the partition column (then inserts from a staging table).
    const deletes = double.statements.slice(0, phaseStatements).filter((s) => s.info.kind === 'delete');
    expect(deletes.length).toBeGreaterThan(0);
    for (const d of deletes)
      expect(d.sql).toMatch(
        / WHERE \w+ BETWEEN @first AND @last AND \w+ IN \(SELECT x\.d FROM UNNEST\(@dates\) AS x\)$/,
      );
    expect(double.jobLog.filter((j) => j.kind === 'load').length).toBeGreaterThan(0);
  });

  it('passes the quality gate and the validation alike on both engines', async () => {
    const season = getSeason('2021-22');
    const plan = await buildPlan(bigquery, season);
    expect(plan.dates.map((d) => d.date)).toEqual(DATES);
    expect((await buildPlan(embedded.adapters, season)).dates).toEqual(plan.dates);
    const selections = [{ season: season.label, dates: plan.dates }];
    const gates = [
      await runGate(bigquery.warehouse, selections),
      await runGate(embedded.adapters.warehouse, selections),
    ];
    expect(gates[0]).toEqual(gates[1]);
    expect(gates[0]?.passed).toBe(true);
    const now = () => new Date('2021-10-24T00:00:00Z');
    const [fromBigQuery, fromDuckDb] = [
      await validate(bigquery.warehouse, selections, now),
      await validate(embedded.adapters.warehouse, selections, now),
    ];
    const outcome = (r: typeof fromBigQuery) => r.checks.map((c) => [c.name, c.passed, c.failureCount]);
    expect(outcome(fromBigQuery)).toEqual(outcome(fromDuckDb));
    expect(fromBigQuery.coverage).toEqual(fromDuckDb.coverage);
    expect(double.violations).toEqual([]);
  });
});
