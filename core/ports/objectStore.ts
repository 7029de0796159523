// The object store port: raw files under `<source>/game_date=YYYY-MM-DD/<file>`, locally or in GCS.

export interface ObjectStore {
  /** Where objects live, e.g. `file:.backfill/objects` or `gs://bucket/prefix`. */
  readonly description: string;
  /** Writes (or overwrites) one object. */
  put(key: string, body: string): Promise<void>;
  /** Reads one object; undefined when it does not exist. */
  get(key: string): Promise<string | undefined>;
  /** Keys below a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  /** A location a person can open, for error messages (a file path, a gs:// URL). */
  locate(key: string): string;
}

/** The platform's layout: `<source>/game_date=YYYY-MM-DD/<file>`. */
export function rawObjectKey(source: string, gameDate: string, file: string): string {
  return `${source}/game_date=${gameDate}/${file}`;
}

export function rawDatePrefix(source: string, gameDate: string): string {
  return `${source}/game_date=${gameDate}/`;
}
