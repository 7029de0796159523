// Status snapshots: a long command writes each season's observations to <logDir>/status/<season>.json while it
// runs, so that `status` can answer while DuckDB's one writer keeps every other process out of the file.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError, messageOf } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import { SEASONS } from '../pipeline/seasons.js';
import { type Plan, readCommittedPlan } from '../plan.js';
import type { Warehouse } from '../ports/warehouse.js';
import type { SeasonObservation } from '../status.js';
import { observeSeason } from './observe.js';

export const SNAPSHOT_VERSION = 1;

export interface StatusSnapshot {
  readonly version: typeof SNAPSHOT_VERSION;
  /** ISO time the command wrote it, from its clock. */
  readonly writtenAt: string;
  /** The process that wrote it: `status` uses it only while that process holds the warehouse. */
  readonly pid: number;
  readonly command: string;
  readonly observation: SeasonObservation;
}

export function snapshotPath(logDir: string, season: string): string {
  return join(logDir, 'status', `${season}.json`);
}

/** The snapshot at `path`, or undefined when there is none; a file that is not a snapshot is named in the error. */
export function readSnapshot(path: string): StatusSnapshot | undefined {
  if (!existsSync(path)) return undefined;
  let body: Partial<StatusSnapshot>;
  try {
    body = JSON.parse(readFileSync(path, 'utf8')) as Partial<StatusSnapshot>;
  } catch (err) {
    throw new BadInputError(`${path}: not a status snapshot: ${messageOf(err)}`, { where: path });
  }
  if (
    body?.version !== SNAPSHOT_VERSION ||
    typeof body.pid !== 'number' ||
    typeof body.writtenAt !== 'string' ||
    typeof body.observation?.season !== 'string'
  ) {
    throw new BadInputError(`${path}: not a status snapshot of version ${SNAPSHOT_VERSION}`, { where: path });
  }
  return body as StatusSnapshot;
}

export interface StatusSnapshotsOptions {
  readonly warehouse: Warehouse;
  readonly planDir: string;
  readonly logDir: string;
  /** The command line, shown by `status`. */
  readonly command: string;
  /** @default process.pid */
  readonly pid?: number;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** Updates closer together than this are skipped (the final one of a stage never is). @default 1000 */
  readonly minIntervalMs?: number;
  /** Told when a snapshot cannot be written: a stage never fails for its snapshot. */
  readonly onError?: (err: unknown) => void;
}

/** One command's snapshots: every planned season at its start, then the season it works on as it goes. */
export class StatusSnapshots {
  private started = false;
  private lastWrite = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | undefined;
  private readonly plans = new Map<string, Plan | null>();
  private readonly now: () => Date;

  constructor(private readonly o: StatusSnapshotsOptions) {
    this.now = o.now ?? (() => new Date());
  }

  /**
   * At the command's first stage: nothing else writes the warehouse while this process holds it, so a snapshot
   * of every planned season now stays true until this command changes a season, which then writes its own.
   */
  async start(season: string, stage: 'stage1' | 'stage3'): Promise<void> {
    if (!this.started) {
      this.started = true;
      for (const s of SEASONS) if (s.label !== season) await this.write(s.label, null);
    }
    await this.flush(season, stage);
  }

  /**
   * A throttled update while a stage runs (not awaited by the stage; at most one in flight). Returns the write,
   * or undefined when it was skipped.
   */
  update(season: string, stage: 'stage1' | 'stage3'): Promise<void> | undefined {
    if (this.inFlight || this.now().getTime() - this.lastWrite < (this.o.minIntervalMs ?? 1000)) return undefined;
    this.inFlight = this.write(season, stage).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Writes now, after any update in flight: at a stage's start and end. */
  async flush(season: string, stage: 'stage1' | 'stage3' | null): Promise<void> {
    await this.inFlight;
    await this.write(season, stage);
  }

  private async plan(season: string): Promise<Plan | null> {
    if (!this.plans.has(season)) {
      this.plans.set(season, (await readCommittedPlan(this.o.planDir, season))?.plan ?? null);
    }
    return this.plans.get(season) ?? null;
  }

  private async write(season: string, stage: 'stage1' | 'stage3' | null): Promise<void> {
    this.lastWrite = this.now().getTime();
    try {
      const plan = await this.plan(season);
      if (!plan) return;
      const pid = this.o.pid ?? process.pid;
      const running = stage ? { stage, command: this.o.command, pid } : null;
      const observation = await observeSeason(this.o.warehouse, plan, join(this.o.logDir, 'reports'), running);
      const snapshot: StatusSnapshot = {
        version: SNAPSHOT_VERSION,
        writtenAt: this.now().toISOString(),
        pid,
        command: this.o.command,
        observation,
      };
      writeFileAtomic(snapshotPath(this.o.logDir, season), `${JSON.stringify(snapshot)}\n`);
    } catch (err) {
      this.o.onError?.(err);
    }
  }
}
