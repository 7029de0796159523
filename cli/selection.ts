// The options every stage command shares for choosing dates, and the local job runtime they run on.

import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { LocalJobRuntime } from '../core/adapters/local/jobRuntime.js';
import { BadInputError } from '../core/errors.js';
import { packageRoot } from '../core/paths.js';
import { resolveSeasons, SEASON_TYPE_CHOICES, type Season, type SeasonTypeChoice } from '../core/pipeline/seasons.js';
import { type PlanDate, readPlan, selectDates, validateSelection } from '../core/plan.js';
import { didYouMean } from '../core/suggest.js';
import type { CommandContext } from './context.js';

export interface SelectionFlags {
  season: string;
  seasonType: SeasonTypeChoice;
  startDate?: string;
  endDate?: string;
}

/** `seasonDefault`: --season may be left out (status reads every season); the stage commands require it. */
export function addSelectionOptions(cmd: Command, seasonDefault?: string): Command {
  return (
    seasonDefault === undefined
      ? cmd.requiredOption('--season <season>', 'season, e.g. 2021-22, or all')
      : cmd.option('--season <season>', 'season, e.g. 2021-22, or all', seasonDefault)
  )
    .addOption(
      new Option('--season-type <type>', 'regular season, playoffs (play-in included) or both')
        .choices([...SEASON_TYPE_CHOICES])
        // After choices(), which keeps them for the help: the same refusal, with a suggestion for a typo.
        .argParser((value: string) => {
          if ((SEASON_TYPE_CHOICES as readonly string[]).includes(value)) return value;
          throw new InvalidArgumentError(
            `Allowed choices are ${SEASON_TYPE_CHOICES.join(', ')}.${didYouMean(value, SEASON_TYPE_CHOICES)}`,
          );
        })
        .default('all'),
    )
    .option('--start-date <YYYY-MM-DD>', 'first date, inside the season')
    .option('--end-date <YYYY-MM-DD>', 'last date, inside the season');
}

export interface SeasonSelection {
  readonly season: Season;
  readonly dates: PlanDate[];
}

/** Checks the flags for every season first, then reads each season's plan file and selects its dates. */
export async function selectFromPlans(planDir: string, flags: SelectionFlags): Promise<SeasonSelection[]> {
  const seasons = resolveSeasons(flags.season);
  for (const season of seasons) validateSelection(season, flags);
  const out: SeasonSelection[] = [];
  for (const season of seasons)
    out.push({ season, dates: selectDates(await readPlan(planDir, season.label), season, flags) });
  return out;
}

export interface RuntimeFlags {
  parallelism: string;
  podPerIndex?: boolean;
  retryDelayMs: string;
  force?: boolean;
}

export function addRuntimeOptions(cmd: Command): Command {
  return cmd
    .option('--parallelism <n>', 'dates loaded at once (the Job parallelism)', '2')
    .option('--pod-per-index', 'start a fresh process for every attempt, exactly as the cluster starts a pod')
    .option('--retry-delay-ms <ms>', "pause before a failed date's one retry", '1000')
    .option(
      '--force',
      "write each date's Phase 2 again even when its freshly scraped raw files are those of its last successful load",
    );
}

export function wholeNumber(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new BadInputError(`${flag} ${value}: must be a whole number from ${min} to ${max}`, { where: flag });
  }
  return n;
}

export function parallelismOf(flags: RuntimeFlags): number {
  return wholeNumber('--parallelism', flags.parallelism, 1, 64);
}

/** The local runtime: the pods run the Job's own command in the package root, writing through this process. */
export function localRuntime(ctx: CommandContext, flags: RuntimeFlags): LocalJobRuntime {
  return new LocalJobRuntime({
    cwd: packageRoot(),
    logDir: resolve(ctx.config.logDir),
    warehouse: ctx.adapters.warehouse,
    // A DuckDB file has one writer process, so the pods write through this process; a BigQuery warehouse
    // takes the pods' writes directly, as in the cluster.
    envOverrides: ctx.config.warehouse.kind === 'duckdb' ? { BACKFILL_WAREHOUSE: 'ipc:parent' } : {},
    podPerIndex: flags.podPerIndex ?? false,
    retryDelayMs: wholeNumber('--retry-delay-ms', flags.retryDelayMs, 0, 600_000),
  });
}
