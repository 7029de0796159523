// The Stage 3 pod: `backfill stage3` for the season in BACKFILL_SEASON, its summary written to the
// termination message path. Its JSON log (a line per date) goes where BACKFILL_LOG_FILE says: the Job sets
// /dev/stdout, beside the command's progress lines. Exit 0 done, 1 stopped (the summary says where and why).

import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { awaitGoogleCredentials, googleServicesIn } from '../../core/adapters/google/credentials.js';
import { loadConfig } from '../../core/config.js';
import { exitCodeOf, messageOf } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';

const season = process.env.BACKFILL_SEASON;
if (!season) {
  process.stderr.write('BACKFILL_SEASON is not set: the Stage 3 pod runs one season\n');
  process.exit(2);
}
const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'main.js');
const args = [
  cli,
  'stage3',
  '--season',
  season,
  '--season-type',
  process.env.BACKFILL_SEASON_TYPE ?? 'regular',
  '--summary-file',
  process.env.BACKFILL_SUMMARY_FILE ?? '/dev/termination-log',
  // The Job's name (the downward API gives the pod's job-name label), so the log lines lead back to the Job.
  ...(process.env.BACKFILL_JOB_NAME ? ['--job-name', process.env.BACKFILL_JOB_NAME] : []),
];
// Google credentials first, as a Stage 1 pod waits for them: a new pod may wait a few seconds for the GKE
// metadata server (core/adapters/google/credentials.ts).
try {
  const config = loadConfig({ env: process.env, file: undefined });
  const log = createLogger(config.logLevel, 1).child({ stage: 'stage3', season });
  await awaitGoogleCredentials(googleServicesIn(config, process.env), log);
} catch (err) {
  process.stderr.write(`stage 3 pod: ${messageOf(err)}\n`);
  process.exit(exitCodeOf(err));
}
const child = spawn(process.execPath, args, { stdio: 'inherit' });
// Node as PID 1 ignores SIGTERM unless it listens: pass it on, so that an evicted pod's Stage 3 stops between
// commits (a date commits at once or not at all) and the replacement pod resumes at that date.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (signal === 'SIGKILL' ? 9 : 15) : 1)));
