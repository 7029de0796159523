// The engines' exact numbers and instants as JSON values, the same way for every adapter (`backfill query`).

/** Decimals of at most this many significant digits survive a double exactly, as printed (DBL_DIG). */
const DOUBLE_DIGITS = 15;

/** An integer as a number where a double holds it exactly (|n| <= 2^53 - 1), else as its decimal text. */
export function exactInteger(value: bigint | string): number | string {
  const n = typeof value === 'bigint' ? value : BigInt(value);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(n) : n.toString();
}

/**
 * A DECIMAL/NUMERIC given as plain text (`-12.50`) as a number where a double holds its value exactly (at most
 * 15 significant digits), else as that text: JSON readers get numbers, and no digit is silently lost.
 */
export function exactDecimal(text: string): number | string {
  const m = /^[-+]?(\d*)(?:\.(\d*))?$/.exec(text);
  if (!m || (m[1] === '' && (m[2] ?? '') === '')) return text;
  const digits = `${m[1]}${m[2] ?? ''}`.replace(/^0+/, '').replace(/0+$/, '');
  return digits.length <= DOUBLE_DIGITS ? Number(text) : text;
}

/**
 * Microseconds since the epoch as an ISO 8601 instant in UTC (`2021-10-19T23:15:00.123Z`, six fraction digits
 * when the microseconds need them); undefined beyond the years a JS Date holds.
 */
export function isoInstant(micros: bigint): string | undefined {
  let ms = micros / 1000n;
  let rest = micros % 1000n;
  if (rest < 0n) {
    ms -= 1n;
    rest += 1000n;
  }
  const date = new Date(Number(ms));
  if (Number.isNaN(date.getTime())) return undefined;
  const iso = date.toISOString();
  return rest === 0n ? iso : `${iso.slice(0, -1)}${String(rest).padStart(3, '0')}Z`;
}
