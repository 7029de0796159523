// `backfill logs <date>`: a date's logs from the runs on this machine (Stage 1, retry and Stage 3 jobs, each
// named after its run), the latest run by default, formatted for people; or with --cluster from the pods of the
// season's Jobs in a Kubernetes cluster (through the kubeconfig).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { type IsoDate, isIsoDate } from '../../core/dates.js';
import { BadInputError, EXIT_OK } from '../../core/errors.js';
import { DEFAULT_NAMESPACE, NAMESPACE_ENV } from '../../core/jobs/spec.js';
import { getSeason, locateDate, SEASONS } from '../../core/pipeline/seasons.js';
import { dateLogs, describeJob, type LocalJob, latestRun, localJobs, renderLog } from '../../core/runs/runLogs.js';
import { configFrom, type GlobalFlags, openCluster, withoutAdapters } from '../context.js';

/** How many job folders a "no logs" message lists, newest first. */
const LISTED_JOBS = 10;

/** The date's season: the one it falls in, which --season (when given) must name. */
function seasonOf(date: IsoDate, seasonFlag: string | undefined): string {
  const found = locateDate(date);
  if (!found) {
    const ranges = SEASONS.map((s) => `${s.label}: ${s.regularSeason.start}..${s.playoffs.end}`).join('; ');
    throw new BadInputError(`unknown date ${date}: it is in no season (${ranges})`, { where: 'date' });
  }
  if (seasonFlag === 'all') {
    throw new BadInputError(
      `--season all: logs reads one date of one season; ${date} is in ${found.season.label} (leave --season out, or give --season ${found.season.label})`,
      { where: '--season' },
    );
  }
  if (seasonFlag !== undefined && getSeason(seasonFlag).label !== found.season.label) {
    throw new BadInputError(
      `${date} is in season ${found.season.label}, not ${seasonFlag}: give --season ${found.season.label}, or leave --season out`,
      { where: '--season' },
    );
  }
  return found.season.label;
}

/** "No logs for the date", with what the log folder does hold. */
function noLogs(date: IsoDate, jobsDir: string, jobs: readonly LocalJob[]): BadInputError {
  if (jobs.length === 0) {
    return new BadInputError(`no run has logs for ${date}: ${jobsDir} holds no job folder yet`, { where: 'date' });
  }
  const newest = [...jobs].reverse();
  const listed = newest.slice(0, LISTED_JOBS).map((j) => `  ${describeJob(j)}\n`);
  const more = newest.length > LISTED_JOBS ? `  ... and ${newest.length - LISTED_JOBS} older\n` : '';
  return new BadInputError(
    `no run has logs for ${date} in ${jobsDir}; the jobs there, newest first:\n${listed.join('')}${more}`.trimEnd(),
    { where: 'date' },
  );
}

/** `--tail N`: a whole number >= 1. */
function tailOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new BadInputError(`--tail ${value}: must be a whole number >= 1`, { where: '--tail' });
  }
  return n;
}

/** The logs of the date's pods in the cluster of the current kubeconfig context. */
async function clusterLogs(date: string, season: string, namespace: string, all: boolean): Promise<number> {
  const { datePodLogs } = await import('../../core/kubernetes/cluster.js');
  const kube = await openCluster(namespace);
  const pods = await datePodLogs(kube, season, date, all);
  if (pods.length === 0) {
    throw new BadInputError(
      `no pod of a Stage 1 job of ${season} in namespace ${namespace} (${kube.server}) has run ${date}`,
      { where: 'date' },
    );
  }
  for (const p of pods) {
    process.stdout.write(`== pod ${p.pod} (job ${p.job}, index ${p.index}, ${p.phase})\n${p.log}`);
    if (p.log && !p.log.endsWith('\n')) process.stdout.write('\n');
  }
  return EXIT_OK;
}

interface LogsFlags {
  season?: string;
  all?: boolean;
  json?: boolean;
  tail?: string;
  cluster?: boolean;
  namespace?: string;
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description(
      "print a date's logs from the latest run on this machine that logged it (Stage 1, retry or Stage 3), formatted for people; with --cluster, its Stage 1 pods' logs",
    )
    .argument('<date>', 'the game date, YYYY-MM-DD')
    .option('--season <season>', "the season, e.g. 2021-22 (default: the date's)")
    .option('--all', 'every run that logged the date, oldest first, each headed by its run id (default: the latest)')
    .option('--json', 'the raw JSON lines, without headers')
    .option('--tail <n>', "only the last N lines of each job's log of the date")
    .option('--cluster', "read the pods' logs in the Kubernetes cluster of the current kubeconfig context")
    .option(
      '--namespace <namespace>',
      `with --cluster: the namespace (default $${NAMESPACE_ENV} or ${DEFAULT_NAMESPACE})`,
    )
    .addHelpText(
      'after',
      '\nA line reads `<time> <LEVEL> <processor>: <message>: <error>`. A run is one invocation of run, stage1, retry or\nstage3; `backfill run` logs a date twice, in its Stage 1 job and in its Stage 3 job, and both are its latest run.',
    )
    .action(async (date: string, flags: LogsFlags, command: Command) => {
      await withoutAdapters(async () => {
        if (!isIsoDate(date)) throw new BadInputError(`${date}: not a date (YYYY-MM-DD)`, { where: 'date' });
        const season = seasonOf(date, flags.season);
        if (flags.namespace && !flags.cluster) {
          throw new BadInputError('--namespace goes with --cluster', { where: '--namespace' });
        }
        const tail = tailOf(flags.tail);
        if (flags.cluster) {
          if (flags.json || tail !== undefined) {
            throw new BadInputError('--json and --tail read the logs on this machine, not with --cluster', {
              where: flags.json ? '--json' : '--tail',
            });
          }
          const namespace = flags.namespace || process.env[NAMESPACE_ENV] || DEFAULT_NAMESPACE;
          return clusterLogs(date, season, namespace, Boolean(flags.all));
        }
        const config = configFrom(command.optsWithGlobals<GlobalFlags>());
        const jobsDir = join(config.logDir, 'jobs');
        const jobs = localJobs(config.logDir).filter((j) => j.season === season);
        const found = dateLogs(jobs, date);
        if (found.length === 0) throw noLogs(date, jobsDir, localJobs(config.logDir));
        for (const f of flags.all ? found : latestRun(found)) {
          if (!flags.json) {
            process.stdout.write(`== run ${f.runId ?? '(no run id)'} (job ${f.job}, index ${f.index}): ${f.file}\n`);
          }
          process.stdout.write(renderLog(readFileSync(f.file, 'utf8'), { json: flags.json, tail }));
        }
        return EXIT_OK;
      });
    });
}
