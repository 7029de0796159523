// Benchmark: batched Stage 3 against date by date over one season, side by side; Stage 3 cost per date (one
// season and all four), the whole `backfill run --season all`, and Stage 3 against the platform's old way (one
// `backfill process` process per processor per date); `hashes`: all four seasons at each batch size, side by
// side, and whether they end with the same Phase 3-4 tables and run history (not in the default parts).
// Usage: npm run bench:stage3 -- [--part batch,per-date,run,old-way,hashes] [--batch-sizes 1,32] [--breakdown]
// (build first). --breakdown: for each batch size, the time spent in the warehouse's queries (summed: reads run
// side by side, so the sum can exceed the wall time), commits and checkpoints.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Adapters, openAdapters } from '../core/adapters/index.js';
import { CheckedWarehouse } from '../core/checks/data.js';
import { loadConfig } from '../core/config.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { silentLogger } from '../core/log.js';
import { packageRoot } from '../core/paths.js';
import { SEASONS } from '../core/pipeline/seasons.js';
import { type PlanDate, readPlan, selectDates } from '../core/plan.js';
import { ANALYTICS_TABLES, PRECOMPUTE_TABLES } from '../core/schema/derived.js';
import { processorRunHistory } from '../core/schema/raw.js';
import { qualifiedName } from '../core/schema/table.js';
import { runStage3, STAGE3_BATCH_SIZE } from '../core/stages/stage3.js';
import { treeRssKiB } from './memory.js';

const { values } = parseArgs({
  options: {
    part: { type: 'string', default: 'batch,per-date,run,old-way' },
    'batch-sizes': { type: 'string', default: `1,${STAGE3_BATCH_SIZE}` },
    breakdown: { type: 'boolean', default: false },
  },
});
const parts = new Set(String(values.part).split(','));
const root = packageRoot();
const cli = join(root, 'build', 'cli', 'main.js');
const log = silentLogger();
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)] ?? 0, worst: s.at(-1) ?? 0, n: s.length };
};

function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nba-bench-stage3-'));
  cpSync(join(root, 'plans'), join(dir, 'plans'), { recursive: true });
  return dir;
}

async function timedCli(
  args: string[],
  cwd: string,
): Promise<{ seconds: number; peakMiB: number; code: number | null; stdout: string }> {
  const started = performance.now();
  const child = spawn(process.execPath, [cli, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.resume();
  let peak = 0;
  const timer = setInterval(() => child.pid && (peak = Math.max(peak, treeRssKiB(child.pid))), 100);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearInterval(timer);
  return { seconds: (performance.now() - started) / 1000, peakMiB: peak / 1024, code, stdout };
}

console.log(`Stage 3 benchmark, Node ${process.version}`);

/** One SHA-256 per table over its rows in date and key order (JSON numbers: equal hashes mean equal bits). */
async function contentHashes(warehouse: Adapters['warehouse']): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of [...ANALYTICS_TABLES, ...PRECOMPUTE_TABLES]) {
    const columns = t.columns.map((c) => c.name);
    const order = [t.partitionColumn, ...t.key.filter((k) => k !== t.partitionColumn)];
    const rows = await warehouse.query(
      `SELECT ${columns.join(', ')} FROM ${qualifiedName(t)} ORDER BY ${order.join(', ')}`,
    );
    out[qualifiedName(t)] = hashRows(rows, columns);
  }
  // Run history apart from what differs by run: ids and times.
  const columns = processorRunHistory.columns
    .map((c) => c.name)
    .filter((c) => !['run_id', 'started_at', 'finished_at'].includes(c));
  const runs = await warehouse.query(
    `SELECT ${columns.join(', ')} FROM ${qualifiedName(processorRunHistory)} WHERE phase >= 3
      ORDER BY data_date, phase, processor_name, status`,
  );
  out['run history (Phase 3-4)'] = hashRows(runs, columns);
  return out;
}

function hashRows(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  const hash = createHash('sha256');
  for (const row of rows)
    hash.update(
      `${JSON.stringify(
        columns.map((c) => row[c]),
        (_, v) => (typeof v === 'bigint' ? String(v) : v),
      )}\n`,
    );
  return `${rows.length} rows ${hash.digest('hex').slice(0, 16)}`;
}

