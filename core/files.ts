// Files the user keeps (plans, failure logs, Stage 3 summaries, reports), written whole or not at all, and
// read back checked against their schema.

import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { z } from 'zod';
import { BadInputError, messageOf, ProcessingError } from './errors.js';

/** The file operations writeFileAtomic uses; tests pass one that fails where a full disk would. */
export interface FileIo {
  mkdir(dir: string): void;
  open(path: string, mode: number): number;
  write(fd: number, data: Buffer, offset: number): number;
  fsync(fd: number): void;
  close(fd: number): void;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  /** The mode of an existing file, kept by its replacement; undefined when there is none. */
  modeOf(path: string): number | undefined;
  /** Makes a rename in `dir` durable; best effort (not every platform can open a folder). */
  syncDir(dir: string): void;
}

export const NODE_FILE_IO: FileIo = {
  mkdir: (dir) => fs.mkdirSync(dir, { recursive: true }),
  open: (path, mode) => fs.openSync(path, 'wx', mode),
  write: (fd, data, offset) => fs.writeSync(fd, data, offset, data.length - offset),
  fsync: (fd) => fs.fsyncSync(fd),
  close: (fd) => fs.closeSync(fd),
  rename: (from, to) => fs.renameSync(from, to),
  unlink: (path) => fs.rmSync(path, { force: true }),
  modeOf: (path) => {
    try {
      return fs.statSync(path).mode & 0o777;
    } catch {
      return undefined;
    }
  },
  syncDir: (dir) => {
    let fd: number | undefined;
    try {
      fd = fs.openSync(dir, 'r');
      fs.fsyncSync(fd);
    } catch {
      // Best effort: the file itself is already on disk; only the rename's durability is at stake.
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  },
};

/** A file that could not be written; the old file at `path`, if any, is unchanged. */
export class FileWriteError extends ProcessingError {
  readonly path: string;
  /** What went wrong, without the path (e.g. `ENOSPC: no space left on device, write`). */
  readonly reason: string;
  constructor(path: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`could not write ${path}: ${reason}`, { cause });
    this.path = path;
    this.reason = reason;
  }
}

let sequence = 0;

/**
 * Writes `text` to `path` through a temporary file in the same folder: written, fsynced, then renamed over
 * the old file, so a reader (or the next run) sees the old file or the new one, never half of one. A full
 * disk once left a plan as 8,192 bytes of invalid JSON. On failure the temporary file is removed and a
 * FileWriteError naming `path` is thrown.
 */
export function writeFileAtomic(path: string, text: string, io: FileIo = NODE_FILE_IO): void {
  const dir = dirname(path);
  // Hidden and unique, so that neither a listing of reports nor a second writer picks it up.
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${++sequence}.tmp`);
  let fd: number | undefined;
  let created = false;
  try {
    io.mkdir(dir);
    fd = io.open(tmp, io.modeOf(path) ?? 0o644);
    created = true;
    const data = Buffer.from(text, 'utf8');
    for (let offset = 0; offset < data.length; ) offset += io.write(fd, data, offset);
    io.fsync(fd);
    io.close(fd);
    fd = undefined;
    io.rename(tmp, path);
    created = false;
  } catch (err) {
    if (fd !== undefined) {
      try {
        io.close(fd);
      } catch {
        // The write's error is the one to report.
      }
    }
    if (created) {
      try {
        io.unlink(tmp);
      } catch {
        // Same: a leftover hidden .tmp file is harmless next to the intact old file.
      }
    }
    throw new FileWriteError(path, err);
  }
  io.syncDir(dir);
}

/**
 * A JSON text checked against its schema. A bad one throws BadInputError naming the file (`<what> <path>`) and,
 * for a body of the wrong shape, the first field that is wrong (`dates.3: must be a date YYYY-MM-DD`).
 */
export function parseJsonFile<S extends z.ZodType>(text: string, path: string, what: string, schema: S): z.output<S> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new BadInputError(`${what} ${path}: not valid JSON: ${messageOf(err)}`, { where: path });
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadInputError(`${what} ${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`, {
      where: path,
    });
  }
  return parsed.data;
}

/** parseJsonFile of a file read whole; a file that cannot be read is bad input too, with the reason. */
export function readJsonFile<S extends z.ZodType>(path: string, what: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new BadInputError(`${what} ${path}: ${messageOf(err)}`, { where: path });
  }
  return parseJsonFile(text, path, what, schema);
}
