// Stage 1 and Stage 2 commands: `stage1`, `failures`, `retry`, and the shared way a Stage 1 job is run.

import { type Command, Option } from 'commander';
import type { IsoDate } from '../../core/dates.js';
import { BadInputError, EXIT_OK, EXIT_PROCESSING_FAILURE, oneLine } from '../../core/errors.js';
import { parseIndexes } from '../../core/jobs/indexes.js';
import { DEFAULT_NAMESPACE, NAMESPACE_ENV } from '../../core/jobs/spec.js';
import { requireBackfillPhase } from '../../core/pipeline/definition.js';
import { resolveSeasons, type Season, seasonRange } from '../../core/pipeline/seasons.js';
import { getProcessor } from '../../core/processors.js';
import { ProgressReporter } from '../../core/progress.js';
import { runProcessor } from '../../core/runner.js';
import { latestRuns } from '../../core/runs/history.js';
import { readFailureLog } from '../../core/stages/failureLog.js';
import { openFailures, runStage1, type Stage1Result } from '../../core/stages/stage1.js';
import { checkpointAfter } from '../checkpoint.js';
import { type CommandContext, openCluster, reportError, withContext, withoutAdapters } from '../context.js';
import { formatTable } from '../output.js';
import {
  addRuntimeOptions,
  addSelectionOptions,
  localRuntime,
  parallelismOf,
  type RuntimeFlags,
  type SelectionFlags,
  selectFromPlans,
} from '../selection.js';
import { formatResume, GracefulStop, sameCommand } from '../signals.js';
import { formatOf, formatOption, type Streams, streamsFor } from '../streams.js';
import { statusSnapshots } from './status.js';

/** Commander's way to take an option more than once. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The job's dates that neither loaded nor failed: interrupted, or never started because the run was stopped. */
export function notLoaded(result: Stage1Result): IsoDate[] {
  const done = new Set([...parseIndexes(result.status.completedIndexes), ...parseIndexes(result.status.failedIndexes)]);
  return result.dates.filter((_d, i) => !done.has(i));
}

/** Whether the job stopped because the run was asked to stop (SIGINT or SIGTERM) before every date ran. */
export function wasInterrupted(result: Stage1Result): boolean {
  return result.status.conditions.some((c) => c.type === 'Suspended');
}

/** One season's Stage 1 job in `stage1 --format json` (and `run --format json`). */
export interface Stage1SeasonJson {
  readonly season: string;
  readonly job: string;
  readonly dates: number;
  /** Dates loaded by this job (the unchanged ones included). */
  readonly loaded: number;
  /** Dates whose raw files were those of their last load: not written again (--force writes them). */
  readonly unchanged: readonly IsoDate[];
  readonly failed: readonly {
    readonly date: IsoDate;
    readonly index: number;
    readonly processor: string | null;
    readonly attempts: number;
    readonly reason: string;
    readonly error: string | null;
    readonly log: string;
  }[];
  /** Dates neither loaded nor failed: the run was interrupted before they ran. */
  readonly notLoaded: readonly IsoDate[];
  readonly completedIndexes: string;
  readonly failedIndexes: string;
  /** The failure log file, or null when it could not be written (failureLogError says why). */
  readonly failureLog: string | null;
  readonly failureLogError: string | null;
  readonly wallSeconds: number;
}

/** `backfill stage1 --format json`. */
export interface Stage1Json {
  readonly seasons: readonly Stage1SeasonJson[];
  /** The signal that stopped the command, or null. */
  readonly interrupted: string | null;
  /** The command that resumes an interrupted run, or null. */
  readonly resume: string | null;
  readonly exitCode: number;
}

export function stage1Json(result: Stage1Result): Stage1SeasonJson {
  const rest = notLoaded(result);
  return {
    season: result.season,
    job: result.jobName,
    dates: result.dates.length,
    loaded: result.dates.length - result.failed.length - rest.length,
    unchanged: result.unchanged,
    failed: result.failed.map((f) => ({
      date: f.date,
      index: f.index,
      processor: f.processor ?? null,
      attempts: f.attempts,
      reason: f.reason,
      error: f.error ?? null,
      log: f.logs,
    })),
    notLoaded: rest,
    completedIndexes: result.status.completedIndexes,
    failedIndexes: result.status.failedIndexes,
    failureLog: result.failureLogError ? null : result.failureLogFile,
    failureLogError: result.failureLogError,
    wallSeconds: Math.round(result.wallSeconds * 10) / 10,
  };
}

