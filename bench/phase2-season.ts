// Benchmark: Phase 1-2 for whole seasons on the embedded defaults; prints wall time and peak memory.
// Usage: npm run bench:phase2 -- [--season 2021-22|all] [--season-type regular|playoffs|all]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openAdapters } from '../core/adapters/index.js';
import { loadConfig } from '../core/config.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { silentLogger } from '../core/log.js';
import { resolveSeasons, type SeasonTypeChoice } from '../core/pipeline/seasons.js';
import { buildPlan, loadSeasonSchedule, selectDates } from '../core/plan.js';

const { values } = parseArgs({
  options: { season: { type: 'string', default: '2021-22' }, 'season-type': { type: 'string', default: 'regular' } },
});
const seasonType = values['season-type'] as SeasonTypeChoice;
const dir = mkdtempSync(join(tmpdir(), 'nba-bench-'));
const config = loadConfig({
  env: {},
  flags: { warehouse: `duckdb:${join(dir, 'warehouse.duckdb')}`, objects: `file:${join(dir, 'objects')}` },
});
const adapters = await openAdapters(config);
const log = silentLogger();
const trigger = { command: 'bench', stage: 'stage1' };
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

console.log(`Phase 1-2 benchmark: --season ${values.season} --season-type ${seasonType}, Node ${process.version}`);
let failures = 0;
const started = performance.now();
for (const season of resolveSeasons(String(values.season))) {
  const t0 = performance.now();
  await loadSeasonSchedule(adapters, log, season, trigger);
  const plan = await buildPlan(adapters, season);
  const dates = selectDates(plan, season, { seasonType });
  const t1 = performance.now();
  const perDate: number[] = [];
  for (const d of dates) {
    const s = performance.now();
    const r = await runPhases1And2(adapters, log, d.date, { trigger, skipDownstreamTrigger: true });
    perDate.push(performance.now() - s);
    if (!r.ok) failures++;
  }
  const t2 = performance.now();
  perDate.sort((a, b) => a - b);
  const median = perDate[Math.floor(perDate.length / 2)] ?? 0;
  console.log(
    `${season.label}: schedule+plan ${((t1 - t0) / 1000).toFixed(1)} s; Phase 1-2 for ${dates.length} dates ${((t2 - t1) / 1000).toFixed(1)} s ` +
      `(median ${median.toFixed(0)} ms/date, worst ${(perDate.at(-1) ?? 0).toFixed(0)} ms); season total ${((t2 - t0) / 1000).toFixed(1)} s`,
  );
}
const wall = (performance.now() - started) / 1000;
const peakRss = process.resourceUsage().maxRSS * 1024;
console.log(`total wall ${wall.toFixed(1)} s; peak RSS ${mib(peakRss)} MiB; failed dates ${failures}`);
await adapters.close();
rmSync(dir, { recursive: true, force: true });
process.exitCode = failures > 0 ? 1 : 0;
