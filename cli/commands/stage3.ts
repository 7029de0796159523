// `backfill stage3`: Phase 3 then Phase 4, in batches of dates with date-by-date semantics, strict mode; the
// program of the Stage 3 pod.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { BadInputError, EXIT_OK, EXIT_PROCESSING_FAILURE } from '../../core/errors.js';
import { loadFaults } from '../../core/faults.js';
import { formatGate } from '../../core/gate.js';
import { checkJobName, localJobName } from '../../core/jobs/runNames.js';
import type { JobPlan } from '../../core/jobs/spec.js';
import { createFilesLogger } from '../../core/log.js';
import type { Season } from '../../core/pipeline/seasons.js';
import type { PlanDate } from '../../core/plan.js';
import { ProgressReporter } from '../../core/progress.js';
import { runStage3, STAGE3_BATCH_SIZE, type Stage3Result, type Stage3Summary } from '../../core/stages/stage3.js';
import { type CommandContext, withContext } from '../context.js';
import { addSelectionOptions, type SelectionFlags, selectFromPlans, wholeNumber } from '../selection.js';
import { formatResume, GracefulStop, sameCommand } from '../signals.js';
import { formatOf, formatOption, type Streams, streamsFor } from '../streams.js';
import { statusSnapshots } from './status.js';

export interface Stage3Flags {
  summaryFile?: string;
  /** The Job this Stage 3 runs as (the pod's Kubernetes Job); default a local name after the run id. */
  jobName?: string;
  /** Dates computed and committed at once. @default STAGE3_BATCH_SIZE */
  batchSize?: number;
}

/** The largest --batch-size: a whole season's regular and playoff dates. */
const MAX_BATCH_SIZE = 400;

export function batchSizeOf(value: string | undefined): number {
  return value === undefined ? STAGE3_BATCH_SIZE : wholeNumber('--batch-size', value, 1, MAX_BATCH_SIZE);
}

/** One season in `stage3 --format json`: the summary the Stage 3 pod writes, and where it was written. */
export type Stage3SeasonJson = Stage3Summary & { readonly summaryFile: string };

/** `backfill stage3 --format json`: the seasons run, in order (the first that did not succeed is the last). */
export interface Stage3Json {
  readonly seasons: readonly Stage3SeasonJson[];
  /** The signal that stopped the command, or null. */
  readonly interrupted: string | null;
  /** The command that resumes an interrupted run, or null. */
  readonly resume: string | null;
  readonly exitCode: number;
}

/** Runs Stage 3 for a season with progress on stdout; prints what stopped it, if anything. */
export async function runStage3Season(
  ctx: CommandContext,
  season: Season,
  dates: readonly PlanDate[],
  flags: Stage3Flags,
  signal?: AbortSignal,
  io: Streams = streamsFor(),
): Promise<Stage3Result & { readonly summaryFile: string }> {
  // This run's Stage 3 of the season is a "job" of its own, as Stage 1's are: a folder named after the run with
  // its dates (job-plan.json), one log per date it runs (index-<i>.log, i its place in the dates) and its summary.
  const jobName = flags.jobName ? checkJobName(flags.jobName) : localJobName('stage3', season.label, ctx.runId());
  const jobDir = join(ctx.config.logDir, 'jobs', jobName);
  mkdirSync(jobDir, { recursive: true });
  const plan: JobPlan = { jobName, season: season.label, dates: dates.map((d) => d.date), runId: ctx.runId() };
  writeFileSync(join(jobDir, 'job-plan.json'), `${JSON.stringify(plan, null, 2)}\n`);
  const summaryFile = flags.summaryFile ?? join(jobDir, 'summary.json');
  const progress = new ProgressReporter(`[stage3 ${season.label}]`, dates.length, io.progress);
  let firstDate = true;
  if (ctx.config.phase4Mode === 'pubsub' && ctx.config.events.kind !== 'pubsub') {
    throw new BadInputError(
      `phase4Mode pubsub needs events pubsub://<project> (events is ${ctx.config.events.url}): Phase 4 subscribers get their work from Pub/Sub, so with in-process events nothing would run Phase 4 and every date would time out`,
      { where: 'configuration' },
    );
  }
  const snapshots = statusSnapshots(ctx);
  await snapshots.start(season.label, 'stage3');
  const result = await runStage3(ctx.adapters, ctx.log, {
    season: season.label,
    dates,
    summaryFile,
    job: jobName,
    phase4Mode: ctx.config.phase4Mode,
    phase4TimeoutMs: ctx.config.phase4TimeoutMs,
    signal,
    batchSize: flags.batchSize ?? STAGE3_BATCH_SIZE,
    processorErrors: ctx.config.faults ? (loadFaults(ctx.config.faults).processorErrors ?? []) : [],
    // Each date's lines go to its own file and, as the stage's other lines, to the command's log. (The runs
    // add the date to each line themselves.)
    dateLog: (_date, index) => {
      const files = createFilesLogger(ctx.config.logLevel, [join(jobDir, `index-${index}.log`), ctx.logFile]);
      return {
        log: files.log.child({ command: ctx.log.bindings().command, season: season.label, job: jobName, index }),
        close: () => files.close(),
      };
    },
    onDate: (date, index) => {
      snapshots.update(season.label, 'stage3');
      if (firstDate) {
        // Resumed: count the dates already complete as done (once: only the first date can follow them).
        firstDate = false;
        for (let i = 0; i < index; i++) progress.onIndex({ index: i, exitCode: 0, outcome: 'succeeded' }, () => '');
      }
      progress.onIndex({ index, exitCode: 0, outcome: 'succeeded' }, () => date);
    },
  });
  await snapshots.flush(season.label, null);
  const s = result.summary;
  if (s.status === 'gate_failed') {
    io.say(formatGate(result.gate));
    io.say(`Stage 3 for ${season.label} refused to start: ${s.error}\n`);
  } else {
    // Nothing left to run (every date complete already): no progress line claiming every date remains.
    if (!(firstDate && s.status === 'succeeded')) progress.finish();
    if (s.resumedFrom) io.say(`${season.label}: resumed at ${s.resumedFrom} (earlier dates were complete)\n`);
    if (s.status === 'interrupted') {
      io.say(
        `Stage 3 for ${season.label} INTERRUPTED after ${s.processed} date(s) of this run: Phase 3-4 complete through ${s.completedThrough ?? '(no date yet)'}; the next run resumes at the first date not complete\n`,
      );
    } else if (s.status === 'failed') {
      io.say(
        `Stage 3 for ${season.label} STOPPED at ${s.failedDate}: ${s.processor} (${s.check})\n  ${s.error}\n` +
          `Fix the cause and run the same command again: it resumes at ${s.failedDate}.\n`,
      );
    } else {
      const ms = [...result.perDateMs].sort((a, b) => a - b);
      const median = ms[Math.floor(ms.length / 2)] ?? 0;
      io.say(
        `${season.label}: Phase 3-4 complete through ${s.completedThrough}; ${s.processed} date(s) processed` +
          `${ms.length ? ` (median ${median.toFixed(0)} ms/date)` : ''}\n`,
      );
    }
  }
  io.say(`summary: ${summaryFile}\n`);
  return { ...result, summaryFile };
}

