#!/usr/bin/env node
// The `backfill` command: every stage of an NBA season backfill, on the embedded defaults or in the cloud.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { EXIT_BAD_INPUT } from '../core/errors.js';
import { packageRoot } from '../core/paths.js';
import { registerGate } from './commands/gate.js';
import { registerLogs } from './commands/logs.js';
import { registerPipeline } from './commands/pipeline.js';
import { registerPlan } from './commands/plan.js';
import { registerProcess } from './commands/process.js';
import { registerQuery } from './commands/query.js';
import { registerRun } from './commands/run.js';
import { registerStage1 } from './commands/stage1.js';
import { registerStage3 } from './commands/stage3.js';
import { registerStatus } from './commands/status.js';
import { registerValidate } from './commands/validate.js';
import { addGlobalOptions } from './context.js';
import { addHelpFooter, configureHelp, exitCodesText } from './help.js';

/** The version in the package's own package.json. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command('backfill')
    .description('Backfill whole NBA seasons through the statistics pipeline, safely.')
    .showHelpAfterError('(add --help for usage)')
    .version(packageVersion(), '-V, --version', 'print the version of nba-backfill')
    .exitOverride();
  configureHelp(program);
  addGlobalOptions(program);
  registerRun(program);
  registerPlan(program);
  registerStage1(program);
  registerGate(program);
  registerLogs(program);
  registerStage3(program);
  registerValidate(program);
  registerStatus(program);
  registerProcess(program);
  registerQuery(program);
  registerPipeline(program);
  for (const c of program.commands) {
    c.exitOverride();
    c.showHelpAfterError('(add --help for usage)');
    addHelpFooter(c);
  }
  program.addHelpText(
    'after',
    `\nRun \`backfill <command> --help\` for a command's options and examples. Results go to standard output;\nprogress, warnings and errors to standard error. Colour only on a terminal, and never with NO_COLOR set.\n\n${exitCodesText('')}`,
  );
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every other usage error is bad usage.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_BAD_INPUT;
      return;
    }
    throw err;
  }
}

await main(process.argv);
