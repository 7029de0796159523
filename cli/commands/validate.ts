// `backfill validate`: Stage 4, with a report as JSON, Markdown and a self-contained HTML page.

import { join } from 'node:path';
import type { Command } from 'commander';
import { EXIT_OK, EXIT_PROCESSING_FAILURE } from '../../core/errors.js';
import type { Season } from '../../core/pipeline/seasons.js';
import type { PlanDate } from '../../core/plan.js';
import { writeReports } from '../../core/stages/report.js';
import { validate } from '../../core/stages/validate.js';
import type { ValidationReport } from '../../core/stages/validation.js';
import { checkpointAfter } from '../checkpoint.js';
import { type CommandContext, withContext } from '../context.js';
import { formatTable } from '../output.js';
import { addSelectionOptions, type SelectionFlags, selectFromPlans } from '../selection.js';

export async function runValidation(
  ctx: CommandContext,
  selections: readonly { season: Season; dates: readonly PlanDate[] }[],
  reportDir: string | undefined,
): Promise<ValidationReport> {
  const report = await validate(
    ctx.adapters.warehouse,
    selections.map((s) => ({ season: s.season.label, dates: s.dates })),
  );
  // Validation writes nothing but its reports; a checkpoint here secures whatever the run before it left.
  await checkpointAfter(ctx.adapters.warehouse, 'validation');
  const name = `validation-${selections.map((s) => s.season.label).join('_')}`;
  const files = writeReports(report, reportDir ?? join(ctx.config.logDir, 'reports'), name);
  process.stdout.write(
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
  process.stdout.write(
    `${report.passed ? 'VALIDATION PASSED' : 'VALIDATION FAILED'}: ${report.dates.length} dates, ${full} of ${report.coverage.length - noData} table-dates fully covered${noData > 0 ? ` (${noData} with nothing expected: no data)` : ''}\n` +
      `report: ${files.html} (also ${files.markdown}, ${files.json}; this run's copy kept as ${files.kept.html})\n`,
  );
  return report;
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
      '\nExit 0 when every check passes, 1 otherwise. The HTML page has a calendar heatmap of coverage.',
    )
    .action(async (flags: SelectionFlags & { reportDir?: string }, command: Command) => {
      await withContext(command, async (ctx) => {
        const report = await runValidation(ctx, await selectFromPlans(ctx.config.planDir, flags), flags.reportDir);
        return report.passed ? EXIT_OK : EXIT_PROCESSING_FAILURE;
      });
    });
}
