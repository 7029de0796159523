// Structured logs with pino: JSON lines with the date, processor and run fields as they are, never a secret.

import { type Logger, type LoggerOptions, pino } from 'pino';
import { redact } from './errors.js';

export type { Logger };

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

export function createLogger(level: string, destination: number | string = 2): Logger {
  return pino(options(level), pino.destination({ dest: destination, sync: true, mkdir: true }));
}

/** A logger to a file that the caller closes, for a warm pod that logs each index to its own file. */
export function createFileLogger(level: string, path: string): { log: Logger; close(): void } {
  const dest = pino.destination({ dest: path, sync: true, mkdir: true, append: true });
  const log = pino(options(level), dest);
  return {
    log,
    close() {
      dest.flushSync();
      dest.end();
    },
  };
}

/** A logger that writes nothing, for library callers and tests that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
