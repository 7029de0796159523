// `backfill query`: SQL against the configured warehouse, printed as a table, JSON or CSV.

import { type Command, Option } from 'commander';
import { BadInputError } from '../../core/errors.js';
import { withContext } from '../context.js';
import { formatCsv, formatJson, formatTable } from '../output.js';

export function registerQuery(program: Command): void {
  program
    .command('query')
    .description('run SQL against the configured warehouse (tables as dataset.table, e.g. nba_raw.nbac_schedule)')
    .argument('<sql>', 'the SQL statement')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'))
    .action(async (sql: string, flags: { format: string }, command: Command) => {
      await withContext(command, async ({ adapters }) => {
        let rows: Awaited<ReturnType<typeof adapters.warehouse.query>>;
        try {
          rows = await adapters.warehouse.query(sql);
        } catch (err) {
          throw new BadInputError(`query failed: ${(err as Error).message}`, { where: 'sql' });
        }
        const out =
          flags.format === 'json' ? formatJson(rows) : flags.format === 'csv' ? formatCsv(rows) : formatTable(rows);
        process.stdout.write(out);
        return 0;
      });
    });
}
