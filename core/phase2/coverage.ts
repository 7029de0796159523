// Phase 2's coverage rules: a date's player log covers the games of its team log, and a replace never loses
// a game or team the warehouse holds. A short or empty answer from the source is bad input, never a load.

import { BadInputError } from '../errors.js';
import { parseMatchup } from '../nba/teams.js';
import type { ProcessorContext } from '../pipeline/processor.js';
import { type NbaSeasonType, seasonTypeOfGameId } from '../pipeline/seasons.js';
import { qualifiedName, type Row, type TableSchema } from '../schema/table.js';

/** A game's teams: the two the log says play it (MATCHUP), and those it has rows for. */
export interface GameTeams {
  readonly playing: ReadonlySet<string>;
  readonly withRows: ReadonlySet<string>;
}

/** Games by id, from records that carry GAME_ID, TEAM_ABBREVIATION and MATCHUP. */
export function gamesOf(
  records: readonly { readonly GAME_ID?: unknown; readonly TEAM_ABBREVIATION?: unknown; readonly MATCHUP?: unknown }[],
): Map<string, GameTeams> {
  const games = new Map<string, { playing: Set<string>; withRows: Set<string> }>();
  for (const r of records) {
    if (typeof r.GAME_ID !== 'string') continue;
    let g = games.get(r.GAME_ID);
    if (!g) games.set(r.GAME_ID, (g = { playing: new Set(), withRows: new Set() }));
    const m = parseMatchup(String(r.MATCHUP ?? ''));
    if (m) g.playing.add(m.away).add(m.home);
    if (typeof r.TEAM_ABBREVIATION === 'string') g.withRows.add(r.TEAM_ABBREVIATION);
  }
  return games;
}

const teamsOf = (g: GameTeams | undefined) => [...(g?.playing ?? [])].sort().join(', ');

/**
 * What the date's player log lacks against its team log, one line per game: (a) a player-log game the team
 * log does not have (the team log lost it); (b) a game with player rows for one team only; (c) a team-log
 * game without player rows, unless the source has no player rows for its season type (bundled playoffs).
 * No I/O: the rules as a table-driven test reads them.
 */
export function playerLogGaps(
  players: ReadonlyMap<string, GameTeams>,
  teams: ReadonlyMap<string, GameTeams>,
  coveredTypes: readonly NbaSeasonType[],
  dateType: NbaSeasonType,
): string[] {
  const gaps: string[] = [];
  for (const [gameId, game] of [...players].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!teams.has(gameId)) gaps.push(`game ${gameId} (${teamsOf(game)}) has player rows but is not in the team log`);
    const missing = [...game.playing].filter((t) => !game.withRows.has(t)).sort();
    if (missing.length > 0) gaps.push(`game ${gameId} (${teamsOf(game)}) has no player rows for ${missing.join(', ')}`);
  }
  for (const [gameId, game] of [...teams].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (players.has(gameId) || !coveredTypes.includes(seasonTypeOfGameId(gameId) ?? dateType)) continue;
    gaps.push(`game ${gameId} (${teamsOf(game)}) is in the team log but has no player rows`);
  }
  return gaps;
}

/** Throws the gaps of playerLogGaps as bad input that names the date, both files and every game. */
export function requirePlayerLogCoverage(
  ctx: Pick<ProcessorContext, 'date'>,
  files: { readonly players: string; readonly teams: string },
  gaps: readonly string[],
): void {
  if (gaps.length === 0) return;
  throw new BadInputError(
    `${files.players}: the player game log of ${ctx.date} does not cover the games of its team game log ${files.teams}; nothing of the date is loaded:\n  ${gaps.join('\n  ')}`,
    { where: files.players },
  );
}

/** What a replace must keep: a game and team (player-derived tables) or a team (rosters). */
export interface HeldKey {
  readonly table: TableSchema;
  /** Columns whose values, together, are one held thing. */
  readonly columns: readonly string[];
}

const keyOf = (row: Row, columns: readonly string[]) => columns.map((c) => String(row[c])).join(' ');

/**
 * Rule (d): the new rows of a date keep every game (and team) the table holds for it, so a source that
 * answers less than before cannot replace good rows. `guarded` is every table a guard of the date reads
 * (the four of Phase 2): they are read in one query, shared by the date's processors in a batch.
 */
export async function refuseLosses(
  ctx: Pick<ProcessorContext, 'date' | 'warehouse' | 'pending'>,
  held: HeldKey,
  rows: readonly Row[],
  location: string,
  guarded: readonly HeldKey[] = [held],
): Promise<void> {
  const name = qualifiedName(held.table);
  const cols = held.columns.join(', ');
  const tables = guarded.includes(held) ? guarded : [...guarded, held];
  const load = () => heldKeys(ctx, tables);
  const key = `phase2 held keys ${ctx.date} ${tables.map((g) => qualifiedName(g.table)).join(' ')}`;
  const existing = (await (ctx.pending ? ctx.pending.shared(key, load) : load())).get(name) ?? [];
  if (existing.length === 0) return;
  const fresh = new Set(rows.map((r) => keyOf(r, held.columns)));
  const lost = existing.filter((k) => !fresh.has(k));
  if (lost.length === 0) return;
  throw new BadInputError(
    `${name} for ${ctx.date}: the new rows from ${location} lack ${lost.length} (${cols}) the table holds: ${lost.join('; ')}. The source answered less than it did before; the table keeps its rows. If the source has really dropped them, delete them from ${name} first.`,
    { where: location },
  );
}

/**
 * The distinct keys each table holds for the date, ordered by its key columns, as keyOf writes them: one
 * UNION ALL over the tables, each row naming its table, its key columns as k0, k1, ... (NULL past its own).
 */
async function heldKeys(
  ctx: Pick<ProcessorContext, 'date' | 'warehouse'>,
  guarded: readonly HeldKey[],
): Promise<Map<string, string[]>> {
  const width = Math.max(...guarded.map((g) => g.columns.length));
  const ks = Array.from({ length: width }, (_, i) => `k${i}`);
  const selects = guarded.map((g, t) => {
    const keys = ks.map(
      (k, i) => `${i < g.columns.length ? `CAST(${g.columns[i]} AS STRING)` : 'CAST(NULL AS STRING)'} AS ${k}`,
    );
    return `SELECT DISTINCT ${t} AS t, ${keys.join(', ')} FROM ${qualifiedName(g.table)} WHERE ${g.table.partitionColumn} = @date`;
  });
  const rows = await ctx.warehouse.query(`${selects.join('\nUNION ALL\n')}\nORDER BY t, ${ks.join(', ')}`, {
    date: ctx.date,
  });
  const out = new Map<string, string[]>(guarded.map((g) => [qualifiedName(g.table), []]));
  for (const r of rows) {
    const g = guarded[Number(r.t)] as HeldKey;
    (out.get(qualifiedName(g.table)) as string[]).push(
      ks
        .slice(0, g.columns.length)
        .map((k) => String(r[k]))
        .join(' '),
    );
  }
  return out;
}
