// The command that fixes each group of a validation check's failures: which stage loads or computes the dates again.
// Pure: no I/O, no clock; validate.ts hands it what it read.

import type { IsoDate } from '../dates.js';
import { PROCESSORS, type ProcessorDefinition } from '../pipeline/definition.js';
import {
  FIX_KINDS,
  type FixKind,
  type ValidationCheck,
  type ValidationFailure,
  type ValidationFix,
} from './validation.js';

/** What a fix depends on, as validate read it. */
export interface FixFacts {
  /** The season (label) of a selected date. */
  readonly seasonOf: (date: IsoDate) => string | undefined;
  /** The status of a processor's latest run on a date (`success`, `failed`, `blocked`); undefined: it never ran. */
  readonly runStatus: (processor: string, date: IsoDate) => string | undefined;
}

interface FixKey {
  readonly kind: FixKind;
  /** The processor that `recompute` runs again. */
  readonly processor?: string;
}

function tableOf(p: ProcessorDefinition): string | null {
  return p.output.kind === 'table' ? `${p.output.table.dataset}.${p.output.table.name}` : null;
}

const BY_NAME = new Map(PROCESSORS.map((p) => [p.name, p]));
const WRITER = new Map(PROCESSORS.flatMap((p) => (tableOf(p) ? [[tableOf(p) as string, p] as const] : [])));
const PHASE12 = PROCESSORS.filter((p) => p.phase <= 2);

/** A date's Phase 1-2 as run history tells it: a latest run not successful, a processor that never ran, or fine. */
function phase12State(facts: FixFacts, date: IsoDate): 'failed' | 'never' | 'ok' {
  let never = false;
  for (const p of PHASE12) {
    const status = facts.runStatus(p.name, date);
    if (status === undefined) never = true;
    else if (status !== 'success') return 'failed';
  }
  return never ? 'never' : 'ok';
}

/**
 * A Phase 1-2 table-date: `retry` re-runs a date whose latest run failed, `stage1` loads a date never run, and a
 * date whose runs all succeeded is loaded again with `--force` (its rows are missing or wrong all the same).
 */
function rawFix(facts: FixFacts, date: IsoDate): FixKey {
  const state = phase12State(facts, date);
  return { kind: state === 'failed' ? 'retry' : state === 'never' ? 'load' : 'reload' };
}

/**
 * A Phase 3-4 table-date: Stage 3 when the writer's latest run did not succeed, the date is stale, or its
 * Phase 1-2 is being fixed (`redo`: a reload makes the results that read it stale, and Stage 3 recomputes stale
 * dates); else the writer alone again, its run having succeeded over complete inputs.
 */
function derivedFix(facts: FixFacts, writer: ProcessorDefinition, date: IsoDate, redo: boolean): FixKey {
  if (facts.runStatus(writer.name, date) !== 'success' || redo) return { kind: 'stage3' };
  return { kind: 'recompute', processor: writer.name };
}

/** The fixes one failure needs; none when its table is not the pipeline's. */
function fixesOfFailure(
  check: string,
  f: ValidationFailure,
  facts: FixFacts,
  redo: (table: string, date: IsoDate) => boolean,
): FixKey[] {
  const date = f.date;
  if (date === null) return [];
  if (check === 'runs_complete') {
    const p = BY_NAME.get(f.key ?? '');
    if (!p) return [];
    if (p.phase >= 3) return [{ kind: 'stage3' }];
    return [{ kind: facts.runStatus(p.name, date) === undefined ? 'load' : 'retry' }];
  }
  if (check === 'runs_current') return [{ kind: 'stage3' }];
  const writer = WRITER.get(f.table);
  if (!writer) return [];
  if (writer.phase >= 3) return [derivedFix(facts, writer, date, redo(f.table, date))];
  const raw = rawFix(facts, date);
  // The schedule's score also disagrees when only the offense summary is wrong (the detail says which): with
  // Phase 1-2 and the summary's run fine, recomputing the summary is the other possible fix.
  const offense = WRITER.get('nba_analytics.team_offense_game_summary');
  if (check === 'schedule_scores_agree' && raw.kind === 'reload' && offense) {
    return [raw, derivedFix(facts, offense, date, false)];
  }
  return [raw];
}

/** Sortable: the kind's order, the season, then the processor's place in the pipeline. */
function fixId(key: FixKey, season: string): string {
  const place = key.processor ? PROCESSORS.findIndex((p) => p.name === key.processor) : 0;
  return `${FIX_KINDS.indexOf(key.kind)}|${season}|${String(place).padStart(3, '0')}`;
}