/** Wraps a warehouse's query, commit and checkpoint to add up the milliseconds each kind takes. */
function timeWarehouse(warehouse: Adapters['warehouse']): Record<string, { ms: number; calls: number }> {
  const spent: Record<string, { ms: number; calls: number }> = {};
  const target = warehouse as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const method of ['query', 'commit', 'checkpoint']) {
    const original = target[method]?.bind(warehouse);
    if (!original) continue;
    const entry = (spent[method] = { ms: 0, calls: 0 });
    target[method] = async (...args: unknown[]) => {
      const started = performance.now();
      try {
        return await original(...args);
      } finally {
        entry.ms += performance.now() - started;
        entry.calls += 1;
      }
    };
  }
  return spent;
}

/**
 * The seasons' Phase 1-2 loaded once; then Stage 3 of every season at each batch size, each size from a copy of
 * the same file, one after the other in this process: the time of each and, with `hashes`, whether every size
 * ended with the same six Phase 3-4 tables and run history.
 */
async function sideBySide(seasons: readonly (typeof SEASONS)[number][], hashes: boolean): Promise<void> {
  const dir = workspace();
  const configFor = (file: string) =>
    loadConfig({ env: {}, flags: { warehouse: `duckdb:${file}`, objects: `file:${join(dir, 'objects')}` } });
  const base = join(dir, 'base.duckdb');
  const loaded = await openAdapters(configFor(base));
  const selections: { season: string; dates: PlanDate[] }[] = [];
  for (const season of seasons) {
    const dates = selectDates(await readPlan(join(root, 'plans'), season.label), season, { seasonType: 'regular' });
    selections.push({ season: season.label, dates });
    for (const d of dates)
      await runPhases1And2(loaded, log, d.date, { trigger: { command: 'bench' }, skipDownstreamTrigger: true });
  }
  await loaded.close();
  const what = `Stage 3 of ${seasons.map((s) => s.label).join(', ')} regular (${selections.reduce((n, s) => n + s.dates.length, 0)} dates)`;
  const seconds = new Map<number, number>();
  const hashed = new Map<number, Record<string, string>>();
  for (const size of String(values['batch-sizes']).split(',').map(Number)) {
    const file = join(dir, `batch-${size}.duckdb`);
    cpSync(base, file);
    const adapters = await openAdapters(configFor(file));
    const spent = values.breakdown ? timeWarehouse(adapters.warehouse) : undefined;
    const ports = { ...adapters, warehouse: new CheckedWarehouse(adapters.warehouse) };
    const started = performance.now();
    for (const { season, dates } of selections) {
      const r = await runStage3(ports, log, { season, dates, batchSize: size });
      if (r.summary.status !== 'succeeded')
        throw new Error(`stage 3 ${season} at batch size ${size}: ${r.summary.error}`);
    }
    const s = (performance.now() - started) / 1000;
    if (hashes) hashed.set(size, await contentHashes(adapters.warehouse));
    await adapters.close();
    seconds.set(size, s);
    const slowest = seconds.get(Math.min(...seconds.keys())) ?? s;
    const dates = selections.reduce((n, x) => n + x.dates.length, 0);
    console.log(
      `${what}, --batch-size ${size}: ${s.toFixed(2)} s, ${fmt((1000 * s) / dates)} a date; ${(slowest / s).toFixed(1)}x the smallest size (load average ${loadavg()[0]?.toFixed(2)})`,
    );
    if (spent) {
      const parts = Object.entries(spent).map(([k, v]) => `${k} ${(v.ms / 1000).toFixed(2)} s (${v.calls} calls)`);
      console.log(`  --batch-size ${size} in the warehouse: ${parts.join(', ')}`);
    }
  }
  if (hashes) {
    const [first, ...others] = [...hashed];
    if (!first) return;
    for (const [table, hash] of Object.entries(first[1])) console.log(`  ${table}: ${hash}`);
    const differ = others.flatMap(([size, h]) =>
      Object.keys(first[1])
        .filter((t) => h[t] !== first[1][t])
        .map((t) => `${t} at --batch-size ${size}`),
    );
    console.log(
      differ.length === 0
        ? `identical at --batch-size ${[...hashed.keys()].join(', ')}: every Phase 3-4 table and the run history`
        : `DIFFERENT: ${differ.join('; ')}`,
    );
    if (differ.length > 0) process.exitCode = 1;
  }
  rmSync(dir, { recursive: true, force: true });
}

if (parts.has('batch')) await sideBySide([SEASONS[0] as (typeof SEASONS)[number]], false);
if (parts.has('hashes')) await sideBySide(SEASONS, true);

