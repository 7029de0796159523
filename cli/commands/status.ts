// `backfill status`: where each season's backfill stands and the command to run next; reads only, also while a
// long command holds the warehouse (from the status snapshot that command writes).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { openWarehouseReadOnly } from '../../core/adapters/index.js';
import { BadInputError, EXIT_OK, ProcessingError, redact, WarehouseLockedError } from '../../core/errors.js';
import { DEFAULT_NAMESPACE, NAMESPACE_ENV } from '../../core/jobs/spec.js';
import type { ClusterReading } from '../../core/kubernetes/clusterStatus.js';
import { getSeason, SEASONS, type Season } from '../../core/pipeline/seasons.js';
import { type Plan, planPath, readPlan, validateSelection } from '../../core/plan.js';
import { observeSeason } from '../../core/stages/observe.js';
import { readSnapshot, StatusSnapshots, snapshotPath } from '../../core/stages/statusSnapshot.js';
import { type ClusterFacts, type SeasonObservation, type SeasonStatus, seasonStatus } from '../../core/status.js';
import { type CommandContext, configFrom, type GlobalFlags, openCluster, withoutAdapters } from '../context.js';
import { addSelectionOptions, type SelectionFlags } from '../selection.js';
import { streamsFor } from '../streams.js';

export const STATUS_FORMATS = ['table', 'json'] as const;

/** Where a season's status was read from, when it was a running command's snapshot. */
export interface SnapshotSource {
  readonly file: string;
  readonly writtenAt: string;
  readonly pid: number;
  readonly command: string;
}

/** With --cluster, also `cluster`: the namespace, the Jobs not ended, the newest Stage 3 Job. */
export type StatusEntry = SeasonStatus & { readonly snapshot: SnapshotSource | null; readonly cluster?: ClusterFacts };

const snapshotsByContext = new WeakMap<CommandContext, StatusSnapshots>();

/** The status snapshots of the command `ctx` belongs to (stage1, retry, stage3, run): one writer per command. */
export function statusSnapshots(ctx: CommandContext): StatusSnapshots {
  let snapshots = snapshotsByContext.get(ctx);
  if (!snapshots) {
    snapshots = new StatusSnapshots({
      warehouse: ctx.adapters.warehouse,
      planDir: ctx.config.planDir,
      logDir: ctx.config.logDir,
      command: redact(['backfill', ...process.argv.slice(2)].join(' ')),
      onError: (err) => ctx.log.warn({ err }, 'could not write the status snapshot; the stage goes on'),
    });
    snapshotsByContext.set(ctx, snapshots);
  }
  return snapshots;
}

/** Whether a process exists (signal 0 only asks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Each season's snapshot, when the process holding the warehouse wrote it; otherwise an error saying why not. */
function fromSnapshots(
  locked: WarehouseLockedError,
  logDir: string,
  seasons: readonly Season[],
): { obs: SeasonObservation; snapshot: SnapshotSource }[] {
  return seasons.map((season) => {
    const file = snapshotPath(logDir, season.label);
    const snap = readSnapshot(file);
    const holder = locked.holderPid;
    const usable = snap && (holder !== undefined ? snap.pid === holder : alive(snap.pid));
    if (!snap || !usable) {
      const why = !snap
        ? `${file} does not exist`
        : `${file} was written by PID ${snap.pid} at ${snap.writtenAt}, not by the process holding the lock`;
      throw new ProcessingError(
        `cannot show the status of ${season.label}: the warehouse ${locked.path} is locked by another process${holder !== undefined ? ` (PID ${holder})` : ''} and ${why} (stage1, retry, stage3 and run write it while they run). Run status again when that process ends. ${locked.message}`,
      );
    }
    return {
      obs: snap.observation,
      snapshot: { file, writtenAt: snap.writtenAt, pid: snap.pid, command: snap.command },
    };
  });
}

function dayList(dates: readonly string[], max = 6): string {
  return dates.slice(0, max).join(', ') + (dates.length > max ? `, ... (${dates.length})` : '');
}

