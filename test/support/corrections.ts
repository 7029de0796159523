// A corrected copy of the bundled data, as NBA.com issues a stat correction: for `--source dir:` and for tests.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseCsvRecords } from '../../core/csv.js';
import { REPO_ROOT } from './workspace.js';

const PLAYERS = 'player_box/player_game_logs_2021-22_regular.csv.gz';

function csvLine(fields: readonly string[]): string {
  return fields.map((f) => (/[",\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(',');
}

export interface Correction {
  readonly gainer: number;
  readonly loser: number;
}

/**
 * A copy of the data folder (plain CSV, as a user's export) where, in one game of `date`, one player gains a made
 * two (FGM, FGA +1, PTS +2) and a teammate loses one: the team's totals do not change.
 */
export function writeCorrectedFolder(dir: string, date: string): Correction {
  const text = gunzipSync(readFileSync(join(REPO_ROOT, 'data', 'nba', PLAYERS))).toString('utf8');
  const { headers, records } = parseCsvRecords(text, PLAYERS);
  const ix = (h: string) => headers.indexOf(h);
  const onD = records.filter((r) => r[ix('GAME_DATE')]?.startsWith(date));
  const first = onD[0] as string[];
  const team = onD.filter(
    (r) =>
      r[ix('GAME_ID')] === first[ix('GAME_ID')] &&
      r[ix('TEAM_ID')] === first[ix('TEAM_ID')] &&
      Number(r[ix('FGM')]) > 0,
  );
  const [gainer, loser] = team as [string[], string[]];
  for (const [row, sign] of [
    [gainer, 1],
    [loser, -1],
  ] as const) {
    for (const [col, by] of [
      ['FGM', 1],
      ['FGA', 1],
      ['PTS', 2],
    ] as const)
      row[ix(col)] = String(Number(row[ix(col)]) + sign * by);
  }
  mkdirSync(join(dir, 'player_box'), { recursive: true });
  writeFileSync(
    join(dir, 'player_box', 'player_game_logs_2021-22_regular.csv'),
    `${[headers, ...records].map(csvLine).join('\n')}\n`,
  );
  return { gainer: Number(gainer[ix('PLAYER_ID')]), loser: Number(loser[ix('PLAYER_ID')]) };
}
