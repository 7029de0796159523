// `backfill run`: the backfill on the configured adapters, stage by stage, each announced with what it did.

import type { Command } from 'commander';
import { EXIT_OK, EXIT_PROCESSING_FAILURE } from '../../core/errors.js';
import { formatGate, runGate } from '../../core/gate.js';
import { locateDate, resolveSeasons } from '../../core/pipeline/seasons.js';
import { buildPlan, selectDates, validateSelection, writePlan } from '../../core/plan.js';
import { withContext } from '../context.js';
import { addRuntimeOptions, addSelectionOptions, type RuntimeFlags, type SelectionFlags } from '../selection.js';
import { formatResume, GracefulStop, sameCommand } from '../signals.js';
import { loadScheduleAgainstPlan } from './plan.js';
import { runStage1Job } from './stage1.js';
import { runStage3Season } from './stage3.js';
import { runValidation } from './validate.js';

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
        for (const { season, dates } of selections) {
          if (dates.length === 0) continue;
          process.stdout.write(
            `== stage 1 ${season.label}: Phase 1-2 for ${dates.length} dates, parallelism ${flags.parallelism}\n`,
          );
          await runStage1Job(
            ctx,
            season,
            dates.map((d) => d.date),
            flags,
            'stage1',
            stop.signal,
          );
          if (stop.received) return interrupted(`in Stage 1 of ${season.label}, before the gate`);
        }
        if (stop.received) return interrupted('before Stage 1');
        process.stdout.write('== quality gate\n');
        const gate = await runGate(
          ctx.adapters.warehouse,
          selections.map((s) => ({ season: s.season.label, dates: s.dates })),
        );
        process.stdout.write(formatGate(gate));
        if (!gate.passed) {
          const commands: string[] = [];
          if (gate.runProblems.some((r) => r.problem === 'failed'))
            commands.push(`backfill retry --season ${flags.season}`);
          for (const { season } of selections) {
            const missing = [...new Set(gate.tables.flatMap((t) => t.missingDates))]
              .filter((d) => locateDate(d)?.season.label === season.label)
              .sort();
            if (missing.length > 0) {
              commands.push(
                `backfill stage1 --season ${season.label} --start-date ${missing[0]} --end-date ${missing.at(-1)}`,
              );
            }
          }
          process.stdout.write(
            `Stopped at the gate. Fix the cause (the source may simply lack the data: see the missing games), then load the dates again:\n${commands.map((c) => `  ${c}\n`).join('')}and check again with:\n  backfill gate --season ${flags.season} --season-type ${flags.seasonType}\n`,
          );
          return EXIT_PROCESSING_FAILURE;
        }
        for (const { season, dates } of selections) {
          if (dates.length === 0) continue;
          process.stdout.write(`== stage 3 ${season.label}: Phase 3 then Phase 4, date by date, strict mode\n`);
          const stage3 = await runStage3Season(ctx, season, dates, {}, stop.signal);
          if (stop.received) return interrupted(`in Stage 3 of ${season.label}`);
          if (stage3.summary.status !== 'succeeded') return EXIT_PROCESSING_FAILURE;
        }
        if (stop.received) return interrupted('before Stage 4 (validation)');
        process.stdout.write('== stage 4: validation\n');
        const report = await runValidation(ctx, selections, undefined);
        process.stdout.write(
          report.passed ? '== done: every stage passed\n' : '== done, but validation failed: see the report\n',
        );
        return report.passed ? EXIT_OK : EXIT_PROCESSING_FAILURE;
      }).finally(() => stop.finish());
    });
}
