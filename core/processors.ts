// From a processor's name to its implementation: how run history's failed runs are re-run by name.
// It sits above the phases on purpose: the definition (core/pipeline/) describes processors and imports no
// implementation; this module is the one place that knows every phase's code.

import { BadInputError } from './errors.js';
import { PHASE1_SCRAPERS } from './phase1/scrapers.js';
import { PHASE2_PROCESSORS } from './phase2/processors.js';
import { PHASE3_PROCESSORS } from './phase3/processors.js';
import { PHASE4_PROCESSORS } from './phase4/processors.js';
import { getProcessorDefinition, type PhaseNumber, processorsOfPhase } from './pipeline/definition.js';
import type { Processor } from './pipeline/processor.js';

const IMPLEMENTATIONS = new Map<string, Processor>(
  [...PHASE1_SCRAPERS, ...PHASE2_PROCESSORS, ...PHASE3_PROCESSORS, ...PHASE4_PROCESSORS].map((p) => [
    p.definition.name,
    p,
  ]),
);

export function getProcessor(name: string): Processor {
  const def = getProcessorDefinition(name);
  const impl = IMPLEMENTATIONS.get(def.name);
  if (!impl) throw new BadInputError(`processor ${name} (phase ${def.phase}) has no implementation in this version`);
  return impl;
}

/** A phase's processors in the order a date needs them. */
export function phaseProcessors(phase: PhaseNumber): Processor[] {
  return processorsOfPhase(phase).map((d) => getProcessor(d.name));
}
