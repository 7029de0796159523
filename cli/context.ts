// What every command shares: configuration from its flags, the adapters, a logger, and error handling.

import type { Command } from 'commander';
import { type Adapters, openAdapters } from '../core/adapters/index.js';
import { type Config, loadConfig } from '../core/config.js';
import { exitCodeOf, messageOf, redact } from '../core/errors.js';
import { runIdFrom } from '../core/jobs/runNames.js';
import { DEFAULT_NAMESPACE, NAMESPACE_ENV } from '../core/jobs/spec.js';
import { createLogger, type LogDestination, type Logger, logDestination } from '../core/log.js';
import type { Cluster } from '../core/ports/cluster.js';

export interface GlobalFlags {
  config?: string;
  warehouse?: string;
  objects?: string;
  events?: string;
  phase4Mode?: string;
  phase4TimeoutMs?: string;
  source?: string;
  faults?: string;
  planDir?: string;
  logDir?: string;
  logFile?: string;
  logLevel?: string;
  httpTimeoutMs?: string;
  httpMaxRetries?: string;
  httpMinIntervalMs?: string;
  httpBackoffBaseMs?: string;
  httpMaxRetryAfterMs?: string;
}

export function addGlobalOptions(program: Command): Command {
  return program
    .option('--config <file>', 'JSON configuration file (default: backfill.config.json when present)')
    .option(
      '--warehouse <url>',
      'warehouse: duckdb:<path> (default duckdb:.backfill/warehouse.duckdb) or bigquery://<project>[?location=US]',
    )
    .option('--objects <url>', 'object store: file:<folder> (default file:.backfill/objects) or gs://<bucket>/<prefix>')
    .option('--events <kind>', 'events: inprocess (default) or pubsub://<project>')
    .option('--phase4-mode <mode>', 'Stage 3 runs Phase 4 inline (default) or waits for Pub/Sub subscribers (pubsub)')
    .option('--phase4-timeout-ms <ms>', 'pubsub mode: how long Stage 3 waits for Phase 4 of one date')
    .option('--source <source>', 'Phase 1 source: bundled (default) or an http(s):// stats API base URL')
    .option(
      '--faults <file|json>',
      'fault injection, a JSON file or the JSON itself (`{...}`): fail or corrupt chosen dates (see README, "Fault injection")',
    )
    .option('--plan-dir <dir>', 'where plan files are written and read (default plans)')
    .option('--log-dir <dir>', 'where logs are written (default .backfill/logs)')
    .option(
      '--log-file <file>',
      'where the JSON log goes (default <log dir>/backfill.log); - or /dev/stderr: standard error, /dev/stdout: standard output',
    )
    .option('--log-level <level>', 'level of the JSON log (default info)')
    .option('--http-timeout-ms <ms>', 'HTTP source: request timeout')
    .option('--http-max-retries <n>', 'HTTP source: retries of a transient error')
    .option('--http-min-interval-ms <ms>', 'HTTP source: minimum spacing between requests (politeness)')
    .option('--http-backoff-base-ms <ms>', 'HTTP source: first retry delay, doubled each retry')
    .option(
      '--http-max-retry-after-ms <ms>',
      'HTTP source: longest Retry-After waited out (default 60000); a longer one fails the request at once',
    );
}

export function configFrom(flags: GlobalFlags): Config {
  return loadConfig({
    file: flags.config,
    flags: {
      warehouse: flags.warehouse,
      objects: flags.objects,
      events: flags.events,
      phase4Mode: flags.phase4Mode,
      phase4TimeoutMs: flags.phase4TimeoutMs,
      source: flags.source,
      faults: flags.faults,
      planDir: flags.planDir,
      logDir: flags.logDir,
      logFile: flags.logFile,
      logLevel: flags.logLevel,
      'http.timeoutMs': flags.httpTimeoutMs,
      'http.maxRetries': flags.httpMaxRetries,
      'http.minIntervalMs': flags.httpMinIntervalMs,
      'http.backoffBaseMs': flags.httpBackoffBaseMs,
      'http.maxRetryAfterMs': flags.httpMaxRetryAfterMs,
    },
  });
}

export interface CommandContext {
  readonly config: Config;
  readonly adapters: Adapters;
  readonly log: Logger;
  /** Where this command's JSON log goes (the `logFile` setting): a file, or standard output or error. */
  readonly logFile: LogDestination;
  /**
   * This invocation's run id, drawn at first use (a bad $BACKFILL_RUN_ID fails only the commands that start
   * jobs): every Job it starts on this machine is named after it.
   */
  readonly runId: () => string;
}

/** Opens configuration, adapters and the log, runs the command, closes everything, sets the exit code. */
export async function withContext(
  command: Command,
  fn: (ctx: CommandContext) => Promise<number | undefined>,
): Promise<void> {
  let adapters: Adapters | undefined;
  try {
    const config = configFrom(command.optsWithGlobals<GlobalFlags>());
    const logFile = logDestination(config.logFile, config.logDir);
    const log = createLogger(config.logLevel, logFile).child({ command: command.name() });
    adapters = await openAdapters(config, {
      onWait: (w) => log.info({ waitMs: w.ms, reason: w.reason, url: w.url }, w.message),
    });
    let runId: string | undefined;
    const ctx = { config, adapters, log, logFile, runId: () => (runId ??= runIdFrom(process.env)) };
    process.exitCode = (await fn(ctx)) ?? 0;
  } catch (err) {
    reportError(err);
  } finally {
    await adapters?.close();
  }
}

/**
 * The cluster port on the cluster of the current kubeconfig context (or the pod's service account), in
 * `namespace`, else $BACKFILL_NAMESPACE, else the chart's. The Kubernetes adapter is loaded only here, on demand:
 * the client costs every other command its start-up time.
 */
export async function openCluster(namespace?: string): Promise<Cluster> {
  const { KubeClient } = await import('../core/kubernetes/kube.js');
  return KubeClient.fromDefault(namespace || process.env[NAMESPACE_ENV] || DEFAULT_NAMESPACE);
}

/** Runs a command that needs no adapters, with the same error handling. */
export async function withoutAdapters(fn: () => Promise<number | undefined>): Promise<void> {
  try {
    process.exitCode = (await fn()) ?? 0;
  } catch (err) {
    reportError(err);
  }
}

export function reportError(err: unknown): void {
  process.stderr.write(`error: ${redact(messageOf(err))}\n`);
  process.exitCode = exitCodeOf(err);
}
