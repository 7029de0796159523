// `backfill plan`: load a season's schedule and write its game dates to a reviewable plan file.

import type { Command } from 'commander';
import { resolveSeasons } from '../../core/pipeline/seasons.js';
import { buildPlan, loadSeasonSchedule, writePlan } from '../../core/plan.js';
import { checkpointAfter } from '../checkpoint.js';
import { withContext } from '../context.js';

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description("load the season's schedule (Phase 1-2 of the team game log) and write its game dates to a plan file")
    .requiredOption('--season <season>', 'season, e.g. 2021-22, or all')
    .addHelpText(
      'after',
      '\nThe plan lists every date with final games in nba_raw.nbac_schedule, one per line, with its season type\nand game count. Stage commands read it; review it in a pull request like any other change.',
    )
    .action(async (flags: { season: string }, command: Command) => {
      await withContext(command, async ({ adapters, config, log }) => {
        for (const season of resolveSeasons(flags.season)) {
          await loadSeasonSchedule(adapters, log, season, { command: 'backfill plan', stage: 'plan' });
          const plan = await buildPlan(adapters, season);
          // The schedule's runs are committed; the plan file names them, so they leave the WAL first.
          await checkpointAfter(adapters.warehouse, `the ${season.label} schedule load`);
          const path = await writePlan(config.planDir, plan);
          process.stdout.write(
            `${season.label}: ${plan.totals.dates} game dates, ${plan.totals.games} final games -> ${path}\n`,
          );
        }
        return 0;
      });
    });
}
