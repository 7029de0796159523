// Reads the facts `backfill status` derives a season's status from: run history, the gate, Stage 3's progress
// and the validation reports. Reads only.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { checkDataOf } from '../checks/data.js';
import type { IsoDate } from '../dates.js';
import { readJsonFile } from '../files.js';
import { runGate } from '../gate.js';
import { PROCESSORS } from '../pipeline/definition.js';
import { getSeason, seasonRange } from '../pipeline/seasons.js';
import type { Plan } from '../plan.js';
import type { Warehouse } from '../ports/warehouse.js';
import { latestRuns } from '../runs/history.js';
import { staleDates as staleDatesOf } from '../runs/versions.js';
import type { RunningCommand, SeasonObservation, Stage3Failure, ValidationReportRef } from '../status.js';
import { openFailures } from './stage1.js';
import { completeAmong } from './stage3.js';

const PHASE12 = PROCESSORS.filter((p) => p.phase === 1 || p.phase === 2).map((p) => p.name);
/** Pipeline order: the first processor of a date that did not succeed is the cause, the rest follow from it. */
const PIPELINE_ORDER = new Map(PROCESSORS.map((p, i) => [p.name, i]));

const ReportSchema = z.object({
  seasons: z.array(z.string()),
  dates: z.array(z.string()),
  passed: z.boolean(),
  generatedAt: z.string(),
});

/** The validation reports (`validation-*.json`) the validate command wrote into `dir`; none when it has none. */
export function readValidationReports(dir: string): ValidationReportRef[] {
  if (!existsSync(dir)) return [];
  const out: ValidationReportRef[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!/^validation-.*\.json$/.test(name)) continue;
    const path = join(dir, name);
    out.push({ path, ...readJsonFile(path, 'validation report', ReportSchema) });
  }
  return out;
}

/** The cause of each Stage 3 date that is not complete, with the check that blocked it from run history. */
async function stage3Failures(
  warehouse: Warehouse,
  runs: Awaited<ReturnType<typeof latestRuns>>,
  complete: Set<IsoDate>,
  planned: Set<IsoDate>,
): Promise<Stage3Failure[]> {
  const byDate = new Map<IsoDate, (typeof runs)[number]>();
  for (const r of runs) {
    if (r.status === 'success' || complete.has(r.dataDate) || !planned.has(r.dataDate)) continue;
    const prev = byDate.get(r.dataDate);
    if (!prev || (PIPELINE_ORDER.get(r.processorName) ?? 0) < (PIPELINE_ORDER.get(prev.processorName) ?? 0))
      byDate.set(r.dataDate, r);
  }
  const causes = [...byDate.values()];
  if (causes.length === 0) return [];
  const params = Object.fromEntries(causes.map((r, i) => [`r${i}`, r.runId]));
  const rows = await warehouse.query(
    `SELECT run_id, details FROM nba_reference.processor_run_history
      WHERE run_id IN (${causes.map((_r, i) => `@r${i}`).join(', ')})`,
    params,
  );
  const checkOf = new Map<string, string>();
  for (const row of rows) {
    try {
      const details = JSON.parse(String(row.details ?? '{}')) as { check?: unknown };
      if (typeof details.check === 'string') checkOf.set(String(row.run_id), details.check);
    } catch {
      // A details value that does not parse says nothing about the check: the run counts as an error.
    }
  }
  return causes.map((r) => ({
    date: r.dataDate,
    processor: r.processorName,
    check: checkOf.get(r.runId) ?? 'error',
    error: r.errorMessage,
    finishedAt: r.finishedAt,
  }));
}

/**
 * The facts about a season over its whole plan. `warehouse` undefined: there is none yet (nothing has run).
 * `running`: set by a command that writes its snapshot while it runs a stage of the season.
 */
export async function observeSeason(
  warehouse: Warehouse | undefined,
  plan: Plan,
  reportDir: string,
  running: RunningCommand | null = null,
): Promise<SeasonObservation> {
  const season = getSeason(plan.season);
  const planned = new Set(plan.dates.map((d) => d.date));
  const dates = [...planned].sort();
  const validationReports = readValidationReports(reportDir);
  const empty = {
    season: season.label,
    plan,
    loadedDates: [],
    failedDates: [],
    gateMissingDates: dates,
    stage3CompleteDates: [],
    stage3Failures: [],
    validationReports,
    running,
  };
  if (!warehouse || dates.length === 0) return empty;
  const range = seasonRange(season);

  const ok12 = new Map<IsoDate, number>();
  for (const r of await latestRuns(warehouse, range, [1, 2]))
    if (r.status === 'success' && PHASE12.includes(r.processorName))
      ok12.set(r.dataDate, (ok12.get(r.dataDate) ?? 0) + 1);
  const loadedDates = dates.filter((d) => ok12.get(d) === PHASE12.length);
  const failedDates = (await openFailures(warehouse, range)).map((f) => f.date).filter((d) => planned.has(d));

  const gate = await runGate(warehouse, [{ season: season.label, dates: plan.dates }]);
  const gateMissingDates = [
    ...new Set([...gate.tables.flatMap((t) => t.missingDates), ...gate.runProblems.map((p) => p.date)]),
  ].sort();

  const runs34 = await latestRuns(warehouse, range, [3, 4]);
  const complete = completeAmong(runs34, dates);
  const staleDates = staleDatesOf(await checkDataOf(warehouse).staleRuns(season.label)).filter((d) => planned.has(d));
  return {
    ...empty,
    loadedDates,
    failedDates,
    gateMissingDates,
    stage3CompleteDates: dates.filter((d) => complete.has(d)),
    staleDates,
    stage3Failures: await stage3Failures(warehouse, runs34, complete, planned),
  };
}