/** Runs one Stage 1 job for a season's dates with progress on stdout, and prints its summary. */
export async function runStage1Job(
  ctx: CommandContext,
  season: Season,
  dates: readonly IsoDate[],
  flags: RuntimeFlags,
  purpose = 'stage1',
  signal?: AbortSignal,
  io: Streams = streamsFor(),
): Promise<Stage1Result> {
  // The invocation's run names the job: its folder, logs and failure log are this run's own.
  const runId = ctx.runId();
  const runtime = localRuntime(ctx, flags);
  const progress = new ProgressReporter(`[${purpose} ${season.label}]`, dates.length, io.progress);
  const snapshots = statusSnapshots(ctx);
  await snapshots.start(season.label, 'stage1');
  const result = await runStage1({
    season: season.label,
    dates,
    parallelism: parallelismOf(flags),
    purpose,
    runId,
    force: flags.force ?? false,
    config: ctx.config,
    runtime,
    warehouse: ctx.adapters.warehouse,
    jobDir: (name) => runtime.jobDir(name),
    onIndex: (e) => {
      snapshots.update(season.label, 'stage1');
      progress.onIndex(e, (i) => `${dates[i]} (index ${i})`);
    },
    signal,
  });
  await snapshots.flush(season.label, null);
  progress.finish();
  // The job's commits and the failure rows are in the warehouse: out of the WAL with them.
  await checkpointAfter(ctx.adapters.warehouse, `${purpose} ${season.label}`);
  if (result.failureLogError) process.stderr.write(`${result.failureLogError}\n`);
  const rest = notLoaded(result);
  const ok = result.dates.length - result.failed.length - rest.length;
  const interrupted = wasInterrupted(result)
    ? `, INTERRUPTED: ${rest.length} not loaded (${rest[0]}${rest.length > 1 ? ` .. ${rest.at(-1)}` : ''})`
    : '';
  const same = result.unchanged.length;
  const unchanged =
    same > 0 ? ` (${same} unchanged since their last load: not written again; --force writes them)` : '';
  io.say(
    `${season.label}: job ${result.jobName}: ${ok} of ${result.dates.length} dates loaded${unchanged}, ${result.failed.length} failed${interrupted}, in ${result.wallSeconds.toFixed(1)} s ` +
      `(completedIndexes "${result.status.completedIndexes}", failedIndexes "${result.status.failedIndexes}"); no downstream trigger sent\n`,
  );
  if (result.failed.length > 0) {
    io.sayFailedRows(
      formatTable(
        result.failed.map((f) => ({
          date: f.date,
          index: f.index,
          processor: f.processor ?? '-',
          attempts: f.attempts,
          reason: f.reason,
          error: oneLine(f.error ?? '-', 120),
          log: f.logs,
        })),
      ),
      () => true,
    );
    io.say(
      (result.failureLogError
        ? 'failure log: not written (see above); the failures are in nba_reference.backfill_failure_log\n'
        : `failure log: ${result.failureLogFile} (and nba_reference.backfill_failure_log)\n`) +
        `after fixing the cause: backfill retry --season ${season.label}\n`,
    );
  }
  return result;
}

