// What a processor implementation is given and returns; the runner wraps it with run history and events.

import type { Logger } from 'pino';
import type { IsoDate } from '../dates.js';
import type { EventBus } from '../ports/events.js';
import type { ObjectStore } from '../ports/objectStore.js';
import type { StatsSource } from '../ports/source.js';
import type { Warehouse } from '../ports/warehouse.js';
import type { PendingWrites, ProcessingDecision } from '../runs/history.js';
import type { Row, TableSchema } from '../schema/table.js';
import type { ProcessorDefinition } from './definition.js';
import type { NbaSeasonType, Season } from './seasons.js';

export interface PipelinePorts {
  readonly warehouse: Warehouse;
  readonly objects: ObjectStore;
  readonly events: EventBus;
  readonly source: StatsSource;
}

export interface ProcessorContext extends PipelinePorts {
  readonly date: IsoDate;
  readonly season: Season;
  /** The NBA.com season type of the date's range. */
  readonly seasonType: NbaSeasonType;
  readonly log: Logger;
  /**
   * The uncommitted writes of the runs before this one in the same transaction (a date of Stage 3), for
   * a processor that reads what an earlier processor of the date wrote. Absent for a run on its own.
   */
  readonly pending?: PendingWrites;
}

/**
 * A run over several game dates of one season at once (a Stage 3 batch), in order. Lookbacks still read,
 * for each row, only the season's dates before the row's own date, so that a date's rows do not depend on
 * which other dates share its batch.
 */
export interface RangeContext extends PipelinePorts {
  readonly dates: readonly IsoDate[];
  readonly season: Season;
  readonly log: Logger;
  /** As ProcessorContext.pending: the uncommitted writes of the runs before this one in the transaction. */
  readonly pending?: PendingWrites;
}

/** The dates a context covers: a range context's, or the one date of a date's run. */
export function datesOf(ctx: ProcessorContext | RangeContext): readonly IsoDate[] {
  return 'dates' in ctx ? ctx.dates : [ctx.date];
}

export interface ProcessorResult {
  /** Rows written, or for Phase 1 the records fetched. */
  readonly rows: number;
  readonly decision: Extract<ProcessingDecision, 'processed' | 'no_games' | 'bootstrap' | 'forced'>;
  readonly details?: Readonly<Record<string, unknown>>;
  /** The date's rows for the processor's table; the runner replaces the date with them. */
  readonly write?: { readonly table: TableSchema; readonly rows: readonly Row[] };
}

export interface Processor {
  readonly definition: ProcessorDefinition;
  run(ctx: ProcessorContext): Promise<ProcessorResult>;
  /**
   * Phases 3-4: the result of every date of a range, computed in one pass; `run` is this over the one date
   * (there is one implementation). Every date of `ctx.dates` has a result (no_games when it has no rows).
   */
  runDates?(ctx: RangeContext): Promise<ReadonlyMap<IsoDate, ProcessorResult>>;
  /**
   * Starts reading the processor's inputs ahead of its run, into `ctx.pending`'s shared loads, so that the
   * independent reads of a date run at the same time. Only for inputs no earlier processor of the same
   * transaction writes (a Phase 3 date reads nba_raw; Phase 4 reads nba_analytics before the date).
   */
  prefetch?(ctx: ProcessorContext | RangeContext): void;
}

/**
 * A processor computed over a range of dates; a date's own run is the range of that date alone, so both
 * paths run the same SQL and code.
 */
export function rangeProcessor(
  definition: ProcessorDefinition,
  runDates: (ctx: RangeContext) => Promise<ReadonlyMap<IsoDate, ProcessorResult>>,
  prefetch?: (ctx: ProcessorContext | RangeContext) => void,
): Processor {
  return {
    definition,
    runDates,
    ...(prefetch ? { prefetch } : {}),
    async run(ctx) {
      const { date, seasonType: _type, ...rest } = ctx;
      const result = (await runDates({ ...rest, dates: [date] })).get(date);
      if (!result) throw new Error(`${definition.name} returned no result for ${date}`);
      return result;
    },
  };
}
