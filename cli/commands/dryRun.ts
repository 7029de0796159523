// `backfill run --dry-run`: what a run would do, season by season and stage by stage, from the committed plans
// and the warehouse opened read-only. It writes nothing: no plan file, no log, no warehouse file.

import { join } from 'node:path';
import type { Command } from 'commander';
import { openWarehouseReadOnly } from '../../core/adapters/index.js';
import type { IsoDate } from '../../core/dates.js';
import { EXIT_OK, ProcessingError, WarehouseLockedError } from '../../core/errors.js';
import { resolveSeasons } from '../../core/pipeline/seasons.js';
import { planPath, readCommittedPlan, selectDates, validateSelection } from '../../core/plan.js';
import { observeSeason } from '../../core/stages/observe.js';
import { configFrom, type GlobalFlags } from '../context.js';
import type { RuntimeFlags, SelectionFlags } from '../selection.js';
import type { Streams } from '../streams.js';

/** One season of `run --dry-run --format json`. Dates are lists; null where the plan is not known yet. */
export interface DryRunSeasonJson {
  readonly season: string;
  readonly plan: {
    readonly file: string;
    /** Whether a plan file exists: without one, run loads the schedule and writes it first. */
    readonly committed: boolean;
    readonly dates: number | null;
    readonly selected: readonly IsoDate[] | null;
  };
  /** Stage 1 loads every selected date: those never loaded, those failing, and those loaded already. */
  readonly stage1: {
    readonly neverLoaded: readonly IsoDate[];
    readonly failing: readonly IsoDate[];
    /** Loaded before: read again, and written again only if their raw files changed (or with --force). */
    readonly loaded: readonly IsoDate[];
    readonly force: boolean;
  } | null;
  /** Stage 3 resumes at `from`, the first selected date not complete or stale, and runs every date after it. */
  readonly stage3: {
    readonly complete: number;
    readonly stale: readonly IsoDate[];
    readonly from: IsoDate | null;
    readonly dates: readonly IsoDate[];
  } | null;
  /** The gate and validation run over every selected date. */
  readonly validate: { readonly dates: number } | null;
}

/** `backfill run --dry-run --format json`. */
export interface DryRunJson {
  readonly dryRun: true;
  readonly seasons: readonly DryRunSeasonJson[];
}

function span(dates: readonly IsoDate[]): string {
  if (dates.length === 0) return '';
  return dates.length === 1 ? ` (${dates[0]})` : ` (${dates[0]} .. ${dates.at(-1)})`;
}

function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The season's dry run: what each stage of `run` would do with these flags. */
async function dryRunSeasons(command: Command, flags: SelectionFlags & RuntimeFlags): Promise<DryRunSeasonJson[]> {
  const config = configFrom(command.optsWithGlobals<GlobalFlags>());
  const seasons = resolveSeasons(flags.season);
  for (const season of seasons) validateSelection(season, flags);
  const out: DryRunSeasonJson[] = [];
  let warehouse: Awaited<ReturnType<typeof openWarehouseReadOnly>>;
  try {
    warehouse = await openWarehouseReadOnly(config);
  } catch (err) {
    if (!(err instanceof WarehouseLockedError)) throw err;
    const holder = err.holderPid === undefined ? 'another process' : `another process (PID ${err.holderPid})`;
    throw new ProcessingError(
      `run --dry-run cannot read ${err.path}: ${holder} is writing it, and DuckDB opens no reader beside a file's writer; run it again when that process has ended (\`backfill status\` shows where it stands meanwhile)`,
      { cause: err },
    );
  }
  try {
    for (const season of seasons) {
      const committed = await readCommittedPlan(config.planDir, season.label);
      const file = planPath(config.planDir, season.label);
      if (!committed) {
        out.push({
          season: season.label,
          plan: { file, committed: false, dates: null, selected: null },
          stage1: null,
          stage3: null,
          validate: null,
        });
        continue;
      }
      const selected = selectDates(committed.plan, season, flags).map((d) => d.date);
      const obs = await observeSeason(warehouse, committed.plan, join(config.logDir, 'reports'));
      const loaded = new Set(obs.loadedDates);
      const failing = new Set(obs.failedDates);
      const complete = new Set(obs.stage3CompleteDates);
      const stale = new Set(obs.staleDates ?? []);
      const first = selected.findIndex((d) => !complete.has(d) || stale.has(d));
      out.push({
        season: season.label,
        plan: { file, committed: true, dates: committed.plan.dates.length, selected },
        stage1: {
          neverLoaded: selected.filter((d) => !loaded.has(d) && !failing.has(d)),
          failing: selected.filter((d) => failing.has(d)),
          loaded: selected.filter((d) => loaded.has(d) && !failing.has(d)),
          force: flags.force ?? false,
        },
        stage3: {
          complete: selected.filter((d) => complete.has(d) && !stale.has(d)).length,
          stale: selected.filter((d) => stale.has(d)),
          from: first < 0 ? null : (selected[first] ?? null),
          dates: first < 0 ? [] : selected.slice(first),
        },
        validate: { dates: selected.length },
      });
    }
  } finally {
    await warehouse?.close();
  }
  return out;
}

/** The dry run as people read it. */
export function formatDryRun(seasons: readonly DryRunSeasonJson[], seasonType: string): string {
  const lines = ['DRY RUN: nothing is loaded or written (not even the plan files).'];
  for (const s of seasons) {
    lines.push('', `${s.season}`);
    if (!s.plan.committed || !s.stage1 || !s.stage3 || !s.plan.selected) {
      lines.push(
        `  plan        no plan file (${s.plan.file}): run loads the schedule and writes it first; the dates are known only then (backfill plan --season ${s.season} lists them)`,
      );
      continue;
    }
    const sel = s.plan.selected;
    lines.push(
      `  plan        ${s.plan.file}: ${count(s.plan.dates ?? 0, 'game date')}, ${sel.length} selected (--season-type ${seasonType})${span(sel)}; the schedule is loaded again and checked against it`,
    );
    const s1 = s.stage1;
    const again = s1.force
      ? 'written again (--force)'
      : 'read again, written only if their raw files changed (--force writes them)';
    lines.push(
      `  stage 1     would load ${count(sel.length, 'date')}: ${s1.neverLoaded.length} never loaded, ${s1.failing.length} failing now${span(s1.failing)}, ${s1.loaded.length} loaded already (${again})`,
    );
    lines.push(`  gate        over ${count(sel.length, 'date')}, after Stage 1`);
    const s3 = s.stage3;
    lines.push(
      s3.from === null
        ? `  stage 3     nothing to run: all ${count(sel.length, 'date')} complete`
        : `  stage 3     would run ${count(s3.dates.length, 'date')} from ${s3.from}${s3.dates.length > 1 ? ` to ${s3.dates.at(-1)}` : ''}; ${s3.complete} complete before it are skipped${s3.stale.length > 0 ? `; ${s3.stale.length} STALE (inputs corrected)${span(s3.stale)}` : ''}`,
    );
    lines.push(`  validation  over ${count(sel.length, 'date')}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function dryRun(command: Command, flags: SelectionFlags & RuntimeFlags, io: Streams): Promise<number> {
  const seasons = await dryRunSeasons(command, flags);
  io.say(formatDryRun(seasons, flags.seasonType));
  io.json({ dryRun: true, seasons } satisfies DryRunJson);
  return EXIT_OK;
}
