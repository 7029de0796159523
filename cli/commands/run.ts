// `backfill run`: plans, then lets the reconcile drive the local executor (observe -> decide -> act) until
// nothing is left to do; prints each decision with its reason, and the outcome.

import type { Command } from 'commander';
import { EXIT_OK, EXIT_PROCESSING_FAILURE } from '../../core/errors.js';
import type { GateResult } from '../../core/gate.js';
import type { Action } from '../../core/kubernetes/reconcile.js';
import { locateDate, resolveSeasons } from '../../core/pipeline/seasons.js';
import { buildPlan, selectDates, validateSelection, writePlan } from '../../core/plan.js';
import { drive } from '../../core/ports/executor.js';
import type { Stage3Summary } from '../../core/stages/stage3.js';
import { withContext, withoutAdapters } from '../context.js';
import { LocalExecutor, type LocalResults } from '../localExecutor.js';
import { addRuntimeOptions, addSelectionOptions, type RuntimeFlags, type SelectionFlags } from '../selection.js';
import { formatResume, GracefulStop, sameCommand } from '../signals.js';
import { formatOf, formatOption, streamsFor } from '../streams.js';
import { dryRun } from './dryRun.js';
import { loadScheduleAgainstPlan } from './plan.js';
import type { Stage1SeasonJson } from './stage1.js';

/** How each decision is headed in the output (the stage it belongs to). */
export const DECISION_TITLES: Readonly<Record<Action['kind'], string>> = {
  startStage1: 'stage 1',
  reportStage1Failures: 'stage 1 failures',
  runGate: 'quality gate',
  publishGate: 'gate verdict',
  createStage3Job: 'stage 3',
  reportStage3Failure: 'stage 3 failure',
  validate: 'stage 4',
  warn: 'warning',
};

/** One decision as run prints it: `== <stage> <season>: <why>`. */
export function decisionLine(d: Action): string {
  return `== ${DECISION_TITLES[d.kind]} ${d.season}: ${d.why}\n`;
}

/** Where a stopped run stopped: in the stage of the decision it was carrying out. */
function stoppedWhere(last: Action | undefined): string {
  if (last?.kind === 'startStage1') return `in Stage 1 of ${last.season}`;
  if (last?.kind === 'createStage3Job') return `in Stage 3 of ${last.season}`;
  return last ? `after "${last.why}"` : 'before Stage 1';
}

/** How a run ended, in `run --format json`. */
export type RunOutcome =
  | 'passed'
  | 'validation_failed'
  | 'gate_failed'
  | 'stage3_failed'
  | 'interrupted'
  | 'nothing_selected';

/** One season of `run --format json`: what each stage did (null: it did not run). */
export interface RunSeasonJson {
  readonly season: string;
  readonly plan: { readonly file: string; readonly dates: number; readonly games: number; readonly selected: number };
  readonly stage1: Stage1SeasonJson | null;
  readonly gate: GateResult | null;
  readonly stage3: Stage3Summary | null;
  readonly validation: { readonly passed: boolean; readonly report: string | null } | null;
}

/** `backfill run --format json`. */
export interface RunJson {
  readonly dryRun: false;
  readonly seasons: readonly RunSeasonJson[];
  /** Every decision in the order it was taken, as the table format prints them. */
  readonly decisions: readonly { readonly stage: string; readonly season: string; readonly why: string }[];
  readonly outcome: RunOutcome;
  /** Commands to run after fixing the cause (a failed gate); empty otherwise. */
  readonly next: readonly string[];
  /** The signal that stopped the run, or null; `resume` is then the command that resumes it. */
  readonly interrupted: string | null;
  readonly resume: string | null;
  readonly exitCode: number;
}

interface Ending {
  readonly outcome: RunOutcome;
  readonly next: readonly string[];
  readonly text: string;
  readonly exitCode: number;
}

/** The last words and exit code, from what the executor did. */
function finish(results: LocalResults, flags: SelectionFlags): Ending {
  const failedGates = [...results.gates].filter(([, g]) => !g.passed);
  if (failedGates.length > 0) {
    const commands: string[] = [];
    if (failedGates.some(([, g]) => g.runProblems.some((r) => r.problem === 'failed')))
      commands.push(`backfill retry --season ${flags.season}`);
    for (const [season, gate] of failedGates) {
      const missing = [...new Set(gate.tables.flatMap((t) => t.missingDates))]
        .filter((d) => locateDate(d)?.season.label === season)
        .sort();
      if (missing.length > 0) {
        commands.push(`backfill stage1 --season ${season} --start-date ${missing[0]} --end-date ${missing.at(-1)}`);
      }
    }
    const check = `backfill gate --season ${flags.season} --season-type ${flags.seasonType}`;
    return {
      outcome: 'gate_failed',
      next: [...commands, check],
      text: `Stopped at the gate. Fix the cause (the source may simply lack the data: see the missing games), then load the dates again:\n${commands.map((c) => `  ${c}\n`).join('')}and check again with:\n  ${check}\n`,
      exitCode: EXIT_PROCESSING_FAILURE,
    };
  }
  if ([...results.stage3.values()].some((s) => s.status !== 'succeeded')) {
    return { outcome: 'stage3_failed', next: [], text: '', exitCode: EXIT_PROCESSING_FAILURE };
  }
  if (results.validations.size === 0) {
    return {
      outcome: 'nothing_selected',
      next: [],
      text: '== done: no dates selected, nothing to do\n',
      exitCode: EXIT_OK,
    };
  }
  const passed = [...results.validations.values()].every((p) => p);
  return passed
    ? { outcome: 'passed', next: [], text: '== done: every stage PASSED\n', exitCode: EXIT_OK }
    : {
        outcome: 'validation_failed',
        next: [],
        text: '== done, but validation FAILED: see the report\n',
        exitCode: EXIT_PROCESSING_FAILURE,
      };
}

