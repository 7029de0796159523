// `backfill run`: plans, then lets the reconcile drive the local executor (observe -> decide -> act) until
// nothing is left to do; prints each decision with its reason, and the outcome.

import type { Command } from 'commander';
import { EXIT_OK, EXIT_PROCESSING_FAILURE } from '../../core/errors.js';
import type { Action } from '../../core/kubernetes/reconcile.js';
import { locateDate, resolveSeasons } from '../../core/pipeline/seasons.js';
import { buildPlan, selectDates, validateSelection, writePlan } from '../../core/plan.js';
import { drive } from '../../core/ports/executor.js';
import { withContext } from '../context.js';
import { LocalExecutor, type LocalResults } from '../localExecutor.js';
import { addRuntimeOptions, addSelectionOptions, type RuntimeFlags, type SelectionFlags } from '../selection.js';
import { formatResume, GracefulStop, sameCommand } from '../signals.js';
import { loadScheduleAgainstPlan } from './plan.js';

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

/** The last words and exit code, from what the executor did. */
function finish(results: LocalResults, flags: SelectionFlags): number {
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
    process.stdout.write(
      `Stopped at the gate. Fix the cause (the source may simply lack the data: see the missing games), then load the dates again:\n${commands.map((c) => `  ${c}\n`).join('')}and check again with:\n  backfill gate --season ${flags.season} --season-type ${flags.seasonType}\n`,
    );
    return EXIT_PROCESSING_FAILURE;
  }
  if ([...results.stage3.values()].some((s) => s.status !== 'succeeded')) return EXIT_PROCESSING_FAILURE;
  if (results.validations.size === 0) {
    process.stdout.write('== done: no dates selected, nothing to do\n');
    return EXIT_OK;
  }
  const passed = [...results.validations.values()].every((p) => p);
  process.stdout.write(passed ? '== done: every stage passed\n' : '== done, but validation failed: see the report\n');
  return passed ? EXIT_OK : EXIT_PROCESSING_FAILURE;
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
    .addHelpText(
      'after',
      '\nWhen the gate fails, run stops there, lists what is missing and says how to load it again. When Stage 3\nstops, run it again after the fix: Stage 3 resumes where it stopped. SIGINT (Ctrl-C) or SIGTERM stops it\nbetween dates (exit 130 or 143, with the command that resumes); a second one stops it at once.',
    )
    .action(async (flags: SelectionFlags & RuntimeFlags & { acceptPlanChanges?: boolean }, command: Command) => {
      const stop = new GracefulStop();
      // Loading again what Stage 1 loaded replaces the same rows, and Stage 3 resumes by itself: the same command.
      const interrupted = (where: string) => {
        process.stdout.write(formatResume(stop, sameCommand(), `stopped ${where}`));
        return stop.exitCode;
      };
      await withContext(command, async (ctx) => {
        const seasons = resolveSeasons(flags.season);
        for (const season of seasons) validateSelection(season, flags);
        const selections = [];
        const load = await loadScheduleAgainstPlan(ctx, seasons, 'backfill run', flags.acceptPlanChanges);
        for (const season of seasons) {
          process.stdout.write(`== plan ${season.label}: loading the schedule\n`);
          await load(season, '   ');
          const plan = await buildPlan(ctx.adapters, season);
          const file = await writePlan(ctx.config.planDir, plan);
          const dates = selectDates(plan, season, flags);
          process.stdout.write(
            `   ${plan.totals.dates} game dates, ${plan.totals.games} final games -> ${file}; ${dates.length} dates selected (--season-type ${flags.seasonType})\n`,
          );
          selections.push({ season, dates });
        }
        const executor = new LocalExecutor(ctx, flags, selections, stop.signal);
        const driven = await drive(executor, {
          onDecision: (d) => process.stdout.write(decisionLine(d)),
          stopped: () => stop.received !== undefined,
        });
        if (driven.stopped) return interrupted(stoppedWhere(driven.decisions.at(-1)));
        return finish(executor, flags);
      }).finally(() => stop.finish());
    });
}
