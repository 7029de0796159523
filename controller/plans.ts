// The game ids of a Job's dates, from the reviewed plan files the image ships (plans/<season>.json): the gate
// and the validation need them, and a job plan holds only dates.

import type { IsoDate } from '../core/dates.js';
import { BadInputError } from '../core/errors.js';
import { type PlanDate, readPlan } from '../core/plan.js';
import type { PlanDatesFn } from './act.js';

/** The plan dates of `dates` from the season's plan file in planDir; a date the file lacks is an error. */
export function planDatesFrom(planDir: string): PlanDatesFn {
  return async (season: string, dates: readonly IsoDate[]): Promise<PlanDate[]> => {
    const plan = await readPlan(planDir, season);
    const wanted = new Set(dates);
    const found = plan.dates.filter((d) => wanted.has(d.date));
    const missing = [...wanted].filter((d) => !found.some((f) => f.date === d)).sort();
    if (missing.length > 0) {
      throw new BadInputError(
        `the plan file of ${season} in ${planDir} lacks ${missing.length} date(s) the jobs ran: ${missing.slice(0, 8).join(', ')}`,
        { where: planDir },
      );
    }
    return found;
  };
}