export function registerRun(program: Command): void {
  addRuntimeOptions(
    addSelectionOptions(
      program
        .command('run')
        .description(
          'the whole backfill: plan, Stage 1 (Phase 1-2 in parallel), the gate, Stage 3 (Phase 3-4), Stage 4 validation',
        ),
    ),
  )
    .option('--accept-plan-changes', 'accept games of the committed plan that the source no longer reports')
    .option(
      '--dry-run',
      'say what would run (seasons, dates per stage, which are done already or would be skipped) and write nothing, not even the plan file',
    )
    .addOption(formatOption())
    .addHelpText(
      'after',
      '\nWhen the gate fails, run stops there, lists what is missing and says how to load it again. When Stage 3\nstops, run it again after the fix: Stage 3 resumes where it stopped. SIGINT (Ctrl-C) or SIGTERM stops it\nbetween dates (exit 130 or 143, with the command that resumes); a second one stops it at once.',
    )
    .action(
      async (
        flags: SelectionFlags & RuntimeFlags & { acceptPlanChanges?: boolean; dryRun?: boolean; format: string },
        command: Command,
      ) => {
        const io = streamsFor(formatOf(flags));
        if (flags.dryRun) {
          await withoutAdapters(() => dryRun(command, flags, io));
          return;
        }
        const stop = new GracefulStop();
        await withContext(command, async (ctx) => {
          const seasons = resolveSeasons(flags.season);
          for (const season of seasons) validateSelection(season, flags);
          const selections = [];
          const plans = new Map<string, RunSeasonJson['plan']>();
          const load = await loadScheduleAgainstPlan(ctx, seasons, 'backfill run', flags.acceptPlanChanges, io.say);
          for (const season of seasons) {
            io.say(`== plan ${season.label}: loading the schedule\n`);
            await load(season, '   ');
            const plan = await buildPlan(ctx.adapters, season);
            const file = await writePlan(ctx.config.planDir, plan);
            const dates = selectDates(plan, season, flags);
            io.say(
              `   ${plan.totals.dates} game dates, ${plan.totals.games} final games -> ${file}; ${dates.length} dates selected (--season-type ${flags.seasonType})\n`,
            );
            plans.set(season.label, {
              file,
              dates: plan.totals.dates,
              games: plan.totals.games,
              selected: dates.length,
            });
            selections.push({ season, dates });
          }
          const executor = new LocalExecutor(ctx, flags, selections, stop.signal, io);
          const decisions: RunJson['decisions'][number][] = [];
          const driven = await drive(executor, {
            onDecision: (d) => {
              decisions.push({ stage: DECISION_TITLES[d.kind], season: d.season, why: d.why });
              io.say(decisionLine(d));
            },
            stopped: () => stop.received !== undefined,
          });
          let ending: Ending;
          let resume: string | null = null;
          if (driven.stopped) {
            // Loading again what Stage 1 loaded replaces the same rows, and Stage 3 resumes by itself: the same command.
            resume = sameCommand();
            ending = {
              outcome: 'interrupted',
              next: [],
              text: formatResume(stop, resume, `stopped ${stoppedWhere(driven.decisions.at(-1))}`),
              exitCode: stop.exitCode ?? EXIT_PROCESSING_FAILURE,
            };
          } else {
            ending = finish(executor, flags);
          }
          io.say(ending.text);
          io.json({
            dryRun: false,
            seasons: seasons.map((s) => runSeasonJson(s.label, plans, executor)),
            decisions,
            outcome: ending.outcome,
            next: ending.next,
            interrupted: stop.received ?? null,
            resume,
            exitCode: ending.exitCode,
          } satisfies RunJson);
          return ending.exitCode;
        }).finally(() => stop.finish());
      },
    );
}

function runSeasonJson(
  season: string,
  plans: ReadonlyMap<string, RunSeasonJson['plan']>,
  results: LocalResults,
): RunSeasonJson {
  const validation = results.validations.get(season);
  return {
    season,
    plan: plans.get(season) ?? { file: '', dates: 0, games: 0, selected: 0 },
    stage1: results.stage1.get(season) ?? null,
    gate: results.gates.get(season) ?? null,
    stage3: results.stage3.get(season) ?? null,
    validation:
      validation === undefined ? null : { passed: validation, report: results.reportFiles.get(season) ?? null },
  };
}