export function registerStage1(program: Command): void {
  addRuntimeOptions(
    addSelectionOptions(
      program
        .command('stage1')
        .description(
          'Stage 1: Phase 1-2 for every game date of the plan, in parallel, as an Indexed Job (one index per date)',
        ),
    ),
  )
    .addOption(formatOption())
    .addHelpText(
      'after',
      '\nA failed date is retried once after a short pause, then recorded; the batch never stops for it and sends no\ndownstream trigger. Bad input fails its date at once (no retry). Exit 1 if any date failed.\nSIGINT (Ctrl-C) or SIGTERM: no new date starts, the dates in progress are stopped (not committed), the\nfailure log is written, and it exits 130 or 143 with the command that resumes; a second signal stops at once.',
    )
    .action(async (flags: SelectionFlags & RuntimeFlags & { format: string }, command: Command) => {
      const stop = new GracefulStop();
      const io = streamsFor(formatOf(flags));
      await withContext(command, async (ctx) => {
        let failed = 0;
        const seasons: Stage1SeasonJson[] = [];
        const done = (exitCode: number, resume: string | null = null) => {
          io.json({ seasons, interrupted: stop.received ?? null, resume, exitCode } satisfies Stage1Json);
          return exitCode;
        };
        for (const { season, dates } of await selectFromPlans(ctx.config.planDir, flags)) {
          if (dates.length === 0) {
            io.say(`${season.label}: no game dates selected (--season-type ${flags.seasonType})\n`);
            continue;
          }
          const result = await runStage1Job(
            ctx,
            season,
            dates.map((d) => d.date),
            flags,
            'stage1',
            stop.signal,
            io,
          );
          seasons.push(stage1Json(result));
          failed += result.failed.length;
          if (stop.received) {
            // One season: start again at its first date not loaded (failed dates are retry's). Several: the
            // same command, which loads again what is already loaded (a date's load replaces its rows).
            const first = notLoaded(result)[0];
            const resume = flags.season !== 'all' && first ? sameCommand({ '--start-date': first }) : sameCommand();
            io.say(formatResume(stop, resume, 'no new date was started'));
            return done(stop.exitCode ?? EXIT_PROCESSING_FAILURE, resume);
          }
        }
        return done(failed > 0 ? EXIT_PROCESSING_FAILURE : EXIT_OK);
      }).finally(() => stop.finish());
    });

  program
    .command('failures')
    .description('Stage 2: the dates that are failing now, with their reasons and where their logs are')
    .requiredOption('--season <season>', 'season, e.g. 2021-22, or all')
    .addOption(new Option('--format <format>', 'table or json').choices(['table', 'json']).default('table'))
    .action(async (flags: { season: string; format: string }, command: Command) => {
      await withContext(command, async (ctx) => {
        const rows = [];
        for (const season of resolveSeasons(flags.season)) {
          for (const f of await openFailures(ctx.adapters.warehouse, seasonRange(season)))
            rows.push({ season: season.label, ...f });
        }
        if (flags.format === 'json') process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        else if (rows.length === 0) process.stdout.write(`no failing dates in ${flags.season}\n`);
        else
          process.stdout.write(
            formatTable(
              rows.map((r) => ({
                season: r.season,
                date: r.date,
                processor: r.processor ?? '-',
                error: oneLine(r.error ?? '-', 120),
                log: r.logs ?? '-',
              })),
            ),
          );
        return EXIT_OK;
      });
    });

  addRuntimeOptions(
    program
      .command('retry')
      .description(
        'Stage 2: re-run exactly the failed dates (from the warehouse or a failure log), or every failed run',
      )
      .option('--season <season>', 'season, e.g. 2021-22, or all')
      .option('--from-log <file>', 'a failure log written by stage1 (its failed dates are re-run)')
      .option('--failed-runs', 're-run every (processor, date) whose latest run failed, by processor name')
      .option('--phase <n>', 'with --failed-runs: the phase (1 or 2)')
      .option(
        '--cluster',
        "create the retry Job (and its plan ConfigMap) in the Kubernetes cluster of the current kubeconfig context; the dates are those failing in the cluster's Jobs, or --from-log's",
      )
      .option(
        '--namespace <namespace>',
        `with --cluster: the namespace (default $${NAMESPACE_ENV} or ${DEFAULT_NAMESPACE})`,
      )
      .option(
        '--set-env <NAME=value>',
        'with --cluster: a setting of the retry pods added or replaced (repeatable), e.g. a corrected BACKFILL_FAULTS',
        collect,
        [],
      )
      .option(
        '--unset-env <NAME>',
        "with --cluster: a setting of the model Stage 1 Job's pods left out of the retry (repeatable)",
        collect,
        [],
      ),
  ).action(
    async (
      flags: RuntimeFlags & {
        season?: string;
        fromLog?: string;
        failedRuns?: boolean;
        phase?: string;
        cluster?: boolean;
        namespace?: string;
        setEnv: string[];
        unsetEnv: string[];
      },
      command: Command,
    ) => {
      if (!flags.cluster && (flags.setEnv.length > 0 || flags.unsetEnv.length > 0)) {
        reportError(
          new BadInputError(
            `${flags.setEnv.length > 0 ? '--set-env' : '--unset-env'} changes the settings of a retry Job: it goes with --cluster (here, give the setting itself, e.g. --faults)`,
            { where: flags.setEnv.length > 0 ? '--set-env' : '--unset-env' },
          ),
        );
        return;
      }
      if (flags.cluster) {
        await withoutAdapters(() => retryInCluster(flags));
        return;
      }
      // A bad failure log is refused before the warehouse is even opened.
      let fromLog: { season: Season; dates: IsoDate[] } | undefined;
      try {
        if (flags.fromLog) fromLog = failureLogPlan(flags.fromLog, flags.season);
      } catch (err) {
        reportError(err);
        return;
      }
      const stop = new GracefulStop();
      await withContext(command, async (ctx) => {
        if (flags.namespace) throw new BadInputError('--namespace goes with --cluster', { where: '--namespace' });
        if (flags.failedRuns) return retryFailedRuns(ctx, flags.phase, flags.season, stop);
        if (flags.phase) throw new BadInputError('--phase goes with --failed-runs', { where: '--phase' });
        let plans: { season: Season; dates: IsoDate[] }[];
        if (fromLog) {
          plans = [fromLog];
        } else {
          if (!flags.season)
            throw new BadInputError('give --season, --from-log or --failed-runs', { where: '--season' });
          plans = [];
          for (const season of resolveSeasons(flags.season)) {
            plans.push({
              season,
              dates: (await openFailures(ctx.adapters.warehouse, seasonRange(season))).map((f) => f.date),
            });
          }
        }
        let failed = 0;
        for (const { season, dates } of plans) {
          if (dates.length === 0) {
            process.stdout.write(`${season.label}: no failed dates to retry\n`);
            continue;
          }
          process.stdout.write(`${season.label}: retrying ${dates.length} date(s): ${dates.join(', ')}\n`);
          failed += (await runStage1Job(ctx, season, dates, flags, 'retry', stop.signal)).failed.length;
          // The dates not retried are still failing, so the same command picks them up again.
          if (stop.received) {
            process.stdout.write(formatResume(stop, sameCommand(), 'no new date was started'));
            return stop.exitCode;
          }
        }
        return failed > 0 ? EXIT_PROCESSING_FAILURE : EXIT_OK;
      }).finally(() => stop.finish());
    },
  );
}

