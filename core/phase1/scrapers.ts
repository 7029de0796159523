// Phase 1: fetch a date's games from the source and write them, as fetched, to the object store.

import { createHash } from 'node:crypto';
import { ProcessingError } from '../errors.js';
import { parseMatchup } from '../nba/teams.js';
import { getProcessorDefinition, RAW_SOURCES, type RawSourceName } from '../pipeline/definition.js';
import type { Processor, ProcessorContext, ProcessorResult } from '../pipeline/processor.js';
import { rawObjectKey } from '../ports/objectStore.js';
import { resultSetRecords, type StatsResponse } from '../ports/source.js';

export function rawKey(source: RawSourceName, date: string): string {
  const s = RAW_SOURCES[source];
  return rawObjectKey(s.prefix, date, s.file);
}

/** Stable JSON (two-space indent, trailing newline): re-scraping the same data writes the same bytes. */
export function rawJson(body: unknown): string {
  return `${JSON.stringify(body, null, 2)}\n`;
}

/** The content hash of a raw file as written, in its scraper's run details: what Phase 2 of the date reads. */
export function fileHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function rowCount(response: StatsResponse): number {
  return response.resultSets.reduce((n, s) => n + s.rowSet.length, 0);
}

function gameLogScraper(name: string, source: RawSourceName, playerOrTeam: 'P' | 'T'): Processor {
  return {
    definition: getProcessorDefinition(name),
    async run(ctx: ProcessorContext): Promise<ProcessorResult> {
      const response = await ctx.source.leagueGameLog({
        season: ctx.season.label,
        seasonType: ctx.seasonType,
        playerOrTeam,
        dateFrom: ctx.date,
        dateTo: ctx.date,
      });
      const text = rawJson(response);
      await ctx.objects.put(rawKey(source, ctx.date), text);
      const rows = rowCount(response);
      return {
        rows,
        decision: rows > 0 ? 'processed' : 'no_games',
        details: { seasonType: ctx.seasonType, file: fileHash(text) },
      };
    },
  };
}

export const teamGameLogScraper = gameLogScraper('nbac_team_game_log_scraper', 'teamGameLogs', 'T');
export const playerGameLogScraper = gameLogScraper('nbac_player_game_log_scraper', 'playerGameLogs', 'P');

/** The teams that play on a date, read from the date's team game log (scraped first). */
async function teamsPlaying(ctx: ProcessorContext): Promise<string[]> {
  const key = rawKey('teamGameLogs', ctx.date);
  const body = await ctx.objects.get(key);
  if (body === undefined) {
    throw new ProcessingError(
      `${ctx.objects.locate(key)} is missing: run nbac_team_game_log_scraper for ${ctx.date} before the roster scraper`,
    );
  }
  let response: StatsResponse;
  try {
    response = JSON.parse(body) as StatsResponse;
  } catch (err) {
    throw new ProcessingError(`${ctx.objects.locate(key)} is not valid JSON: ${(err as Error).message}`);
  }
  const teams = new Set<string>();
  for (const set of response.resultSets ?? []) {
    for (const rec of resultSetRecords(set)) {
      const m = parseMatchup(String(rec.MATCHUP ?? ''));
      if (m) {
        teams.add(m.home);
        teams.add(m.away);
      }
    }
  }
  return [...teams].sort();
}

export const teamRosterScraper: Processor = {
  definition: getProcessorDefinition('espn_team_roster_scraper'),
  async run(ctx: ProcessorContext): Promise<ProcessorResult> {
    const teams = await teamsPlaying(ctx);
    const rosters = [];
    for (const teamAbbr of teams) {
      rosters.push(await ctx.source.teamRoster({ season: ctx.season.label, teamAbbr, asOf: ctx.date }));
    }
    const text = rawJson({ gameDate: ctx.date, season: ctx.season.label, rosters });
    await ctx.objects.put(rawKey('teamRosters', ctx.date), text);
    const rows = rosters.reduce((n, r) => n + r.athletes.length, 0);
    return {
      rows,
      decision: teams.length > 0 ? 'processed' : 'no_games',
      details: { teams: teams.length, file: fileHash(text) },
    };
  },
};

/** Phase 1 in the order a date needs: the team log tells the roster scraper which teams play. */
export const PHASE1_SCRAPERS: readonly Processor[] = [teamGameLogScraper, playerGameLogScraper, teamRosterScraper];
