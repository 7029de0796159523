// `backfill query`: SQL against the configured warehouse, read-only unless --write, printed as a table, JSON or CSV.

import { type Command, Option } from 'commander';
import { openSqlWarehouse } from '../../core/adapters/index.js';
import { BadInputError, ProcessingError, WarehouseLockedError } from '../../core/errors.js';
import type { RefusedStatement, ResultSet } from '../../core/ports/warehouse.js';
import { configFrom, type GlobalFlags, withoutAdapters } from '../context.js';
import { RESULT_FORMATS, type ResultFormat, renderResult } from '../output.js';

// The examples and the exit codes come with every command's footer (cli/help.ts); this is what is query's own.
const HELP_AFTER = `
Read-only unless --write: a statement that may change the warehouse (INSERT, UPDATE, DELETE, MERGE, CREATE,
DROP, ALTER, TRUNCATE, COPY, ATTACH, ..., in a script too) is refused with exit 2 before it runs, as the engine
itself types it (DuckDB's prepared statement, BigQuery's dry run), and a DuckDB file is opened read-only.
A change of one of DuckDB's settings (SET or PRAGMA: some write files, such as log_query_path) is refused the
same way; SET VARIABLE, USE and the search path are allowed. Bad SQL exits 2 too; exit 1 means the warehouse could not answer (a DuckDB file another process is writing,
a BigQuery failure).

The result goes to stdout, messages to stderr. NULL reads NULL in a table and is an empty field in CSV. In
JSON, BIGINT and DECIMAL values are numbers where a double holds them exactly, else strings; TIMESTAMPs are
ISO 8601 in UTC; STRUCTs and LISTs are objects and arrays (their JSON text in a table or CSV).`;

/** Why a statement was refused, naming the option that allows it. */
export function refusalMessage(refused: RefusedStatement): string {
  const which = refused.statementNumber === undefined ? '' : ` (statement ${refused.statementNumber})`;
  const detail = refused.detail ? ` (${refused.detail})` : '';
  return `query: ${refused.statementType}${which} may change the warehouse${detail}; \`backfill query\` is read-only unless you pass --write`;
}

/** A DuckDB file held by another process, in words that say what to do (and DuckDB's own, naming the holder). */
function lockedMessage(err: WarehouseLockedError, write: boolean): string {
  const holder = err.holderPid === undefined ? 'another process' : `another process (PID ${err.holderPid})`;
  const engine = err.cause instanceof Error ? ` (${err.cause.message})` : '';
  return write
    ? `query: cannot open ${err.path} for writing: ${holder} has it open, and DuckDB allows one writer per file and no reader beside it; run the query again when that process has ended${engine}`
    : `query: cannot read ${err.path}: ${holder} is writing it, and DuckDB opens no reader beside a file's writer; run the query again when that process has ended (\`backfill status\` shows a running stage's progress meanwhile)${engine}`;
}

/** The SQL's own failure: bad input (exit 2), unless the warehouse could not answer (exit 1). */
function queryFailure(err: unknown): Error {
  const message = `query failed: ${err instanceof Error ? err.message : String(err)}`;
  if (err instanceof ProcessingError) return new ProcessingError(message, { transient: err.transient, cause: err });
  return new BadInputError(message, { where: 'sql', cause: err });
}

async function runQuery(sql: string, write: boolean, command: Command): Promise<ResultSet> {
  const config = configFrom(command.optsWithGlobals<GlobalFlags>());
  let opened: Awaited<ReturnType<typeof openSqlWarehouse>>;
  try {
    opened = await openSqlWarehouse(config, { write });
  } catch (err) {
    if (err instanceof WarehouseLockedError) throw new ProcessingError(lockedMessage(err, write), { cause: err });
    throw err;
  }
  const { warehouse, missingFile } = opened;
  try {
    let outcome: Awaited<ReturnType<typeof warehouse.runSql>>;
    try {
      outcome = await warehouse.runSql(sql, { write });
    } catch (err) {
      throw queryFailure(err);
    }
    if (!outcome.ok) throw new BadInputError(refusalMessage(outcome.refused), { where: '--write' });
    // Said only of a result, which it explains: an error's message stays the first line.
    if (missingFile) {
      process.stderr.write(
        `backfill: ${missingFile} does not exist yet (nothing has been loaded): the query ran on empty tables\n`,
      );
    }
    return outcome.result;
  } finally {
    await warehouse.close();
  }
}

export function registerQuery(program: Command): void {
  program
    .command('query')
    .description('run SQL against the configured warehouse (tables as dataset.table, e.g. nba_raw.nbac_schedule)')
    .argument('<sql>', 'the SQL: one statement, or a script of several (the last one’s result is printed)')
    .addOption(new Option('--format <format>', 'output format').choices([...RESULT_FORMATS]).default('table'))
    .option(
      '--write',
      'allow statements that change the warehouse (INSERT, DELETE, CREATE, DROP, ...): opens it for writing',
    )
    .addHelpText('after', HELP_AFTER)
    .action(async (sql: string, flags: { format: ResultFormat; write?: boolean }, command: Command) => {
      await withoutAdapters(async () => {
        const result = await runQuery(sql, flags.write === true, command);
        process.stdout.write(renderResult(result, flags.format, { nullText: 'NULL' }));
        return 0;
      });
    });
}
