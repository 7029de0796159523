// Benchmark: a season's Stage 1 and Stage 3 on BigQuery, modeled with the BigQuery double
// (test/support/bigqueryServer.ts) at BigQuery's typical latencies, through the real CLI, its pods and the
// real client library. Usage: npm run bench:bigquery [-- --json] [--season 2021-22] [--parallelism 16]
// [--time-scale 1]. It lives under test/ because the double does (it is not part of the build).
//
// Latencies (ms), the figures, which fit the 2-5 s a DML statement took when measured on BigQuery:
// query job 1 s, DML statement 3 s, script statement 2 s, load job 3 s, copy job 2 s. Google publishes no
// per-job latency. `--time-scale 0.1` runs ten times faster for a quick look: the modeled figures then also
// count the pods' own CPU time ten times over, so read them as an upper bound.

import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../core/paths.js';
import type { JobRecord } from '../support/bigqueryContention.js';
import { BigQueryDouble } from '../support/bigqueryServer.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    season: { type: 'string', default: '2021-22' },
    parallelism: { type: 'string', default: '16' },
    'time-scale': { type: 'string', default: '1' },
  },
});
const scale = Number(values['time-scale']);
const parallelism = Number(values.parallelism);
if (!(scale > 0) || !Number.isInteger(parallelism) || parallelism < 1) {
  process.stderr.write('bench:bigquery: --time-scale must be > 0 and --parallelism a whole number >= 1\n');
  process.exit(2);
}
const LATENCY_MS = { query: 1000, dml: 3000, scriptStatement: 2000, load: 3000, copy: 2000 };
const PROJECT = 'nba-bench';

// The double's clock runs in modeled milliseconds: real time divided by the scale.
const double = await BigQueryDouble.start({
  project: PROJECT,
  latencyMs: Object.fromEntries(Object.entries(LATENCY_MS).map(([k, v]) => [k, v * scale])),
  now: () => performance.now() / scale,
});
const dir = mkdtempSync(join(tmpdir(), 'nba-bench-bigquery-'));
cpSync(join(packageRoot(), 'plans'), join(dir, 'plans'), { recursive: true });

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [join(packageRoot(), 'build', 'cli', 'main.js'), '--warehouse', `bigquery://${PROJECT}`, ...args],
      {
        cwd: dir,
        env: { ...process.env, BIGQUERY_EMULATOR_HOST: double.url, METADATA_SERVER_DETECTION: 'none' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Jobs, modeled minutes (first start to last end) and transactions cancelled, over a slice of the job log. */
function summarize(jobs: readonly JobRecord[], abortedBefore: number) {
  const start = Math.min(...jobs.map((j) => j.start));
  const end = Math.max(...jobs.map((j) => j.end ?? j.start));
  const byKind: Record<string, number> = {};
  for (const j of jobs) byKind[j.kind] = (byKind[j.kind] ?? 0) + 1;
  return {
    jobs: jobs.length,
    byKind,
    modeledMinutes: jobs.length > 0 ? Math.round(((end - start) / 60_000) * 10) / 10 : 0,
    abortedTransactions: double.abortedTransactions - abortedBefore,
    // What the double billed the query, DML and script jobs (loads and copies are free), in MiB.
    bytesBilledMiB: jobs.reduce((sum, j) => sum + (j.bytesBilled ?? 0), 0) / (1024 * 1024),
  };
}

const range = ['--season', String(values.season), '--season-type', 'regular'];
try {
  let aborted = double.abortedTransactions;
  let from = double.jobLog.length;
  const s1 = await cli(['stage1', ...range, '--parallelism', String(parallelism)]);
  const loaded = /(\d+) of (\d+) dates loaded/.exec(s1.stdout);
  const stage1 = {
    dates: Number(loaded?.[2] ?? 0),
    parallelism,
    failedDates: loaded ? Number(loaded[2]) - Number(loaded[1]) : null,
    exit: s1.code,
    ...summarize(double.jobLog.slice(from), aborted),
  };
  if (s1.code !== 0)
    process.stderr.write(`stage1 exited ${s1.code}:\n${s1.stdout.slice(-2000)}${s1.stderr.slice(-2000)}\n`);

  aborted = double.abortedTransactions;
  from = double.jobLog.length;
  const s3 = await cli(['stage3', ...range]);
  const processed = /(\d+) date\(s\) processed/.exec(s3.stdout);
  const stage3 = {
    dates: Number(processed?.[1] ?? 0),
    exit: s3.code,
    ...summarize(double.jobLog.slice(from), aborted),
  };
  if (s3.code !== 0)
    process.stderr.write(`stage3 exited ${s3.code}:\n${s3.stdout.slice(-2000)}${s3.stderr.slice(-2000)}\n`);

  // The double's own rule, checked in the same run: two transactions mutating one table at once, one cancelled.
  aborted = double.abortedTransactions;
  const script = [
    'BEGIN TRANSACTION;',
    'DELETE FROM nba_raw.nbac_schedule WHERE game_date = @d;',
    'COMMIT TRANSACTION;',
  ].join('\n');
  const post = () =>
    fetch(`${double.url}/bigquery/v2/projects/${PROJECT}/queries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: script,
        useLegacySql: false,
        parameterMode: 'NAMED',
        queryParameters: [{ name: 'd', parameterType: { type: 'DATE' }, parameterValue: { value: '1999-01-01' } }],
      }),
    }).then((r) => r.status);
  const statuses = (await Promise.all([post(), post()])).sort();
  const cancelsConcurrentMutations = double.abortedTransactions - aborted === 1 && statuses.join() === '200,400';

  const result = {
    stage1: {
      dates: stage1.dates,
      parallelism,
      abortedTransactions: stage1.abortedTransactions,
      failedDates: stage1.failedDates,
      jobs: stage1.jobs,
      modeledMinutes: stage1.modeledMinutes,
      bytesBilledMiB: stage1.bytesBilledMiB,
    },
    stage3: {
      dates: stage3.dates,
      jobs: stage3.jobs,
      modeledMinutes: stage3.modeledMinutes,
      bytesBilledMiB: stage3.bytesBilledMiB,
    },
    double: { cancelsConcurrentMutations },
  };
  console.log(
    `BigQuery benchmark (the double at BigQuery's typical latencies, time scale ${scale}): --season ${values.season} --season-type regular`,
  );
  console.log(
    'stage   dates  jobs  by kind                                   modeled min  aborted  failed dates  billed MiB',
  );
  for (const [name, s] of [
    ['stage1', stage1],
    ['stage3', stage3],
  ] as const) {
    const failed = 'failedDates' in s ? String(s.failedDates) : '-';
    console.log(
      `${name.padEnd(7)} ${String(s.dates).padStart(5)} ${String(s.jobs).padStart(5)}  ${JSON.stringify(s.byKind).padEnd(40)} ${String(s.modeledMinutes).padStart(11)} ${String(s.abortedTransactions).padStart(8)}  ${failed.padStart(12)}  ${String(s.bytesBilledMiB).padStart(10)}`,
    );
  }
  console.log(`the double cancels one of two concurrent mutating transactions: ${cancelsConcurrentMutations}`);
  if (values.json) console.log(JSON.stringify(result));
  process.exitCode = s1.code === 0 && s3.code === 0 && cancelsConcurrentMutations ? 0 : 1;
} finally {
  await double.close();
  rmSync(dir, { recursive: true, force: true });
}
