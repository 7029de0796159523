// Benchmark: Stage 1 (Phase 1-2 as an Indexed Job on the local runtime) for the regular seasons, at
// parallelism 1 and 2, on the embedded defaults; prints wall time, peak memory, CPU time (the stage1 process and
// its pods, per date, and how busy the machine's cores were) and the speed-up.
// Usage: npm run bench:stage1 -- [--season all] [--parallelism 1,2]
// Needs `npm run build` (the pods run build/jobs/phase2-date/main.js).

import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../core/paths.js';
import { treeCpuSeconds, treeRssKiB } from './memory.js';

const { values } = parseArgs({
  options: { season: { type: 'string', default: 'all' }, parallelism: { type: 'string', default: '1,2' } },
});

interface Measure {
  parallelism: number;
  wallSeconds: number;
  peakRssMiB: number;
  /** CPU seconds of the stage1 process, and of its pods together (sampled every 100 ms: the last 100 ms missed). */
  parentCpu: number;
  podsCpu: number;
  dates: number;
  exit: number | null;
}

/** One fresh workspace and one `backfill stage1` process; memory sampled over its whole process tree. */
async function measure(parallelism: number): Promise<Measure> {
  const dir = mkdtempSync(join(tmpdir(), 'nba-bench-stage1-'));
  cpSync(join(packageRoot(), 'plans'), join(dir, 'plans'), { recursive: true });
  const cli = join(packageRoot(), 'build', 'cli', 'main.js');
  const args = [
    cli,
    'stage1',
    '--season',
    String(values.season),
    '--season-type',
    'regular',
    '--parallelism',
    String(parallelism),
  ];
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let peakKiB = 0;
  const cpu = new Map<number, number>();
  const sampler = setInterval(() => {
    if (!child.pid) return;
    peakKiB = Math.max(peakKiB, treeRssKiB(child.pid));
    for (const [pid, seconds] of treeCpuSeconds(child.pid)) cpu.set(pid, Math.max(cpu.get(pid) ?? 0, seconds));
  }, 100);
  const exit = await new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  clearInterval(sampler);
  const wallSeconds = (performance.now() - started) / 1000;
  const dates = [...stdout.matchAll(/(\d+) of (\d+) dates loaded/g)].reduce((n, m) => n + Number(m[2]), 0);
  if (exit !== 0) process.stderr.write(stdout.slice(-2000) + stderr);
  rmSync(dir, { recursive: true, force: true });
  const parentCpu = (child.pid && cpu.get(child.pid)) || 0;
  const podsCpu = [...cpu.values()].reduce((a, b) => a + b, 0) - parentCpu;
  return { parallelism, wallSeconds, peakRssMiB: peakKiB / 1024, parentCpu, podsCpu, dates, exit };
}

console.log(
  `Stage 1 benchmark: --season ${values.season} --season-type regular, Node ${process.version}, ${process.platform}`,
);
const results: Measure[] = [];
for (const p of String(values.parallelism).split(',').map(Number)) {
  const m = await measure(p);
  results.push(m);
  console.log(
    `parallelism ${p}: ${m.dates} dates in ${m.wallSeconds.toFixed(1)} s (${((1000 * m.wallSeconds) / Math.max(1, m.dates)).toFixed(1)} ms/date), peak RSS ${m.peakRssMiB.toFixed(0)} MiB (stage1 process and its pods), exit ${m.exit}`,
  );
  const perDate = (s: number) => ((1000 * s) / Math.max(1, m.dates)).toFixed(1);
  console.log(
    `  CPU: stage1 process ${m.parentCpu.toFixed(1)} s (${perDate(m.parentCpu)} ms/date), pods ${m.podsCpu.toFixed(1)} s (${perDate(m.podsCpu)} ms/date); the ${availableParallelism()} cores ${((100 * (m.parentCpu + m.podsCpu)) / (m.wallSeconds * availableParallelism())).toFixed(0)}% busy with it`,
  );
}
const one = results.find((r) => r.parallelism === 1);
for (const r of results.filter((x) => x.parallelism > 1)) {
  if (one) console.log(`speed-up at parallelism ${r.parallelism}: ${(one.wallSeconds / r.wallSeconds).toFixed(2)}x`);
}
process.exitCode = results.every((r) => r.exit === 0) ? 0 : 1;
