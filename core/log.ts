// Structured logs with pino: JSON lines with the date, processor and run fields as they are, never a secret.

import { join } from 'node:path';
import { type Logger, type LoggerOptions, pino } from 'pino';
import { redact } from './errors.js';

export type { Logger };

/** Where a logger writes: a file path, or a file descriptor (1 standard output, 2 standard error). */
export type LogDestination = string | number;

/**
 * The destination the `logFile` setting names: `-` or `/dev/stderr` standard error, `/dev/stdout` standard
 * output, empty `<logDir>/backfill.log`, anything else a file. The standard streams are written as the
 * descriptors the process has, never reopened by path: a pod's stdout is a pipe, and the Stage 3 pod's per-date
 * lines must reach it (`kubectl logs`, Cloud Logging) beside the lines of the logger that runs the stage.
 */
export function logDestination(logFile: string, logDir: string): LogDestination {
  if (logFile === '-' || logFile === '/dev/stderr') return 2;
  if (logFile === '/dev/stdout') return 1;
  return logFile || join(logDir, 'backfill.log');
}

/**
 * Cloud Logging's `severity` for each pino level, so that a pod's JSON lines are graded without a parser
 * (https://cloud.google.com/logging/docs/structured-logging). `level` stays the number readers already use.
 */
export const SEVERITY: Readonly<Record<string, string>> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

/**
 * Every logger's options: messages and logged errors (message and stack) go through redact(), so a URL with
 * user info or a secret query parameter never reaches a log file, whoever built the message.
 */
function options(level: string): LoggerOptions {
  return {
    level,
    base: { service: 'nba-backfill' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label, number) => ({ level: number, severity: SEVERITY[label] ?? 'DEFAULT' }) },
    serializers: {
      err: (err: Error) => {
        const out = pino.stdSerializers.err(err);
        return { ...out, message: redact(out.message), stack: redact(out.stack ?? '') };
      },
    },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? redact(a) : a)) as Parameters<typeof method>);
      },
    },
  };
}

export function createLogger(level: string, destination: LogDestination = 2): Logger {
  return pino(options(level), pino.destination({ dest: destination, sync: true, mkdir: true }));
}

/** A logger to a file that the caller closes, for a warm pod that logs each index to its own file. */
export function createFileLogger(level: string, path: string): { log: Logger; close(): void } {
  const dest = pino.destination({ dest: path, sync: true, mkdir: true, append: true });
  const log = pino(options(level), dest);
  return {
    log,
    close() {
      // Every line is written when its log call returns (sync: true): no flushSync, whose fsync blocked a warm
      // pod for each of its dates. end() closes the file, syncing it in the background.
      dest.end();
    },
  };
}

/**
 * A logger to several files at once, closed by the caller: a Stage 3 date logs to its own file and, as before,
 * to the command's log. Each line is one appended write, so two writers of one file never split a line. A
 * standard stream among them stays open when the logger closes (sonic-boom never closes descriptors 1 and 2).
 */
export function createFilesLogger(level: string, paths: readonly LogDestination[]): { log: Logger; close(): void } {
  const dests = paths.map((dest) => pino.destination({ dest, sync: true, mkdir: true, append: true }));
  const log = pino(options(level), pino.multistream(dests.map((stream) => ({ stream, level: level as pino.Level }))));
  return {
    log,
    close() {
      for (const d of dests) {
        d.flushSync();
        d.end();
      }
    },
  };
}

/** A logger that writes nothing, for library callers and tests that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
