// `backfill process`: the platform's per-processor contract, for one date or a range of dates.

import { type Command, Option } from 'commander';
import { CheckedWarehouse } from '../../core/checks/data.js';
import { DependencyError, type RunMode } from '../../core/checks/defensive.js';
import { eachDate, type IsoDate, isIsoDate } from '../../core/dates.js';
import { BadInputError, EXIT_BAD_INPUT, EXIT_OK, EXIT_PROCESSING_FAILURE, redact } from '../../core/errors.js';
import { type PhaseNumber, requireBackfillPhase } from '../../core/pipeline/definition.js';
import type { Processor } from '../../core/pipeline/processor.js';
import { requireDateInSeason } from '../../core/pipeline/seasons.js';
import { getProcessor, phaseProcessors } from '../../core/processors.js';
import { runProcessor } from '../../core/runner.js';
import { withContext } from '../context.js';

interface ProcessFlags {
  phase?: string;
  date?: string;
  startDate?: string;
  endDate?: string;
  skipDownstreamTrigger?: boolean;
  strictMode: string;
  mode: string;
}

function strictModeOf(value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new BadInputError(`--strict-mode ${value}: must be true or false`, { where: '--strict-mode' });
}

function requireDate(flag: string, value: string): IsoDate {
  if (!isIsoDate(value)) throw new BadInputError(`${flag} ${value}: not a date (YYYY-MM-DD)`, { where: flag });
  return value;
}

export function datesFrom(flags: ProcessFlags): IsoDate[] {
  if (flags.date && (flags.startDate || flags.endDate)) {
    throw new BadInputError('give either --date or --start-date/--end-date, not both', { where: '--date' });
  }
  let dates: IsoDate[];
  if (flags.date) dates = [requireDate('--date', flags.date)];
  else if (flags.startDate && flags.endDate) {
    const start = requireDate('--start-date', flags.startDate);
    const end = requireDate('--end-date', flags.endDate);
    if (end < start)
      throw new BadInputError(`--end-date ${end} is before --start-date ${start}`, { where: '--end-date' });
    dates = eachDate(start, end);
  } else throw new BadInputError('give --date D, or --start-date D1 and --end-date D2', { where: '--date' });
  for (const d of dates) requireDateInSeason(d);
  return dates;
}

export function processorsFrom(name: string | undefined, phase: string | undefined): Processor[] {
  if (name && phase) throw new BadInputError('give a processor name or --phase, not both', { where: '--phase' });
  if (name) return [getProcessor(name)];
  if (phase) return phaseProcessors(requireBackfillPhase(phase) as PhaseNumber);
  throw new BadInputError('give a processor name (see backfill pipeline) or --phase 1-4', { where: 'processor' });
}

export function registerProcess(program: Command): void {
  program
    .command('process')
    .description('run one processor, or every processor of a phase, for a date or a range of dates')
    .argument('[processor]', 'processor name, e.g. nbac_player_boxscore (see backfill pipeline)')
    .option('--phase <n>', 'run every processor of this phase, in order (1-4)')
    .option('--date <YYYY-MM-DD>', 'the game date')
    .option('--start-date <YYYY-MM-DD>', 'first date of a range')
    .option('--end-date <YYYY-MM-DD>', 'last date of a range')
    .option('--skip-downstream-trigger', 'do not publish completion events')
    .option(
      '--strict-mode <bool>',
      'Phase 3-4: a failing defensive check blocks the date (false: run anyway, recorded as forced)',
      'true',
    )
    .addOption(
      new Option('--mode <mode>', 'backfill skips checks that only live daily runs need (freshness)')
        .choices(['backfill', 'daily'])
        .default('backfill'),
    )
    .action(async (name: string | undefined, flags: ProcessFlags, command: Command) => {
      await withContext(command, async ({ adapters, log }) => {
        const processors = processorsFrom(name, flags.phase);
        const dates = datesFrom(flags);
        const strictMode = strictModeOf(flags.strictMode);
        // Over a range of dates the checks keep what they read, re-reading only what a commit changed.
        const ports = { ...adapters, warehouse: new CheckedWarehouse(adapters.warehouse) };
        let badInput = 0;
        let failed = 0;
        for (const date of dates) {
          for (const p of processors) {
            const out = await runProcessor(ports, log, p, date, {
              trigger: { command: 'backfill process', stage: 'manual' },
              skipDownstreamTrigger: flags.skipDownstreamTrigger ?? false,
              strictMode,
              mode: flags.mode as RunMode,
            });
            if (out.ok) {
              process.stdout.write(
                `${date}  ${p.definition.name}  ok  ${out.result.rows} rows (${out.result.decision})\n`,
              );
            } else {
              if (out.error instanceof BadInputError) badInput++;
              else failed++;
              const what = out.error instanceof DependencyError ? 'BLOCKED' : 'FAILED';
              process.stdout.write(`${date}  ${p.definition.name}  ${what}  run ${out.runId}\n`);
              process.stderr.write(`error: ${p.definition.name} ${date}: ${redact(out.error.message)}\n`);
            }
          }
        }
        if (failed > 0) return EXIT_PROCESSING_FAILURE;
        return badInput > 0 ? EXIT_BAD_INPUT : EXIT_OK;
      });
    });
}
