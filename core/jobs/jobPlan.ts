// The job plan file a Stage 1 pod reads its dates from (a ConfigMap volume in the cluster, a file locally),
// checked the same way by the pod, the controller and `backfill logs`.

import { z } from 'zod';
import { isIsoDate } from '../dates.js';
import { BadInputError } from '../errors.js';
import { readJsonFile } from '../files.js';
import { JOB_PLAN_ENV, type JobPlan } from './spec.js';

export const JobPlanSchema = z.object({
  jobName: z.string().min(1),
  season: z.string(),
  dates: z.array(z.string().refine(isIsoDate, 'must be a date YYYY-MM-DD')).min(1),
  runId: z.string().min(1).optional(),
});

export function readJobPlan(path: string | undefined): JobPlan {
  if (!path) throw new BadInputError(`${JOB_PLAN_ENV} is not set: the pod cannot know its dates`);
  return readJsonFile(path, 'job plan', JobPlanSchema);
}