function byId<T>(a: [string, T], b: [string, T]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

function rangeFlags(dates: readonly IsoDate[]): string {
  return `--start-date ${dates[0]} --end-date ${dates.at(-1)}`;
}

function commandOf(key: FixKey, season: string, dates: readonly IsoDate[]): { command: string; reason: string } {
  const range = rangeFlags(dates);
  switch (key.kind) {
    case 'retry':
      return {
        command: `backfill retry --season ${season}`,
        reason:
          `The latest Phase 1-2 run failed on these dates: see the errors and logs with \`backfill failures --season ${season}\`, ` +
          'fix the cause, then re-run exactly the failed dates',
      };
    case 'load':
      return {
        command: `backfill stage1 --season ${season} ${range}`,
        reason:
          'Phase 1-2 never ran on these dates: Stage 1 loads them (every date of the plan in the range), then ' +
          `check the gate with \`backfill gate --season ${season} ${range}\``,
      };
    case 'reload':
      return {
        command: `backfill stage1 --season ${season} ${range} --force`,
        reason:
          'Phase 1-2 ran successfully, yet rows are missing or wrong: once the source (or the Phase 2 processor) is ' +
          'right, load the dates again; --force writes them even when the scraped files are unchanged. Phase 3-4 ' +
          'results that read changed rows turn stale and Stage 3 recomputes them. If the source still lacks the ' +
          'rows, the gap stays',
      };
    case 'recompute': {
      const phase = BY_NAME.get(key.processor ?? '')?.phase;
      const when = dates.length === 1 ? `--date ${dates[0]}` : range;
      return {
        command: `backfill process ${key.processor} ${when}`,
        reason:
          `${key.processor}'s latest run succeeded over complete inputs, yet its rows are missing or wrong: once ` +
          `the cause is fixed, run it again${phase === 3 ? '; the Phase 4 results that read its rows turn stale and Stage 3 recomputes them' : ''}`,
      };
    }
    case 'stage3':
      return {
        command: `backfill stage3 --season ${season} ${range}`,
        reason:
          'Phase 3-4 is not complete on these dates (never ran, failed or blocked), is stale, or reads Phase 1-2 ' +
          'rows fixed above: Stage 3 resumes at the first incomplete or stale date; it is refused until the gate ' +
          'passes for these dates, so run the Phase 1-2 fixes first',
      };
  }
}

/**
 * Each check with its fixes: its failures grouped by kind of fix and season, one command a group, in FIX_KINDS
 * order. A group's command covers its dates from the first to the last (Stage 1 and Stage 3 skip or redo the
 * dates between harmlessly: each date is an idempotent replace).
 */
export function withFixes(checks: readonly ValidationCheck[], facts: FixFacts): ValidationCheck[] {
  const rawTables = new Set(PHASE12.map(tableOf).filter((t): t is string => t !== null));
  const rawProblemDates = new Set<IsoDate>();
  const stale = new Set<string>();
  for (const c of checks) {
    for (const f of c.failures) {
      if (f.date === null) continue;
      const p = c.name === 'runs_complete' ? BY_NAME.get(f.key ?? '') : undefined;
      if (rawTables.has(f.table) || (p !== undefined && p.phase <= 2)) rawProblemDates.add(f.date);
      if (c.name === 'runs_current') stale.add(`${f.table}|${f.date}`);
    }
  }
  const redo = (table: string, date: IsoDate) =>
    stale.has(`${table}|${date}`) || rawProblemDates.has(date) || phase12State(facts, date) !== 'ok';
  return checks.map((c) => {
    if (c.passed) return { ...c, fixes: [] };
    const groups = new Map<string, { key: FixKey; season: string; dates: Set<IsoDate>; tables: Set<string> }>();
    for (const f of c.failures) {
      const season = f.date === null ? undefined : facts.seasonOf(f.date);
      if (season === undefined || f.date === null) continue;
      for (const key of fixesOfFailure(c.name, f, facts, redo)) {
        const id = fixId(key, season);
        let g = groups.get(id);
        if (!g) groups.set(id, (g = { key, season, dates: new Set(), tables: new Set() }));
        g.dates.add(f.date);
        g.tables.add(f.table);
      }
    }
    return { ...c, fixes: [...groups.entries()].sort(byId).map(([, g]) => fixOf(g.key, g.season, g.dates, g.tables)) };
  });
}

function fixOf(key: FixKey, season: string, dates: Iterable<IsoDate>, tables: Iterable<string>): ValidationFix {
  const sorted = [...new Set(dates)].sort();
  return {
    kind: key.kind,
    season,
    ...(key.processor ? { processor: key.processor } : {}),
    ...commandOf(key, season, sorted),
    dates: sorted,
    tables: [...new Set(tables)],
  };
}

/**
 * Fixes of several checks as one list: one command per kind, season and processor over all their dates, in the
 * order to run them (what a reader runs once for the whole report).
 */
export function mergeFixes(fixes: readonly ValidationFix[]): ValidationFix[] {
  const groups = new Map<string, { key: FixKey; season: string; dates: IsoDate[]; tables: string[] }>();
  for (const f of fixes) {
    const key: FixKey = f.processor ? { kind: f.kind, processor: f.processor } : { kind: f.kind };
    const id = fixId(key, f.season);
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { key, season: f.season, dates: [], tables: [] }));
    g.dates.push(...f.dates);
    g.tables.push(...f.tables);
  }
  return [...groups.entries()].sort(byId).map(([, g]) => fixOf(g.key, g.season, g.dates, g.tables));
}
