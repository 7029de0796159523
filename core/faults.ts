// Fault injection, for showing and testing retries, the failure log, the gate and targeted re-runs on the
// real data. --faults / BACKFILL_FAULTS names a JSON file, or is the JSON itself when it starts with `{` (how
// the chart passes faults to pods, whose root filesystem is read-only: `{"permanent":["2021-10-20"]}`):
//   { "transient": ["2021-11-03"],            the date's player-log request fails on its first attempt only
//     "permanent": ["2021-11-05"],            ... fails on every attempt (a source outage for that date)
//     "corrupt": [{ "date": "2021-11-07", "file": "playerGameLogs", "how": "negative-minutes" }],
//     "processorErrors": [{ "date": "2022-01-12", "processor": "player_daily_cache" }] }
//                                          that Phase 3-4 processor throws on that date in Stage 3
// `how`: invalid-json, negative-minutes, duplicate-row (the file is rewritten as it is stored), drop-game (one
// game's rows vanish from the file) or empty (the source itself answers an empty result set, or empty rosters).

import { z } from 'zod';
import { isInlineFaults } from './config.js';
import { isIsoDate } from './dates.js';
import { ProcessingError } from './errors.js';
import { parseJsonFile, readJsonFile } from './files.js';
import { PROCESSORS, RAW_SOURCES, type RawSourceName } from './pipeline/definition.js';
import type { Processor } from './pipeline/processor.js';
import type { ObjectStore } from './ports/objectStore.js';
import type { LeagueGameLogQuery, RosterQuery, StatsResponse, StatsSource } from './ports/source.js';

const date = z.string().refine(isIsoDate, 'must be a date YYYY-MM-DD');

/** The processors an injected error can make throw: Stage 3's. */
const STAGE3_PROCESSOR_NAMES = PROCESSORS.filter((p) => p.phase === 3 || p.phase === 4).map((p) => p.name) as [
  string,
  ...string[],
];

export const FaultsSchema = z
  .object({
    transient: z.array(date).default([]),
    permanent: z.array(date).default([]),
    corrupt: z
      .array(
        z
          .object({
            date,
            file: z.enum(Object.keys(RAW_SOURCES) as [RawSourceName, ...RawSourceName[]]),
            how: z.enum(['invalid-json', 'negative-minutes', 'duplicate-row', 'drop-game', 'empty']),
          })
          .strict(),
      )
      .default([]),
    processorErrors: z.array(z.object({ date, processor: z.enum(STAGE3_PROCESSOR_NAMES) }).strict()).optional(),
  })
  .strict();

export type ProcessorErrorFault = { readonly date: string; readonly processor: string };

export type Faults = z.infer<typeof FaultsSchema>;

/** The setting that holds the faults, as messages name it. */
export const FAULTS_SETTING = '--faults / BACKFILL_FAULTS';

/**
 * The faults of a --faults / BACKFILL_FAULTS value: the JSON itself when it starts with `{`, else the JSON file
 * at that path. Bad input names the setting (inline) or the file, and the first wrong field.
 */
export function loadFaults(setting: string): Faults {
  if (isInlineFaults(setting)) return parseJsonFile(setting, FAULTS_SETTING, 'fault JSON in', FaultsSchema);
  return readJsonFile(setting, 'fault file', FaultsSchema);
}

/**
 * Fails the player-log and roster requests of chosen dates. The team log is spared, so the schedule and
 * the plan still load and the failure lands where a backfill would meet it: in the date's Stage 1 index.
 * An `empty` corruption is answered here, by the source: a 200 with no rows, as a misbehaving API answers.
 */
export class FaultInjectingSource implements StatsSource {
  readonly description: string;
  readonly playerLogSeasonTypes: StatsSource['playerLogSeasonTypes'];

  constructor(
    private readonly inner: StatsSource,
    private readonly faults: Faults,
    private readonly attempt: number,
  ) {
    this.description = `${inner.description} (with injected faults)`;
    this.playerLogSeasonTypes = inner.playerLogSeasonTypes;
  }

  private answersEmpty(date: string, file: RawSourceName): boolean {
    return this.faults.corrupt.some((c) => c.how === 'empty' && c.date === date && c.file === file);
  }