/**
 * The dates of a failure log (each checked against the log's season by readFailureLog), refused when
 * --season names other seasons: retrying 2022-23's failures under `--season 2021-22` is a mistake to stop.
 */
function failureLogPlan(file: string, seasonFlag: string | undefined): { season: Season; dates: IsoDate[] } {
  const log = readFailureLog(file);
  const [season] = resolveSeasons(log.season);
  if (seasonFlag && !resolveSeasons(seasonFlag).some((s) => s.label === log.season)) {
    throw new BadInputError(`--from-log ${file} is for season ${log.season}, not ${seasonFlag}`, {
      where: '--from-log',
    });
  }
  return { season: season as Season, dates: log.failed.map((f) => f.date) };
}

/**
 * `retry --cluster`: a retry Job per season for the dates failing in the cluster (or in a failure log), created
 * next to the season's Stage 1 Job; the controller runs the gate again when it ends.
 */
async function retryInCluster(
  flags: RuntimeFlags & {
    season?: string;
    fromLog?: string;
    failedRuns?: boolean;
    phase?: string;
    namespace?: string;
    setEnv: string[];
    unsetEnv: string[];
  },
): Promise<number> {
  if (flags.failedRuns || flags.phase) {
    throw new BadInputError('--cluster retries failed dates as a Job; --failed-runs runs on this machine only', {
      where: '--cluster',
    });
  }
  const { clusterFailedDates, createRetryJob, retryOverrides } = await import('../../core/kubernetes/cluster.js');
  // Checked before the cluster is read: a typo fails here, not in every retry pod.
  const overrides = retryOverrides(flags.setEnv, flags.unsetEnv);
  const kube = await openCluster(flags.namespace);
  const namespace = kube.namespace;
  let plans: { season: Season; dates: IsoDate[] }[] = [];
  if (flags.fromLog) {
    plans = [failureLogPlan(flags.fromLog, flags.season)];
  } else {
    if (!flags.season) throw new BadInputError('give --season or --from-log', { where: '--season' });
    for (const season of resolveSeasons(flags.season)) {
      plans.push({ season, dates: await clusterFailedDates(kube, season.label) });
    }
  }
  for (const { season, dates } of plans) {
    if (dates.length === 0) {
      process.stdout.write(`${season.label}: no failed dates to retry in namespace ${namespace}\n`);
      continue;
    }
    const made = await createRetryJob(kube, season.label, dates, parallelismOf(flags), overrides);
    const changed = [
      ...Object.keys(overrides.set ?? {}).map((n) => `${n} set`),
      ...(overrides.unset ?? []).map((n) => `${n} left out`),
    ];
    process.stdout.write(
      `${season.label}: retry job ${made.job} created in namespace ${namespace} for ${dates.length} date(s): ${dates.join(', ')}\n` +
        `  (settings from ${made.model}${changed.length > 0 ? `, ${changed.join(', ')}` : ''}; plan in configmap ${made.planConfigMap}); the controller runs the gate again when it ends\n` +
        `  follow it: kubectl get job ${made.job} -n ${namespace} -w\n`,
    );
  }
  return EXIT_OK;
}

