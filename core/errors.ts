// Error classes with structured fields; each maps to one of the CLI's exit codes.

export const EXIT_OK = 0;
export const EXIT_PROCESSING_FAILURE = 1;
export const EXIT_BAD_INPUT = 2;

/** Bad usage or bad input: an unknown season, a malformed file, a record that breaks a rule. Exit 2. */
export class BadInputError extends Error {
  override readonly name = 'BadInputError';
  readonly exitCode = EXIT_BAD_INPUT;
  /** Where the problem is: a file path, a flag, a record. */
  readonly where: string | undefined;
  constructor(message: string, options: { where?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.where = options.where;
  }
}

/** A processor could not do its work (I/O, a failed dependency, a transient fault). Exit 1. */
export class ProcessingError extends Error {
  override readonly name = 'ProcessingError';
  readonly exitCode = EXIT_PROCESSING_FAILURE;
  readonly transient: boolean;
  constructor(message: string, options: { transient?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.transient = options.transient ?? false;
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof BadInputError) return EXIT_BAD_INPUT;
  return EXIT_PROCESSING_FAILURE;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A message on one line, for a table cell or a progress line. */
export function oneLine(message: string, max = 200): string {
  const flat = message.replace(/\s*\n\s*/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