  private check(date: string, what: string): void {
    if (this.faults.permanent.includes(date)) {
      throw new ProcessingError(`injected fault: ${what} for ${date} fails on every attempt (source outage)`);
    }
    if (this.faults.transient.includes(date) && this.attempt === 1) {
      throw new ProcessingError(`injected fault: ${what} for ${date} fails on attempt 1 only (HTTP 503)`, {
        transient: true,
      });
    }
  }

  async leagueGameLog(q: LeagueGameLogQuery): Promise<StatsResponse> {
    if (q.playerOrTeam === 'P' && q.dateFrom === q.dateTo) this.check(q.dateFrom, 'the player game log request');
    const response = await this.inner.leagueGameLog(q);
    const file = q.playerOrTeam === 'P' ? 'playerGameLogs' : 'teamGameLogs';
    if (q.dateFrom !== q.dateTo || !this.answersEmpty(q.dateFrom, file)) return response;
    return { ...response, resultSets: response.resultSets.map((set) => ({ ...set, rowSet: [] })) };
  }

  async teamRoster(q: RosterQuery) {
    this.check(q.asOf, `the ${q.teamAbbr} roster request`);
    const roster = await this.inner.teamRoster(q);
    return this.answersEmpty(q.asOf, 'teamRosters') ? { ...roster, athletes: [] } : roster;
  }
}

function corrupt(body: string, how: Exclude<Faults['corrupt'][number]['how'], 'empty'>): string {
  if (how === 'invalid-json') return body.slice(0, Math.floor(body.length / 2));
  const json = JSON.parse(body) as { resultSets?: { headers: string[]; rowSet: unknown[][] }[] };
  const set = json.resultSets?.[0];
  if (!set || set.rowSet.length === 0) return body;
  if (how === 'negative-minutes') (set.rowSet[0] as unknown[])[set.headers.indexOf('MIN')] = -5;
  if (how === 'duplicate-row') set.rowSet.push([...(set.rowSet[0] as unknown[])]);
  if (how === 'drop-game') {
    const g = set.headers.indexOf('GAME_ID');
    const first = (set.rowSet[0] as unknown[])[g];
    set.rowSet = set.rowSet.filter((r) => r[g] !== first);
  }
  return `${JSON.stringify(json, null, 2)}\n`;
}

/** Corrupts chosen raw files as they are written, every time, until the fault is removed. */
export class CorruptingObjectStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly faults: Faults,
  ) {
    this.description = `${inner.description} (with injected corruption)`;
  }

  async put(key: string, body: string): Promise<void> {
    // `empty` is the source's answer (FaultInjectingSource), not a rewrite of the stored file.
    const fault = this.faults.corrupt.find(
      (c) => c.how !== 'empty' && key.startsWith(`${RAW_SOURCES[c.file].prefix}/game_date=${c.date}/`),
    );
    await this.inner.put(key, fault && fault.how !== 'empty' ? corrupt(body, fault.how) : body);
  }

  get(key: string) {
    return this.inner.get(key);
  }

  list(prefix: string) {
    return this.inner.list(prefix);
  }

  locate(key: string) {
    return this.inner.locate(key);
  }
}

/** The error an injected processor fault throws. */
export function injectedProcessorError(processor: string, date: string): ProcessingError {
  return new ProcessingError(`injected fault: ${processor} throws on ${date}`);
}

/**
 * The processors, each made to throw on the dates a fault names for it: a date's run throws on that date, and
 * a run over a range of dates throws when the range holds one (as a processor failing on one of its dates
 * fails its whole pass).
 */
export function withProcessorFaults(
  processors: readonly Processor[],
  faults: readonly ProcessorErrorFault[],
): Processor[] {
  if (faults.length === 0) return [...processors];
  return processors.map((p) => {
    const dates = new Set(faults.filter((f) => f.processor === p.definition.name).map((f) => f.date));
    if (dates.size === 0) return p;
    const runDates = p.runDates;
    return {
      ...p,
      async run(ctx) {
        if (dates.has(ctx.date)) throw injectedProcessorError(p.definition.name, ctx.date);
        return p.run(ctx);
      },
      ...(runDates
        ? {
            async runDates(ctx) {
              const hit = ctx.dates.find((d) => dates.has(d));
              if (hit) throw injectedProcessorError(p.definition.name, hit);
              return runDates(ctx);
            },
          }
        : {}),
    } satisfies Processor;
  });
}