/** The platform's retry_all_failures: every (processor, date) whose latest run failed, run again by name. */
async function retryFailedRuns(
  ctx: CommandContext,
  phaseFlag: string | undefined,
  seasonFlag: string | undefined,
  stop?: GracefulStop,
): Promise<number> {
  if (!phaseFlag) throw new BadInputError('--failed-runs needs --phase 1 or 2', { where: '--phase' });
  const phase = requireBackfillPhase(phaseFlag);
  const seasons = resolveSeasons(seasonFlag ?? 'all');
  const targets: { processor: string; date: IsoDate }[] = [];
  for (const season of seasons) {
    for (const r of await latestRuns(ctx.adapters.warehouse, seasonRange(season), [phase])) {
      if (r.status !== 'success') targets.push({ processor: r.processorName, date: r.dataDate });
    }
  }
  if (targets.length === 0) {
    process.stdout.write(`no failed phase ${phase} runs in ${seasonFlag ?? 'any season'}\n`);
    return EXIT_OK;
  }
  let failed = 0;
  for (const [i, t] of targets.entries()) {
    if (stop?.received) {
      // Each run commits alone; the runs not reached still failed last, so the same command finds them.
      process.stdout.write(`${i} of ${targets.length} failed runs re-run before the stop\n`);
      process.stdout.write(formatResume(stop, sameCommand()));
      return stop.exitCode ?? EXIT_OK;
    }
    const out = await runProcessor(ctx.adapters, ctx.log, getProcessor(t.processor), t.date, {
      trigger: { command: 'backfill retry --failed-runs', stage: 'stage2' },
      skipDownstreamTrigger: true,
    });
    process.stdout.write(`${t.date}  ${t.processor}  ${out.ok ? 'ok' : `FAILED: ${oneLine(out.error.message)}`}\n`);
    if (!out.ok) failed++;
  }
  process.stdout.write(`${targets.length - failed} of ${targets.length} failed runs now succeed\n`);
  return failed > 0 ? EXIT_PROCESSING_FAILURE : EXIT_OK;
}
