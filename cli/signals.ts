// SIGINT and SIGTERM for the long commands (run, stage1, stage3, retry): the first signal asks the work to stop
// between dates, a second one exits at once; either way the exit code is 128 + the signal's number.

export const STOP_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
export type StopSignalName = keyof typeof STOP_EXIT_CODES;

/** The part of `process` this needs, so that a test can send signals without sending them to itself. */
export interface SignalTarget {
  on(event: StopSignalName, listener: () => void): unknown;
  off(event: StopSignalName, listener: () => void): unknown;
}

export interface GracefulStopOptions {
  /** @default process */
  readonly target?: SignalTarget;
  /** How the second signal exits at once. @default process.exit */
  readonly exit?: (code: number) => void;
  /** How `finish` sets the command's exit code. @default sets process.exitCode */
  readonly setExitCode?: (code: number) => void;
  /** Where the acknowledgements go. @default process.stderr */
  readonly err?: { write(text: string): unknown };
}

/**
 * Holds the AbortSignal the work checks between dates. A long command creates one before it opens anything and
 * calls `finish` when it is done (`withContext(...).finally(() => stop.finish())`); the work
 * decides what "between dates" means (Stage 1: no new index, running pods get SIGTERM; Stage 3: the date in
 * progress commits or not at all, and the next one does not start).
 */
export class GracefulStop {
  private readonly controller = new AbortController();
  private first: StopSignalName | undefined;
  private readonly listeners: [StopSignalName, () => void][];

  constructor(private readonly options: GracefulStopOptions = {}) {
    const target = options.target ?? process;
    this.listeners = (Object.keys(STOP_EXIT_CODES) as StopSignalName[]).map((name) => [name, () => this.receive(name)]);
    for (const [name, listener] of this.listeners) target.on(name, listener);
  }

  /** Aborted on the first signal, with the signal's name as the reason. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The first signal received, if any. */
  get received(): StopSignalName | undefined {
    return this.first;
  }

  /** 130 after SIGINT, 143 after SIGTERM, undefined when no signal came. */
  get exitCode(): number | undefined {
    return this.first ? STOP_EXIT_CODES[this.first] : undefined;
  }

  private receive(name: StopSignalName): void {
    const err = this.options.err ?? process.stderr;
    if (this.first) {
      err.write(`received ${name} again: stopping now, without waiting for the dates in progress\n`);
      // What committed stays committed; a date in progress never committed, so nothing partial is left.
      (this.options.exit ?? process.exit)(STOP_EXIT_CODES[name]);
      return;
    }
    this.first = name;
    err.write(
      `received ${name}: stopping between dates, no new date starts (send ${name === 'SIGINT' ? 'Ctrl-C' : 'it'} again to stop at once)\n`,
    );
    this.controller.abort(name);
  }

  /**
   * Removes the handlers. When a signal came, the exit code is the signal's, whatever the command returned or
   * threw: an interrupted run is neither a success nor a failure of the data.
   */
  finish(): void {
    const target = this.options.target ?? process;
    for (const [name, listener] of this.listeners) target.off(name, listener);
    if (this.exitCode === undefined) return;
    if (this.options.setExitCode) this.options.setExitCode(this.exitCode);
    else process.exitCode = this.exitCode;
  }
}

/** Quotes an argument for a POSIX shell when it needs it. */
function shellWord(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * This command line as the user can type it again, with some options set to other values (added when absent),
 * e.g. `--start-date` moved to the first date not yet loaded.
 */
export function sameCommand(overrides: Readonly<Record<string, string>> = {}, argv = process.argv.slice(2)): string {
  const args = [...argv];
  for (const [flag, value] of Object.entries(overrides)) {
    const i = args.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
    if (i < 0) args.push(flag, value);
    else if (args[i] === flag) args.splice(i, 2, flag, value);
    else args.splice(i, 1, flag, value);
  }
  return ['backfill', ...args.map(shellWord)].join(' ');
}

/** The closing lines of an interrupted command: what stopped it and the exact command that resumes it. */
export function formatResume(stop: GracefulStop, command: string, note = ''): string {
  return `Interrupted by ${stop.received}${note ? `: ${note}` : ''}. Nothing partial was committed. To resume:\n  ${command}\n`;
}
