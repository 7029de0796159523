// `backfill plan`: load a season's schedule and write its game dates to a reviewable plan file.

import type { Command } from 'commander';
import type { Season } from '../../core/pipeline/seasons.js';
import { resolveSeasons } from '../../core/pipeline/seasons.js';
import { buildPlan, loadSeasonSchedule, type PlanGame, readCommittedPlan, writePlan } from '../../core/plan.js';
import { checkpointAfter } from '../checkpoint.js';
import { type CommandContext, withContext } from '../context.js';

const listed = (games: readonly PlanGame[]) =>
  games
    .slice(0, 10)
    .map((g) => `${g.date} ${g.gameId}`)
    .join(', ') + (games.length > 10 ? `, ... (${games.length})` : '');

/**
 * Reads every season's committed plan first (a bad plan file stops the command before anything runs), then
 * returns the schedule load of one season against its plan, which prints the games that changed.
 */
export async function loadScheduleAgainstPlan(
  ctx: Pick<CommandContext, 'adapters' | 'config' | 'log'>,
  seasons: readonly Season[],
  command: string,
  acceptPlanChanges: boolean | undefined,
  say: (text: string) => void = (text) => process.stdout.write(text),
): Promise<(season: Season, indent: string) => Promise<void>> {
  const committed = new Map<string, Awaited<ReturnType<typeof readCommittedPlan>>>();
  for (const s of seasons) committed.set(s.label, await readCommittedPlan(ctx.config.planDir, s.label));
  return async (season, indent) => {
    const { added, vanished } = await loadSeasonSchedule(
      ctx.adapters,
      ctx.log,
      season,
      { command, stage: 'plan' },
      { committed: committed.get(season.label), acceptPlanChanges },
    );
    if (added.length > 0) say(`${indent}${added.length} new game(s) since the committed plan: ${listed(added)}\n`);
    if (vanished.length > 0)
      say(`${indent}${vanished.length} game(s) left the plan (--accept-plan-changes): ${listed(vanished)}\n`);
  };
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description("load the season's schedule (Phase 1-2 of the team game log) and write its game dates to a plan file")
    .requiredOption('--season <season>', 'season, e.g. 2021-22, or all')
    .option('--accept-plan-changes', 'accept games of the committed plan that the source no longer reports')
    .addHelpText(
      'after',
      '\nThe plan lists every date with final games in nba_raw.nbac_schedule, one per line, with its season type\nand game count. Stage commands read it; review it in a pull request like any other change. A game of the\ncommitted plan that the source no longer reports is refused (exit 2) unless --accept-plan-changes.',
    )
    .action(async (flags: { season: string; acceptPlanChanges?: boolean }, command: Command) => {
      await withContext(command, async (ctx) => {
        const seasons = resolveSeasons(flags.season);
        const load = await loadScheduleAgainstPlan(ctx, seasons, 'backfill plan', flags.acceptPlanChanges);
        for (const season of seasons) {
          await load(season, '');
          const plan = await buildPlan(ctx.adapters, season);
          // The schedule's runs are committed; the plan file names them, so they leave the WAL first.
          await checkpointAfter(ctx.adapters.warehouse, `the ${season.label} schedule load`);
          const path = await writePlan(ctx.config.planDir, plan);
          process.stdout.write(
            `${season.label}: ${plan.totals.dates} game dates, ${plan.totals.games} final games -> ${path}\n`,
          );
        }
        return 0;
      });
    });
}
