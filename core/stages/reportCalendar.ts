// The calendar layout of a validation report: a block per month with weeks as columns and days of the week as rows
// (Monday first), the months of a season side by side, wrapping to the page's width.

import { addDays, type IsoDate, isIsoDate } from '../dates.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
export const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

export interface CalendarMonth {
  /** `YYYY-MM`. */
  readonly key: string;
  /** e.g. `Oct 2021`. */
  readonly label: string;
  /** Days of its first week before the 1st (0 when the 1st is a Monday): the empty cells that align the rows. */
  readonly lead: number;
  /** Every day of the month, in order. */
  readonly days: readonly IsoDate[];
}

export interface CalendarSeason {
  /** The NBA season the months belong to, e.g. `2021-22` (a season starts in the autumn). */
  readonly label: string;
  readonly months: readonly CalendarMonth[];
}

/** 0 for Monday to 6 for Sunday. */
export function weekdayOf(date: IsoDate): number {
  return (new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7;
}

/** From July on a month belongs to the season starting that year: seasons run October to June. */
function seasonOfMonth(key: string): string {
  const year = Number(key.slice(0, 4));
  const start = Number(key.slice(5, 7)) >= 7 ? year : year - 1;
  return `${start}-${String((start + 1) % 100).padStart(2, '0')}`;
}

function monthOf(key: string): CalendarMonth {
  const first = `${key}-01`;
  const days: IsoDate[] = [];
  for (let d = first; d.startsWith(key); d = addDays(d, 1)) days.push(d);
  return { key, label: `${MONTHS[Number(key.slice(5, 7)) - 1]} ${key.slice(0, 4)}`, lead: weekdayOf(first), days };
}

function nextMonth(key: string): string {
  const year = Number(key.slice(0, 4));
  const month = Number(key.slice(5, 7));
  return month === 12 ? `${year + 1}-01` : `${year}-${String(month + 1).padStart(2, '0')}`;
}

/**
 * The months of the dates, grouped by season: each season from the month of its first date to the month of its
 * last, every month between included (its days without games show as such), the summers between seasons left out.
 */
export function calendarSeasons(dates: readonly IsoDate[]): CalendarSeason[] {
  const spans = new Map<string, { first: string; last: string }>();
  // A report is read back from a file: anything but a real date has no place in a calendar.
  for (const date of dates.filter(isIsoDate)) {
    const key = date.slice(0, 7);
    const label = seasonOfMonth(key);
    const span = spans.get(label);
    if (!span) spans.set(label, { first: key, last: key });
    else {
      if (key < span.first) span.first = key;
      if (key > span.last) span.last = key;
    }
  }
  return [...spans.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([label, span]) => {
      const months: CalendarMonth[] = [];
      for (let key = span.first; key <= span.last; key = nextMonth(key)) months.push(monthOf(key));
      return { label, months };
    });
}

/**
 * The calendar as HTML: `day` renders one day's cell (a fixed-size element); `weekdays` adds the row labels to
 * each month. Grids fill column by column, so `lead` empty cells put the 1st on its weekday's row.
 */
export function calendarHtml(
  seasons: readonly CalendarSeason[],
  day: (date: IsoDate) => string,
  options: { readonly className: string; readonly weekdays: boolean; readonly id?: string },
): string {
  const labels = options.weekdays
    ? WEEKDAYS.map((w, i) => `<b class="wd">${i % 2 === 0 ? w.slice(0, 1) : ''}</b>`).join('')
    : '';
  const blocks = seasons.map((s) => {
    const months = s.months.map(
      (m) =>
        `<div class="month" data-month="${m.key}"><div class="mlabel">${m.label}</div><div class="mgrid">${labels}` +
        `${'<i class="pad"></i>'.repeat(m.lead)}${m.days.map(day).join('')}</div></div>`,
    );
    // One season needs no label: the report's title names it.
    const label = seasons.length > 1 ? `<div class="slabel">${s.label}</div>` : '';
    return `<div class="season" data-season="${s.label}">${label}<div class="months">${months.join('\n')}</div></div>`;
  });
  const id = options.id ? ` id="${options.id}"` : '';
  return `<div class="cal ${options.className}${options.weekdays ? ' wk' : ''}"${id}>${blocks.join('\n')}</div>`;
}
