// Run ids and the names of the Jobs a run starts on this machine: every `run`, `stage1`, `retry` and `stage3`
// gets a run id, and its local Jobs are named after it, so that two runs of the same dates never share a log
// folder, a failure log or a Stage 3 summary. Kubernetes' name rules are checked here, at their limit.

import { createHash } from 'node:crypto';
import type { IsoDate } from '../dates.js';
import { BadInputError } from '../errors.js';

/** Sets the run id instead of drawing one (tests; a CI system that wants its own build id in the names). */
export const RUN_ID_ENV = 'BACKFILL_RUN_ID';
/** On a local Job: the run that started it, and the hash of its dates (what the cluster's Job name carries). */
export const RUN_ID_LABEL = 'nba-backfill/run-id';
export const PLAN_HASH_LABEL = 'nba-backfill/plan-hash';

/** A Job name is also the value of its pods' `job-name` label: a DNS-1123 label, 63 characters at most. */
export const MAX_JOB_NAME_LENGTH = 63;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** The longest local name before the run id: the purposes are `stage1`, `stage3` and the shorter `retry`. */
const LONGEST_PREFIX = 'nba-stage1-202122-';
/** So that every local Job name of a run fits: 63 - 18 = 45. */
export const MAX_RUN_ID_LENGTH = MAX_JOB_NAME_LENGTH - LONGEST_PREFIX.length;

/** The first 8 hex digits of the SHA-256 of the dates: the same dates always give the same hash. */
export function planHash(dates: readonly IsoDate[]): string {
  return createHash('sha256').update(dates.join(',')).digest('hex').slice(0, 8);
}

const BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * `20261201-101530123-k3x9`: the UTC time to the millisecond, then 4 random base-36 characters. Ids drawn later
 * sort after earlier ones (as strings), and two runs started in the same millisecond still differ.
 */
export function newRunId(now: Date, random: () => number = Math.random): string {
  const iso = now.toISOString(); // 2026-12-01T10:15:30.123Z
  const stamp = `${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 23).replace(/[:.]/g, '')}`;
  let suffix = '';
  for (let i = 0; i < 4; i++) suffix += BASE36[Math.min(35, Math.floor(random() * 36))];
  return `${stamp}-${suffix}`;
}

/** Refuses a run id that would make a Job name Kubernetes refuses; `where` names where it came from. */
export function checkRunId(id: string, where: string): string {
  if (id.length > MAX_RUN_ID_LENGTH || !DNS_LABEL.test(id)) {
    throw new BadInputError(
      `${where} "${id}": a run id is lowercase letters, digits and '-' (a letter or digit at each end), at most ${MAX_RUN_ID_LENGTH} characters (it has ${id.length}), because it goes into Job names (DNS-1123 labels of at most ${MAX_JOB_NAME_LENGTH})`,
      { where },
    );
  }
  return id;
}

/** The name when it is a DNS-1123 label of at most 63 characters; else BadInputError naming the rule it breaks. */
export function checkJobName(name: string): string {
  if (name.length > MAX_JOB_NAME_LENGTH) {
    throw new BadInputError(
      `job name "${name}" has ${name.length} characters: at most ${MAX_JOB_NAME_LENGTH} (it is the value of its pods' job-name label)`,
      { where: 'job name' },
    );
  }
  if (!DNS_LABEL.test(name)) {
    throw new BadInputError(
      `job name "${name}": must be lowercase letters, digits and '-', with a letter or digit at each end (DNS-1123 label)`,
      { where: 'job name' },
    );
  }
  return name;
}

/** `nba-stage1-202122-20261201-101530123-k3x9`: a Job a run starts on this machine. */
export function localJobName(purpose: string, season: string, runId: string): string {
  return checkJobName(`nba-${purpose}-${season.replace('-', '')}-${runId}`);
}

/** This process's run id: $BACKFILL_RUN_ID when set (checked), else a new one from the clock. */
export function runIdFrom(
  env: Readonly<Record<string, string | undefined>>,
  now: () => Date = () => new Date(),
  random: () => number = Math.random,
): string {
  const given = env[RUN_ID_ENV];
  return given !== undefined && given !== '' ? checkRunId(given, RUN_ID_ENV) : newRunId(now(), random);
}
