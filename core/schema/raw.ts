// The nba_raw tables that Phase 2 loads, and the run history every processor writes.

import { type Column, col, type TableSchema } from './table.js';

const gameColumns: Column[] = [
  col('game_id', 'STRING', 'NBA.com game id, zero-padded, e.g. 0022100001'),
  col('game_date', 'DATE', 'US local game date'),
  col('season', 'STRING', 'Season label, e.g. 2021-22'),
  col('season_type', 'STRING', 'Regular Season, PlayIn or Playoffs (from the game-id prefix)'),
];

const countingStats: Column[] = [
  col('points', 'INT64', 'Points'),
  col('fgm', 'INT64', 'Field goals made'),
  col('fga', 'INT64', 'Field goals attempted'),
  col('fg3m', 'INT64', 'Three-pointers made'),
  col('fg3a', 'INT64', 'Three-pointers attempted'),
  col('ftm', 'INT64', 'Free throws made'),
  col('fta', 'INT64', 'Free throws attempted'),
  col('oreb', 'INT64', 'Offensive rebounds'),
  col('dreb', 'INT64', 'Defensive rebounds'),
  col('reb', 'INT64', 'Total rebounds'),
  col('ast', 'INT64', 'Assists'),
  col('stl', 'INT64', 'Steals'),
  col('blk', 'INT64', 'Blocks'),
  col('tov', 'INT64', 'Turnovers'),
  col('pf', 'INT64', 'Personal fouls'),
];

const percentages: Column[] = [
  col('fg_pct', 'FLOAT64', 'FGM/FGA in [0,1]; null when no attempts', true),
  col('fg3_pct', 'FLOAT64', 'FG3M/FG3A in [0,1]; null when no attempts', true),
  col('ft_pct', 'FLOAT64', 'FTM/FTA in [0,1]; null when no attempts', true),
];

export const nbacSchedule: TableSchema = {
  dataset: 'nba_raw',
  name: 'nbac_schedule',
  description:
    'One row per game: home and away from the MATCHUP order, final score, winner. Derived from the team game log.',
  columns: [
    ...gameColumns,
    col('home_team_id', 'INT64', 'NBA.com team id of the (nominal) home team'),
    col('home_team_abbr', 'STRING', 'Home team code'),
    col('away_team_id', 'INT64', 'NBA.com team id of the away team'),
    col('away_team_abbr', 'STRING', 'Away team code'),
    col('home_score', 'INT64', 'Home final score'),
    col('away_score', 'INT64', 'Away final score'),
    col('winner_team_abbr', 'STRING', 'Code of the team whose row says W'),
    col('game_status', 'STRING', 'Final for every game a game log reports'),
  ],
  partitionColumn: 'game_date',
  key: ['game_id'],
  clusterBy: ['season', 'game_id'],
};

export const nbacPlayerBoxscore: TableSchema = {
  dataset: 'nba_raw',
  name: 'nbac_player_boxscore',
  description: 'One row per player who appeared in a game (NBA.com league game log, players).',
  columns: [
    ...gameColumns,
    col('player_id', 'INT64', 'NBA.com person id'),
    col('player_name', 'STRING', 'Full name, UTF-8'),
    col('team_id', 'INT64', 'Team the player played for in this game'),
    col('team_abbr', 'STRING', 'Team code'),
    col('opponent_team_abbr', 'STRING', 'Opponent team code'),
    col('is_home', 'BOOL', "True when the player's team is the (nominal) home team"),
    col('win', 'BOOL', "True when the player's team won"),
    col('minutes', 'INT64', 'Minutes played, rounded to an integer by the source'),
    ...countingStats,
    ...percentages,
    col('plus_minus', 'INT64', 'Point margin while on the floor'),
  ],
  partitionColumn: 'game_date',
  key: ['game_id', 'player_id'],
  clusterBy: ['season', 'player_id', 'game_id'],
};

export const nbacGamebookPlayerStats: TableSchema = {
  dataset: 'nba_raw',
  name: 'nbac_gamebook_player_stats',
  description:
    "One row per player in a game's gamebook, with the player's status. The source has appearances only (no DNP or inactive rows), so every row is an active player; under-30-second appearances are flagged.",
  columns: [
    ...gameColumns,
    col('player_id', 'INT64', 'NBA.com person id'),
    col('player_name', 'STRING', 'Full name, UTF-8'),
    col('team_abbr', 'STRING', 'Team code'),
    col('player_status', 'STRING', 'active (the only status the source can show)'),
    col('minutes', 'INT64', 'Minutes played, rounded'),
    col('played_under_30s', 'BOOL', 'MIN = 0: checked in for under 30 seconds'),
  ],
  partitionColumn: 'game_date',
  key: ['game_id', 'player_id'],
  clusterBy: ['season', 'player_id'],
};

