// `backfill gate`: the Phase 2 quality gate over the selected dates; exit 0 when it passes, 1 when not.

import { type Command, Option } from 'commander';
import { EXIT_OK, EXIT_PROCESSING_FAILURE } from '../../core/errors.js';
import { formatGate, runGate } from '../../core/gate.js';
import { withContext } from '../context.js';
import { addSelectionOptions, type SelectionFlags, selectFromPlans } from '../selection.js';
import { formatOf, streamsFor } from '../streams.js';

export function registerGate(program: Command): void {
  addSelectionOptions(
    program
      .command('gate')
      .description(
        'the Phase 2 quality gate: every final game present in every critical raw table, every latest run successful',
      ),
  )
    .addOption(new Option('--format <format>', 'table or json').choices(['table', 'json']).default('table'))
    .addHelpText('after', '\nExit 0 when the gate passes; 1 when it fails, and then Stage 3 must not start.')
    .action(async (flags: SelectionFlags & { format: string }, command: Command) => {
      await withContext(command, async (ctx) => {
        const selections = await selectFromPlans(ctx.config.planDir, flags);
        const result = await runGate(
          ctx.adapters.warehouse,
          selections.map((s) => ({ season: s.season.label, dates: s.dates })),
        );
        const io = streamsFor(formatOf(flags));
        io.json(result);
        if (io.format === 'table') io.say(formatGate(result));
        return result.passed ? EXIT_OK : EXIT_PROCESSING_FAILURE;
      });
    });
}