if (parts.has('per-date')) {
  const dir = workspace();
  const adapters = await openAdapters(
    loadConfig({
      env: {},
      flags: { warehouse: `duckdb:${join(dir, 'w.duckdb')}`, objects: `file:${join(dir, 'objects')}` },
    }),
  );
  const all: number[] = [];
  for (const season of SEASONS) {
    const dates = selectDates(await readPlan(join(root, 'plans'), season.label), season, { seasonType: 'regular' });
    for (const d of dates)
      await runPhases1And2(adapters, log, d.date, { trigger: { command: 'bench' }, skipDownstreamTrigger: true });
    const ports = { ...adapters, warehouse: new CheckedWarehouse(adapters.warehouse) };
    const r = await runStage3(ports, log, { season: season.label, dates });
    if (r.summary.status !== 'succeeded') throw new Error(`stage 3 ${season.label}: ${r.summary.error}`);
    const s = stats([...r.perDateMs]);
    all.push(...r.perDateMs);
    console.log(
      `per date, ${season.label}: median ${fmt(s.median)}, worst ${fmt(s.worst)} over ${s.n} dates (Phase 3 + Phase 4 + checks)`,
    );
  }
  const s = stats(all);
  console.log(`per date, all four seasons: median ${fmt(s.median)}, worst ${fmt(s.worst)} over ${s.n} dates`);
  await adapters.close();
  rmSync(dir, { recursive: true, force: true });
}

if (parts.has('run')) {
  const one = workspace();
  const r1 = await timedCli(['run', '--season', '2021-22', '--season-type', 'regular'], one);
  console.log(
    `backfill run --season 2021-22 --season-type regular: ${r1.seconds.toFixed(1)} s, peak ${r1.peakMiB.toFixed(0)} MiB, exit ${r1.code}`,
  );
  rmSync(one, { recursive: true, force: true });
  const four = workspace();
  const r4 = await timedCli(['run', '--season', 'all', '--season-type', 'regular'], four);
  console.log(
    `backfill run --season all --season-type regular: ${r4.seconds.toFixed(1)} s, peak ${r4.peakMiB.toFixed(0)} MiB, exit ${r4.code}`,
  );
  console.log(`four seasons cost ${(r4.seconds / r1.seconds).toFixed(2)}x one season`);
  rmSync(four, { recursive: true, force: true });
}

if (parts.has('old-way')) {
  // Two weeks of dates, Phase 1-2 loaded and Phase 3-4 done up to the day before.
  const dir = workspace();
  const sel = ['--season', '2021-22', '--season-type', 'regular'];
  await timedCli(['stage1', ...sel, '--start-date', '2021-10-19', '--end-date', '2021-11-14'], dir);
  await timedCli(['stage3', ...sel, '--start-date', '2021-10-19', '--end-date', '2021-10-31'], dir);
  const plan = await readPlan(join(root, 'plans'), '2021-22');
  const season = SEASONS[0] as (typeof SEASONS)[number];
  const twoWeeks = selectDates(plan, season, { seasonType: 'regular', startDate: '2021-11-01', endDate: '2021-11-14' });
  const processors = [
    'player_game_summary',
    'team_offense_game_summary',
    'team_defense_game_summary',
    'player_daily_cache',
    'player_composite_factors',
    'ml_feature_store',
  ];
  const oldStart = performance.now();
  for (const d of twoWeeks) {
    for (const p of processors) {
      const r = await timedCli(['process', p, '--date', d.date, '--skip-downstream-trigger'], dir);
      if (r.code !== 0) throw new Error(`old way: ${p} ${d.date} exited ${r.code}`);
    }
  }
  const oldSeconds = (performance.now() - oldStart) / 1000;
  // Now ours over the same dates, from the same starting point: forget those dates' Phase 3-4 runs first.
  await timedCli(
    [
      'query',
      "DELETE FROM nba_reference.processor_run_history WHERE phase >= 3 AND data_date >= DATE '2021-11-01'",
      '--write',
    ],
    dir,
  );
  const ours = await timedCli(['stage3', ...sel, '--start-date', '2021-10-19', '--end-date', '2021-11-14'], dir);
  console.log(
    `two weeks (${twoWeeks.length} dates): old way (${twoWeeks.length * processors.length} processes, one per processor per date, no sleeps) ${oldSeconds.toFixed(1)} s; ` +
      `stage3 ${ours.seconds.toFixed(1)} s (one process, resuming at 2021-11-01); ${(oldSeconds / ours.seconds).toFixed(1)}x faster`,
  );
  rmSync(dir, { recursive: true, force: true });
}
