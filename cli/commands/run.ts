// `backfill run`: the backfill on the configured adapters, stage by stage, each announced with what it did.

import { type Command, Option } from 'commander';
import { runPhases1And2 } from '../../core/dateRun.js';
import { EXIT_OK, EXIT_PROCESSING_FAILURE } from '../../core/errors.js';
import { resolveSeasons, SEASON_TYPE_CHOICES, type SeasonTypeChoice } from '../../core/pipeline/seasons.js';
import { buildPlan, loadSeasonSchedule, selectDates, validateSelection, writePlan } from '../../core/plan.js';
import { withContext } from '../context.js';
import { formatTable } from '../output.js';

interface RunFlags {
  season: string;
  seasonType: SeasonTypeChoice;
  startDate?: string;
  endDate?: string;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('backfill seasons: plan, then Phase 1-2 for every game date of the plan')
    .requiredOption('--season <season>', 'season, e.g. 2021-22, or all')
    .addOption(
      new Option('--season-type <type>', 'regular season, playoffs (play-in included) or both')
        .choices([...SEASON_TYPE_CHOICES])
        .default('all'),
    )
    .option('--start-date <YYYY-MM-DD>', 'first date, inside the season')
    .option('--end-date <YYYY-MM-DD>', 'last date, inside the season')
    .action(async (flags: RunFlags, command: Command) => {
      await withContext(command, async ({ adapters, config, log, logFile }) => {
        let failedDates = 0;
        const seasons = resolveSeasons(flags.season);
        for (const season of seasons) validateSelection(season, flags);
        for (const season of seasons) {
          const started = performance.now();
          process.stdout.write(`== ${season.label}: plan\n`);
          await loadSeasonSchedule(adapters, log, season, { command: 'backfill run', stage: 'plan' });
          const plan = await buildPlan(adapters, season);
          const planFile = await writePlan(config.planDir, plan);
          const dates = selectDates(plan, season, flags);
          process.stdout.write(
            `   ${plan.totals.dates} game dates in the schedule (${planFile}); ${dates.length} selected (--season-type ${flags.seasonType})\n`,
          );
          process.stdout.write(`== ${season.label}: Phase 1-2 for ${dates.length} dates\n`);
          for (const d of dates) {
            const result = await runPhases1And2(adapters, log, d.date, {
              trigger: { command: 'backfill run', stage: 'stage1' },
              skipDownstreamTrigger: true,
            });
            if (!result.ok) {
              failedDates++;
              for (const f of result.failures)
                process.stdout.write(`   ${d.date}  ${f.processor}  FAILED: ${f.error.message}\n`);
            }
          }
          const counts = await adapters.warehouse.query(
            `SELECT 'nba_raw.nbac_schedule' AS table_name, COUNT(*) AS row_count FROM nba_raw.nbac_schedule WHERE season = @season
             UNION ALL SELECT 'nba_raw.nbac_player_boxscore', COUNT(*) FROM nba_raw.nbac_player_boxscore WHERE season = @season
             UNION ALL SELECT 'nba_raw.nbac_gamebook_player_stats', COUNT(*) FROM nba_raw.nbac_gamebook_player_stats WHERE season = @season
             UNION ALL SELECT 'nba_raw.nbac_team_boxscore', COUNT(*) FROM nba_raw.nbac_team_boxscore WHERE season = @season
             UNION ALL SELECT 'nba_raw.espn_team_roster', COUNT(*) FROM nba_raw.espn_team_roster WHERE season = @season`,
            { season: season.label },
          );
          const seconds = ((performance.now() - started) / 1000).toFixed(1);
          process.stdout.write(`   done in ${seconds} s; rows loaded for ${season.label}:\n${formatTable(counts)}`);
        }
        if (failedDates > 0) {
          process.stdout.write(
            `${failedDates} date(s) failed; details in ${logFile} and nba_reference.processor_run_history\n`,
          );
          return EXIT_PROCESSING_FAILURE;
        }
        return EXIT_OK;
      });
    });
}