export function registerStage3(program: Command): void {
  addSelectionOptions(
    program
      .command('stage3')
      .description(
        'Stage 3: Phase 3 then Phase 4 for each game date in order, strict mode; stops at the first error, resumes after a fix',
      ),
  )
    .option('--summary-file <path>', "where the machine-readable summary goes (the pod's termination message)")
    .option(
      '--job-name <name>',
      "the Job this Stage 3 runs as (the Stage 3 pod passes its Kubernetes Job's): names its log folder and the job of its log lines; default nba-stage3-<season>-<run id>",
    )
    .option(
      '--batch-size <n>',
      `dates computed and committed at once (1 = date by date); each date still succeeds, fails or is blocked on its own (default ${STAGE3_BATCH_SIZE})`,
    )
    .addOption(formatOption())
    .addHelpText(
      'after',
      '\nRefuses to start unless the Phase 2 gate passes. Seasons are independent: with --season all they run one\nafter another here; in the cluster each season has its own Stage 3 Job. Exit 1 when it stops or is refused.\n--batch-size: a batch computes its dates in one pass and commits once; the first date blocked or failed ends it,\nthe dates before it committed, nothing after it written, as date by date.\nSIGINT (Ctrl-C) or SIGTERM: the batch in progress commits, no other starts, the summary says interrupted, exit\n130 or 143; a second signal stops at once (the batch in progress then never commits).',
    )
    .action(
      async (
        flags: SelectionFlags & { summaryFile?: string; jobName?: string; batchSize?: string; format: string },
        command: Command,
      ) => {
        const stop = new GracefulStop();
        const io = streamsFor(formatOf(flags));
        await withContext(command, async (ctx) => {
          if (flags.jobName && flags.season === 'all') {
            throw new BadInputError(
              `--job-name ${flags.jobName} names one season's Stage 3 Job: give --season S, not all (each season's Stage 3 is a Job of its own)`,
              { where: '--job-name' },
            );
          }
          const batchSize = batchSizeOf(flags.batchSize);
          const seasons: Stage3SeasonJson[] = [];
          const done = (exitCode: number, resume: string | null = null) => {
            io.json({ seasons, interrupted: stop.received ?? null, resume, exitCode } satisfies Stage3Json);
            return exitCode;
          };
          for (const { season, dates } of await selectFromPlans(ctx.config.planDir, flags)) {
            const summaryFile = flags.summaryFile && flags.season === 'all' ? undefined : flags.summaryFile;
            const result = await runStage3Season(
              ctx,
              season,
              dates,
              { summaryFile, jobName: flags.jobName, batchSize },
              stop.signal,
              io,
            );
            seasons.push({ ...result.summary, summaryFile: result.summaryFile });
            if (stop.received) {
              // Stage 3 resumes by itself at the first date that is not complete: the same command.
              io.say(formatResume(stop, sameCommand()));
              return done(stop.exitCode ?? EXIT_PROCESSING_FAILURE, sameCommand());
            }
            if (result.summary.status !== 'succeeded') return done(EXIT_PROCESSING_FAILURE);
          }
          return done(EXIT_OK);
        }).finally(() => stop.finish());
      },
    );
}
