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
   * Starts reading the processor's inputs ahead of its run, into `ctx.pending`'s shared loads, so that the
   * independent reads of a date run at the same time. Only for inputs no earlier processor of the same
   * transaction writes (a Phase 3 date reads nba_raw; Phase 4 reads nba_analytics before the date).
   */
  prefetch?(ctx: ProcessorContext): void;
}
