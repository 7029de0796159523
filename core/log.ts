// Structured logs with pino: JSON lines with the date, processor and run fields as they are.

import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(level: string, destination: number | string = 2): Logger {
  return pino(
    { level, base: { service: 'nba-backfill' }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: destination, sync: true, mkdir: true }),
  );
}

/** A logger to a file that the caller closes, for a warm pod that logs each index to its own file. */
export function createFileLogger(level: string, path: string): { log: Logger; close(): void } {
  const dest = pino.destination({ dest: path, sync: true, mkdir: true, append: true });
  const log = pino({ level, base: { service: 'nba-backfill' }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
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
