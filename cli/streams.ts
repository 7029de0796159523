// Where a command's words go. Standard output carries the command's result: the report people read in the
// default table format, or one JSON document with --format json. Standard error carries progress (rewritten
// lines on a terminal), acknowledgements, warnings and errors; with --format json it also carries the words
// that would otherwise be the report, so that `backfill ... --format json | jq` always reads one document.

import { Option } from 'commander';
import type { ProgressOutput } from '../core/progress.js';

export const OUTPUT_FORMATS = ['table', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface Writer {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

/** The environment colour follows. */
export interface ColourEnv {
  readonly NO_COLOR?: string;
  readonly FORCE_COLOR?: string;
  readonly TERM?: string;
}

/**
 * Colour only on a terminal, never with NO_COLOR set to anything but the empty string (no-color.org) or on a
 * dumb terminal; FORCE_COLOR (anything but "0") turns it on where there is no terminal, NO_COLOR still winning.
 */
export function colourOn(stream: { readonly isTTY?: boolean }, env: ColourEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '') return env.FORCE_COLOR !== '0';
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

const RED = '\x1b[31m';
const GREEN = '\x1b[32m';
const BOLD = '\x1b[1m';
const RESET = '\x1b[0m';

/** Words that say how something ended, in capitals as the commands print them, and their colours. */
const VERDICTS: readonly [RegExp, string][] = [
  [/\b(PASSED)\b/g, `${BOLD}${GREEN}`],
  [/\b(FAILED|STOPPED|INTERRUPTED|STALE)\b/g, `${BOLD}${RED}`],
];

/** The text with its verdict words coloured (PASSED green; FAILED, STOPPED, INTERRUPTED, STALE red). */
export function paintVerdicts(text: string): string {
  let out = text;
  for (const [pattern, colour] of VERDICTS) out = out.replace(pattern, `${colour}$1${RESET}`);
  return out;
}

/** A whole line in red (a failed date's row). */
export function paintRed(line: string): string {
  return `${RED}${line}${RESET}`;
}

/** Removes the colour codes this module writes (for widths, and for tests). */
export function stripColour(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the escape character is what is matched.
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

export interface Streams {
  readonly format: OutputFormat;
  /** The report people read: stdout in the table format, stderr with --format json. Verdicts coloured. */
  say(text: string): void;
  /** Rows of a table of failures, coloured red on a terminal. */
  sayFailedRows(table: string, failedRow: (line: string, index: number) => boolean): void;
  /** Progress lines: always standard error. */
  readonly progress: ProgressOutput;
  /** The JSON document of --format json, on stdout; nothing in the table format. */
  json(value: unknown): void;
}

export function streamsFor(
  format: OutputFormat = 'table',
  out: Writer = process.stdout,
  err: Writer = process.stderr,
  env: ColourEnv = process.env,
): Streams {
  const human = format === 'json' ? err : out;
  const colour = colourOn(human, env);
  return {
    format,
    say: (text) => {
      human.write(colour ? paintVerdicts(text) : text);
    },
    sayFailedRows: (table, failedRow) => {
      if (!colour) {
        human.write(table);
        return;
      }
      // The first two lines are the header and its rule.
      const lines = table.split('\n');
      human.write(lines.map((l, i) => (i >= 2 && l !== '' && failedRow(l, i - 2) ? paintRed(l) : l)).join('\n'));
    },
    progress: err,
    json: (value) => {
      if (format === 'json') out.write(`${JSON.stringify(value, null, 2)}\n`);
    },
  };
}

/** The format a command was given, checked by commander's choices. */
export function formatOf(flags: { format?: string }): OutputFormat {
  return flags.format === 'json' ? 'json' : 'table';
}

/** `--format table|json` for a command whose result has a documented JSON shape. */
export function formatOption(): Option {
  return new Option('--format <format>', 'table (for people) or json (one document on stdout, the words on stderr)')
    .choices([...OUTPUT_FORMATS])
    .default('table');
}
