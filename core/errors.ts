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
  override readonly name: string = 'ProcessingError';
  readonly exitCode = EXIT_PROCESSING_FAILURE;
  readonly transient: boolean;
  constructor(message: string, options: { transient?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.transient = options.transient ?? false;
  }
}

/** The warehouse file is held by another process (DuckDB allows one writer per file, and no reader beside it). */
export class WarehouseLockedError extends ProcessingError {
  override readonly name: string = 'WarehouseLockedError';
  readonly path: string;
  /** The process holding the file, when the database says which. */
  readonly holderPid: number | undefined;
  constructor(message: string, path: string, holderPid: number | undefined, cause?: unknown) {
    super(message, { cause });
    this.path = path;
    this.holderPid = holderPid;
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

/** Query parameter names whose values are credentials: api_key, access_token, X-Goog-Signature, client_secret... */
const SECRET_PARAM = /key|token|secret|passw|pwd|sig|auth|credential|session|cookie/i;

/**
 * The text with credentials taken out of every URL in it: user info (`https://user:pw@host`) becomes
 * `https://***@host`, and the value of a query parameter whose name looks secret becomes `***`. For every
 * message and stored error that may hold a URL: a log line lives longer, and travels further, than the secret.
 */
export function redact(text: string): string {
  return (
    text
      // Greedy up to the last `@` before the path, as URL parsers read it: `user:p@ss@host` hides `p@ss` too.
      .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'<>]*@/gi, '$1***@')
      .replace(/([?&;])([^=&;#\s"'<>]+)=([^&;#\s"'<>]*)/g, (whole, sep: string, name: string, value: string) =>
        SECRET_PARAM.test(decodeSafely(name)) && value !== '' ? `${sep}${name}=***` : whole,
      )
  );
}

function decodeSafely(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
