// Calendar dates as ISO strings (YYYY-MM-DD), the only date form the pipeline passes around.

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export type IsoDate = string;

/** True for a real calendar date written YYYY-MM-DD (2021-02-30 is not one). */
export function isIsoDate(value: string): boolean {
  const m = ISO_DATE.exec(value);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toISOString().slice(0, 10) === value;
}

function toUtc(date: IsoDate): Date {
  return new Date(`${date}T00:00:00Z`);
}

export function addDays(date: IsoDate, days: number): IsoDate {
  const d = toUtc(date);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** Whole days from `from` to `to` (positive when `to` is later). */
export function daysBetween(from: IsoDate, to: IsoDate): number {
  return Math.round((toUtc(to).getTime() - toUtc(from).getTime()) / 86_400_000);
}

/** Every date from `start` to `end`, both included. */
export function eachDate(start: IsoDate, end: IsoDate): IsoDate[] {
  const out: IsoDate[] = [];
  for (let d = start; d <= end; d = addDays(d, 1)) out.push(d);
  return out;
}

/** NBA.com's stats API writes dates as MM/DD/YYYY in query strings. */
export function toNbaQueryDate(date: IsoDate): string {
  const [y, m, d] = date.split('-');
  return `${m}/${d}/${y}`;
}

export function fromNbaQueryDate(value: string): IsoDate | undefined {
  const m = /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(value);
  if (!m) return undefined;
  const iso = `${m[3]}-${m[1]}-${m[2]}`;
  return isIsoDate(iso) ? iso : undefined;
}

/**
 * A timestamp the warehouse printed (`CAST(ts AS STRING)`), in a form that sorts as the time does. Both
 * DuckDB and BigQuery drop a fraction's trailing zeros (`00:00:00` and `00:00:00.001`, `.5` and `.50001`), so
 * the printed strings do not sort by time where one fraction is a prefix of the other; padded to nanoseconds
 * they do.
 */
export function sortableTime(printed: unknown): string {
  const s = String(printed);
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(.*)$/.exec(s);
  return m ? `${m[1]} ${m[2]}.${(m[3] ?? '').padEnd(9, '0')}${m[4]}` : s;
}
