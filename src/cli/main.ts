#!/usr/bin/env node
// The shadowcopy command line. One file per command under commands/; errors print their
// VSS name and message and exit non-zero, never a stack trace for a user mistake.
import { Command, CommanderError } from 'commander';
import { VssError } from '../vss/index.js';
import { registerApplyRebootRestores } from './commands/apply-reboot-restores.js';
import { registerBackup } from './commands/backup.js';
import { registerInspect } from './commands/inspect.js';
import { registerRestore } from './commands/restore.js';
import { registerRun } from './commands/run.js';
import { registerTrace } from './commands/trace.js';
import { registerDaemon } from './commands/daemon.js';
import { registerTestWriter } from './commands/test-writer.js';
import { registerWriters } from './commands/writers.js';
import { registerMetadata } from './commands/metadata.js';
import { registerCreate } from './commands/create.js';
import { registerList } from './commands/list.js';
import { registerDelete } from './commands/delete.js';
import { registerExpose } from './commands/expose.js';
import { registerWriter } from './commands/writer.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('shadowcopy')
    .description('The Volume Shadow Copy Service, rebuilt for Linux')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError();
  registerInspect(program);
  registerBackup(program);
  registerRestore(program);
  registerApplyRebootRestores(program);
  registerRun(program);
  registerTrace(program);
  registerDaemon(program);
  registerTestWriter(program);
  registerWriters(program);
  registerMetadata(program);
  registerCreate(program);
  registerList(program);
  registerDelete(program);
  registerExpose(program);
  registerWriter(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    // A command may set its own status (run: the command's; backup: partial success).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof VssError) {
      process.stderr.write(`shadowcopy: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
