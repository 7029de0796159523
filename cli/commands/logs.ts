// `backfill logs <date>`: the logs of a date's Stage 1 pods, from the latest local job that ran it, or with
// --cluster from the pods of the season's Jobs in a Kubernetes cluster (through the kubeconfig).

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { isIsoDate } from '../../core/dates.js';
import { BadInputError, EXIT_OK } from '../../core/errors.js';
import { readJobPlan } from '../../core/jobs/phase2Index.js';
import { DEFAULT_NAMESPACE, NAMESPACE_ENV } from '../../core/jobs/spec.js';
import { getSeason } from '../../core/pipeline/seasons.js';
import { configFrom, type GlobalFlags, withoutAdapters } from '../context.js';

interface Found {
  readonly job: string;
  readonly index: number;
  readonly log: string;
  readonly when: number;
}

/** Every local job of the season whose plan holds the date, newest first. */
export function jobsForDate(logDir: string, season: string, date: string): Found[] {
  const jobsDir = join(logDir, 'jobs');
  if (!existsSync(jobsDir)) return [];
  const found: Found[] = [];
  for (const job of readdirSync(jobsDir)) {
    const planFile = join(jobsDir, job, 'job-plan.json');
    if (!existsSync(planFile)) continue;
    const plan = readJobPlan(planFile);
    const index = plan.dates.indexOf(date);
    if (plan.season !== season || index < 0) continue;
    const log = join(jobsDir, job, `index-${index}.log`);
    if (existsSync(log)) found.push({ job, index, log, when: statSync(log).mtimeMs });
  }
  return found.sort((a, b) => b.when - a.when);
}

/** The logs of the date's pods in the cluster of the current kubeconfig context. */
async function clusterLogs(date: string, season: string, namespace: string, all: boolean): Promise<number> {
  // Loaded on demand: the Kubernetes client costs every other command its start-up time.
  const { KubeClient } = await import('../../core/kubernetes/kube.js');
  const { datePodLogs } = await import('../../core/kubernetes/cluster.js');
  const kube = KubeClient.fromDefault(namespace);
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
  season: string;
  all?: boolean;
  cluster?: boolean;
  namespace?: string;
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("print a date's Stage 1 logs (the local runtime's per-index log; with --cluster, its pods' logs)")
    .argument('<date>', 'the game date, YYYY-MM-DD')
    .requiredOption('--season <season>', 'the season, e.g. 2021-22')
    .option('--all', 'every job that ran the date, newest first (default: the newest only)')
    .option('--cluster', "read the pods' logs in the Kubernetes cluster of the current kubeconfig context")
    .option(
      '--namespace <namespace>',
      `with --cluster: the namespace (default $${NAMESPACE_ENV} or ${DEFAULT_NAMESPACE})`,
    )
    .action(async (date: string, flags: LogsFlags, command: Command) => {
      await withoutAdapters(async () => {
        if (!isIsoDate(date)) throw new BadInputError(`${date}: not a date (YYYY-MM-DD)`, { where: 'date' });
        getSeason(flags.season);
        if (flags.namespace && !flags.cluster) {
          throw new BadInputError('--namespace goes with --cluster', { where: '--namespace' });
        }
        if (flags.cluster) {
          const namespace = flags.namespace || process.env[NAMESPACE_ENV] || DEFAULT_NAMESPACE;
          return clusterLogs(date, flags.season, namespace, Boolean(flags.all));
        }
        const config = configFrom(command.optsWithGlobals<GlobalFlags>());
        const found = jobsForDate(config.logDir, flags.season, date);
        if (found.length === 0) {
          throw new BadInputError(
            `no Stage 1 job of ${flags.season} in ${join(config.logDir, 'jobs')} has run ${date}`,
            {
              where: 'date',
            },
          );
        }
        for (const f of flags.all ? found : found.slice(0, 1)) {
          process.stdout.write(`== ${f.log} (job ${f.job}, index ${f.index})\n${readFileSync(f.log, 'utf8')}`);
        }
        return EXIT_OK;
      });
    });
}
