// What every command's --help shows beyond its options: the global options, required options marked, examples
// and the exit codes.

import { type Command, Help, type Option } from 'commander';

/** Examples per command, each a command line a user can paste (on the bundled data, after `run` where needed). */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  run: [
    'backfill run --season 2021-22 --season-type regular',
    'backfill run --season all --dry-run',
    'backfill run --season 2022-23 --format json > run.json',
  ],
  plan: ['backfill plan --season 2021-22', 'backfill plan --season all'],
  stage1: [
    'backfill stage1 --season 2021-22 --season-type regular --parallelism 4',
    'backfill stage1 --season 2021-22 --start-date 2022-01-10 --end-date 2022-01-16 --force',
  ],
  failures: ['backfill failures --season 2021-22', 'backfill failures --season all --format json'],
  retry: [
    'backfill retry --season 2021-22',
    'backfill retry --from-log .backfill/logs/failures/<job>.json',
    'backfill retry --failed-runs --phase 2',
    'backfill retry --season 2021-22 --cluster --unset-env BACKFILL_FAULTS',
  ],
  gate: ['backfill gate --season 2021-22 --season-type regular', 'backfill gate --season all --format json'],
  logs: ['backfill logs 2022-01-12', 'backfill logs 2022-01-12 --all --tail 20', 'backfill logs 2022-01-12 --json'],
  stage3: ['backfill stage3 --season 2021-22', 'backfill stage3 --season 2021-22 --batch-size 1 --format json'],
  validate: ['backfill validate --season 2021-22', 'backfill validate --season all --report-dir reports --format json'],
  status: ['backfill status', 'backfill status --season 2021-22 --format json'],
  process: [
    'backfill process player_game_summary --date 2022-01-12',
    'backfill process --phase 2 --start-date 2022-01-10 --end-date 2022-01-12',
  ],
  query: [
    'backfill query "SELECT game_date, COUNT(*) AS games FROM nba_raw.nbac_schedule GROUP BY 1 ORDER BY 1 LIMIT 5"',
    'backfill query "SELECT * FROM nba_analytics.player_game_summary LIMIT 3" --format json | jq .',
    'backfill query "DELETE FROM nba_raw.nbac_schedule WHERE game_date = \'2022-01-12\'" --write',
  ],
  pipeline: ['backfill pipeline', 'backfill pipeline --format json'],
};

/** What exit 1 means for each command (0 is success and 2 bad input for all of them). */
export const EXIT_ONE: Readonly<Record<string, string>> = {
  run: 'a stage failed: a date of Stage 1, the gate, Stage 3 or validation',
  plan: 'the schedule could not be loaded',
  stage1: 'a date failed (after its one retry); the others are loaded',
  failures: 'the warehouse could not be read',
  retry: 'a retried date failed again',
  gate: 'the gate failed: Stage 3 must not start',
  logs: 'the logs could not be read',
  stage3: 'a date failed or was blocked, or the gate refused the start',
  validate: 'a check failed',
  status: 'the warehouse or the cluster could not be read',
  process: 'the processor failed',
  query: 'the warehouse could not answer (a DuckDB file another process is writing, a BigQuery failure)',
  pipeline: 'never',
};

/** Commands that stop between dates on SIGINT and SIGTERM. */
const INTERRUPTIBLE = new Set(['run', 'stage1', 'retry', 'stage3']);

export function exitCodesText(name: string): string {
  const lines = [
    'Exit codes:',
    '  0  success',
    `  1  ${EXIT_ONE[name] ?? 'the work failed'}`,
    '  2  bad input or usage: an unknown option or value, a bad date, a malformed file (the message names it)',
  ];
  if (INTERRUPTIBLE.has(name) || name === '')
    lines.push('  130, 143  interrupted by SIGINT, SIGTERM (the message gives the command that resumes)');
  return lines.join('\n');
}

export function examplesText(name: string): string {
  const examples = EXAMPLES[name];
  return examples ? `Examples:\n${examples.map((e) => `  $ ${e}`).join('\n')}` : '';
}

/** The help of every command: global options shown, required options marked. Called before commands are added. */
export function configureHelp(program: Command): void {
  const base = new Help();
  program.configureHelp({
    showGlobalOptions: true,
    optionDescription: (option: Option) => {
      const text = base.optionDescription(option);
      return option.mandatory ? `(required) ${text}` : text;
    },
  });
}

/** Adds the examples and the exit codes after a command's own help text. */
export function addHelpFooter(command: Command): void {
  const examples = examplesText(command.name());
  command.addHelpText('after', `${examples ? `\n${examples}` : ''}\n\n${exitCodesText(command.name())}`);
}