export const nbacTeamBoxscore: TableSchema = {
  dataset: 'nba_raw',
  name: 'nbac_team_boxscore',
  description:
    "One row per team per game: the sums of the team's player rows where the game has them, otherwise the team game log row (playoff totals).",
  columns: [
    ...gameColumns,
    col('team_id', 'INT64', 'NBA.com team id'),
    col('team_abbr', 'STRING', 'Team code'),
    col('opponent_team_abbr', 'STRING', 'Opponent team code'),
    col('is_home', 'BOOL', 'True for the (nominal) home team'),
    col('win', 'BOOL', 'True when the team won'),
    ...countingStats,
    ...percentages,
    col(
      'game_minutes',
      'INT64',
      "Length of the game: 48, plus 5 per overtime. From the team log, or the players' summed minutes / 5 rounded to a period",
    ),
    col('players_used', 'INT64', 'Players who appeared; 0 when derived from a team log', false),
    col('derived_from', 'STRING', 'player_rows or team_game_log'),
  ],
  partitionColumn: 'game_date',
  key: ['game_id', 'team_id'],
  clusterBy: ['season', 'team_abbr'],
};

export const espnTeamRoster: TableSchema = {
  dataset: 'nba_raw',
  name: 'espn_team_roster',
  description:
    'Roster of each team playing on the date, as of that date: the players whose latest appearance of the season, up to and including the date, was for the team.',
  columns: [
    col('roster_date', 'DATE', 'The date the roster is as of'),
    col('season', 'STRING', 'Season label'),
    col('team_id', 'INT64', 'NBA.com team id'),
    col('team_abbr', 'STRING', 'Team code'),
    col('player_id', 'INT64', 'NBA.com person id'),
    col('player_name', 'STRING', 'Full name, UTF-8'),
    col('games_with_team', 'INT64', 'Appearances for this team this season up to the date'),
    col('last_appearance_date', 'DATE', 'Latest appearance for this team up to the date'),
  ],
  partitionColumn: 'roster_date',
  key: ['team_abbr', 'player_id'],
  clusterBy: ['season', 'team_abbr'],
};

export const processorRunHistory: TableSchema = {
  dataset: 'nba_reference',
  name: 'processor_run_history',
  description: 'One row per processor run, success or failure: what ran, for which date, why, and how it ended.',
  columns: [
    col('run_id', 'STRING', 'Unique id of this run'),
    col('processor_name', 'STRING', 'Processor as the pipeline definition names it'),
    col('phase', 'INT64', 'Pipeline phase 1-4'),
    col('data_date', 'DATE', 'The game date processed'),
    col('season', 'STRING', 'Season label'),
    col('status', 'STRING', 'success, failed or blocked'),
    col('success', 'BOOL', 'status = success'),
    col('error_message', 'STRING', 'Why it failed or was blocked', true),
    col('rows_processed', 'INT64', 'Rows written (or files, for Phase 1)'),
    col('processing_decision', 'STRING', 'processed, no_games, failed, blocked, forced or bootstrap'),
    col('attempt', 'INT64', '1 for the first try of this (processor, date) in its batch, 2 for its retry'),
    col('started_at', 'TIMESTAMP', 'When the run started (UTC)'),
    col('finished_at', 'TIMESTAMP', 'When the run ended (UTC)'),
    col('trigger_command', 'STRING', 'The command that started it, e.g. backfill process'),
    col('trigger_stage', 'STRING', 'stage1, stage3, manual, ...', true),
    col('job_name', 'STRING', 'Job name when run by a job runtime', true),
    col('job_index', 'INT64', 'Completion index when run by an Indexed Job', true),
    col('strict_mode', 'BOOL', 'Whether defensive checks could block the run'),
    col('details', 'JSON', 'Anything else worth keeping, as JSON'),
  ],
  partitionColumn: 'data_date',
  key: ['run_id'],
  clusterBy: ['processor_name', 'status'],
};

export const backfillFailureLog: TableSchema = {
  dataset: 'nba_reference',
  name: 'backfill_failure_log',
  description: 'One row per date that a Stage 1 job (or its retry) could not load, with where to read why.',
  columns: [
    col('job_name', 'STRING', 'The Indexed Job'),
    col('season', 'STRING', 'Season label'),
    col('data_date', 'DATE', 'The game date that failed'),
    col('job_index', 'INT64', 'Its completion index in the job'),
    col('processor_name', 'STRING', 'The processor whose latest run failed', true),
    col('error_message', 'STRING', 'That run’s error', true),
    col('attempts', 'INT64', 'Attempts the index made'),
    col('exit_codes', 'STRING', 'Exit code of each attempt, comma-separated'),
    col('reason', 'STRING', 'BackoffLimitExceeded, PodFailurePolicy or DeadlineExceeded'),
    col('log_location', 'STRING', "Where the index's logs are"),
    col('recorded_at', 'TIMESTAMP', 'When the job ended'),
  ],
  partitionColumn: 'data_date',
  key: ['job_name', 'job_index'],
  clusterBy: ['season', 'job_name'],
};

export const RAW_TABLES: readonly TableSchema[] = [
  nbacSchedule,
  nbacPlayerBoxscore,
  nbacGamebookPlayerStats,
  nbacTeamBoxscore,
  espnTeamRoster,
];

export const REFERENCE_TABLES: readonly TableSchema[] = [processorRunHistory, backfillFailureLog];
