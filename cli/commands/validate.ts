// `backfill validate`: Stage 4, with a report as JSON, Markdown and a self-contained HTML page.

import { join } from 'node:path';
import type { Command } from 'commander';
import { EXIT_OK, EXIT_PROCESSING_FAILURE } from '../../core/errors.js';
import type { Season } from '../../core/pipeline/seasons.js';
import type { PlanDate } from '../../core/plan.js';
import { type ReportFiles, writeReports } from '../../core/stages/report.js';
import { datesText, reportFixes } from '../../core/stages/reportModel.js';
import { validate } from '../../core/stages/validate.js';
import type { ValidationReport } from '../../core/stages/validation.js';
import { checkpointAfter } from '../checkpoint.js';
import { type CommandContext, withContext } from '../context.js';
import { formatTable } from '../output.js';
import { addSelectionOptions, type SelectionFlags, selectFromPlans } from '../selection.js';
import { formatOf, formatOption, type Streams, streamsFor } from '../streams.js';

/** `backfill validate --format json`: the report (as the JSON report file holds it), where it was written, the exit code. */
export type ValidateJson = ValidationReport & { readonly files: ReportFiles; readonly exitCode: number };

export async function runValidation(
  ctx: CommandContext,
  selections: readonly { season: Season; dates: readonly PlanDate[] }[],
  reportDir: string | undefined,
  io: Streams = streamsFor(),
): Promise<{ report: ValidationReport; files: ReportFiles }> {
  const report = await validate(
    ctx.adapters.warehouse,
    selections.map((s) => ({ season: s.season.label, dates: s.dates })),
  );
  // Validation writes nothing but its reports; a checkpoint here secures whatever the run before it left.
  await checkpointAfter(ctx.adapters.warehouse, 'validation');
  const name = `validation-${selections.map((s) => s.season.label).join('_')}`;
  const files = writeReports(report, reportDir ?? join(ctx.config.logDir, 'reports'), name);
  io.say(
    formatTable(
      report.checks.map((c) => ({
        category: c.category,
        check: c.name,
        result: c.passed ? 'ok' : 'FAILED',
        failures: c.failureCount,
        first: c.failures[0]
          ? `${c.failures[0].table} ${c.failures[0].date ?? ''} ${c.failures[0].key ?? ''} ${c.failures[0].detail}`.slice(
              0,
              110,
            )
          : '',
      })),
    ),
  );
  const full = report.coverage.filter((c) => c.pct === 100).length;
  const noData = report.coverage.filter((c) => c.pct === null).length;
  const fixes = reportFixes(report.checks);
  if (fixes.length > 0) {
    io.say(
      `To fix, in this order (Phase 1-2 before Phase 3-4), then validate again:\n${fixes
        .map((f) => `  ${f.command}\n      ${datesText(f.dates)}: ${f.reason}\n`)
        .join('')}`,
    );
  }
  io.say(
    `${report.passed ? 'VALIDATION PASSED' : 'VALIDATION FAILED'}: ${report.dates.length} dates, ${full} of ${report.coverage.length - noData} table-dates fully covered${noData > 0 ? ` (${noData} with nothing expected: no data)` : ''}\n` +
      `report: ${files.html} (also ${files.markdown}, ${files.json}; this run's copy kept as ${files.kept.html})\n`,
  );
  return { report, files };
}

export function registerValidate(program: Command): void {
  addSelectionOptions(
    program
      .command('validate')
      .description(
        'Stage 4: every phase complete, row counts consistent, no NULL in critical fields, values in range, tables consistent',
      ),
  )
    .option('--report-dir <dir>', 'where the JSON, Markdown and HTML reports go (default <log dir>/reports)')
    .addHelpText(
      'after',
      "\nThe HTML page lists the failing dates first, then a calendar of coverage (a block per month), every check\nwith all its failures, and the command that fixes each; this run's copy is kept under <report dir>/runs/.",
    )
    .addOption(formatOption())
    .action(async (flags: SelectionFlags & { reportDir?: string; format: string }, command: Command) => {
      const io = streamsFor(formatOf(flags));
      await withContext(command, async (ctx) => {
        const selections = await selectFromPlans(ctx.config.planDir, flags);
        const { report, files } = await runValidation(ctx, selections, flags.reportDir, io);
        const exitCode = report.passed ? EXIT_OK : EXIT_PROCESSING_FAILURE;
        io.json({ ...report, files, exitCode } satisfies ValidateJson);
        return exitCode;
      });
    });
}