/** The status as a person reads it: one block per season. */
export function formatStatus(entries: readonly StatusEntry[]): string {
  const lines: string[] = [];
  const shown = new Set<string>();
  for (const e of entries) {
    if (e.snapshot && !shown.has(`${e.snapshot.pid}`)) {
      shown.add(`${e.snapshot.pid}`);
      lines.push(
        `The warehouse is held by a running command (PID ${e.snapshot.pid}: ${e.snapshot.command}); showing the status snapshot it wrote.`,
      );
    }
  }
  for (const e of entries) {
    const sel = [
      e.selection.seasonType,
      ...(e.selection.startDate || e.selection.endDate
        ? [`${e.selection.startDate ?? 'start'}..${e.selection.endDate ?? 'end'}`]
        : []),
    ].join(', ');
    if (lines.length > 0) lines.push('');
    lines.push(
      `${e.season} (${sel})${e.cluster ? `  [cluster: namespace ${e.cluster.namespace}, and the warehouse]` : ''}${e.snapshot ? `  [snapshot written at ${e.snapshot.writtenAt} by PID ${e.snapshot.pid}: ${e.snapshot.file}]` : ''}`,
    );
    const s1 = e.stage1;
    lines.push(
      `  stage 1     ${s1.dates} dates: ${s1.loaded} loaded, ${s1.failed} failed${s1.failed ? ` (${dayList(s1.failedDates)})` : ''}, ${s1.neverRun} never run${s1.running ? '; RUNNING now' : ''}`,
    );
    const g = e.gate;
    lines.push(
      `  gate        ${g.passed === null ? 'not run (Stage 1 has dates never run)' : g.passed ? 'passed' : `FAILED: ${g.missingDates.length} date(s) incomplete (${dayList(g.missingDates)})`}`,
    );
    const s3 = e.stage3;
    const f = s3.lastFailure;
    lines.push(
      `  stage 3     complete through ${s3.completeThrough ?? '(no date)'}, ${s3.remaining} remaining${s3.running ? '; RUNNING now' : ''}`,
    );
    if (s3.stale.length > 0)
      lines.push(
        `              STALE: ${s3.stale.length} date(s) from ${s3.stale[0]} (${dayList(s3.stale)}): their inputs were corrected`,
      );
    if (f) lines.push(`              last failure ${f.date}: ${f.processor} (${f.check}): ${f.error ?? '-'}`);
    const v = e.validation;
    lines.push(
      `  validation  ${v.passed === null ? 'not run' : v.passed ? 'passed' : 'FAILED'}${v.report ? ` (${v.report})` : ''}`,
    );
    if (e.cluster) {
      const c = e.cluster;
      const running = c.runningJobs.map((j) => j.name).join(', ');
      const s3 = c.stage3Job ? `Stage 3 Job ${c.stage3Job.name} ${c.stage3Job.outcome ?? 'running'}` : 'no Stage 3 Job';
      lines.push(`  jobs        ${running ? `running: ${running}` : 'none running'}; ${s3}`);
    }
    lines.push(`  next        ${e.next ?? '(nothing to run)'}`, `              ${e.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The cluster of the current kubeconfig context, read once for every season. */
async function readClusterOf(namespace: string | undefined): Promise<ClusterReading> {
  const { readCluster } = await import('../../core/kubernetes/clusterStatus.js');
  return readCluster(await openCluster(namespace));
}

/** The seasons status covers: the one named, or every season that has a plan. */
function seasonsOf(flag: string, planDir: string): Season[] {
  if (flag !== 'all') return [getSeason(flag)];
  return SEASONS.filter((s) => existsSync(planPath(planDir, s.label)));
}

export function registerStatus(program: Command): void {
  addSelectionOptions(
    program
      .command('status')
      .description(
        'where each season stands: Stage 1, the gate, Stage 3, validation, and the command to run next (reads only)',
      ),
    'all',
  )
    .addOption(new Option('--format <format>', 'table or json').choices([...STATUS_FORMATS]).default('table'))
    .option(
      '--cluster',
      "also read the Kubernetes cluster of the current kubeconfig context: its Jobs (running, failed dates) and the controller's validation ConfigMaps; the next step is the cluster's",
    )
    .option(
      '--namespace <namespace>',
      `with --cluster: the namespace (default $${NAMESPACE_ENV} or ${DEFAULT_NAMESPACE})`,
    )
    .addHelpText(
      'after',
      "\nOpens the warehouse read-only. While stage1, retry, stage3 or run holds a DuckDB file, it shows the status\nsnapshot that command writes to <log dir>/status/<season>.json. The JSON form is documented in README.\nWith --cluster, give the warehouse the cluster's pods use (--warehouse bigquery://...).",
    )
    .action(
      async (flags: SelectionFlags & { format: string; cluster?: boolean; namespace?: string }, command: Command) => {
        await withoutAdapters(async () => {
          if (flags.namespace && !flags.cluster) {
            throw new BadInputError('--namespace goes with --cluster', { where: '--namespace' });
          }
          const config = configFrom(command.optsWithGlobals<GlobalFlags>());
          const seasons = seasonsOf(flags.season, config.planDir);
          for (const season of seasons) validateSelection(season, flags);
          const plans: Plan[] = [];
          for (const season of seasons) plans.push(await readPlan(config.planDir, season.label));
          let observed: { obs: SeasonObservation; snapshot: SnapshotSource | null }[];
          try {
            const warehouse = await openWarehouseReadOnly(config);
            try {
              observed = [];
              for (const plan of plans) {
                observed.push({
                  obs: await observeSeason(warehouse, plan, join(config.logDir, 'reports')),
                  snapshot: null,
                });
              }
            } finally {
              await warehouse?.close();
            }
          } catch (err) {
            if (!(err instanceof WarehouseLockedError)) throw err;
            observed = fromSnapshots(err, config.logDir, seasons);
          }
          if (flags.cluster) {
            const cluster = await readClusterOf(flags.namespace);
            const { withCluster } = await import('../../core/kubernetes/clusterStatus.js');
            observed = observed.map((o) => ({ ...o, obs: withCluster(o.obs, cluster) }));
          }
          const entries: StatusEntry[] = observed.map((o) => ({
            ...seasonStatus(o.obs, flags),
            snapshot: o.snapshot,
            ...(o.obs.cluster ? { cluster: o.obs.cluster } : {}),
          }));
          if (flags.format === 'json') process.stdout.write(`${JSON.stringify({ seasons: entries }, null, 2)}\n`);
          else if (entries.length === 0)
            process.stdout.write(`no plans in ${config.planDir}: run backfill plan --season S first\n`);
          else streamsFor().say(formatStatus(entries));
          return EXIT_OK;
        });
      },
    );
}
