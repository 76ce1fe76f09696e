// shadowcopy writers [--json]: the writers subscribed to the coordinator, like
// `vssadmin list writers` (class id, instance id, name, state number and label, last error).
import type { Command } from 'commander';
import { formatWriter, writerJson } from '../admin-format.js';
import { addCoordinatorOptions, coordinatorAccess, type CoordinatorCliOptions } from '../coordinator-options.js';

export function registerWriters(program: Command): void {
  const cmd = program
    .command('writers')
    .description('List the subscribed writers with their last state and error (like vssadmin list writers)')
    .option('--json', 'print the writers as a JSON array');
  addCoordinatorOptions(cmd).action(async (o: CoordinatorCliOptions & { json?: boolean }) => {
    const access = await coordinatorAccess(o);
    try {
      const admin = await access.admin();
      let writers;
      try {
        writers = await admin.listWriters();
      } finally {
        admin.close();
      }
      writers.sort((a, b) => a.writerName.localeCompare(b.writerName) || a.instanceName.localeCompare(b.instanceName));
      if (o.json) process.stdout.write(`${JSON.stringify(writers.map(writerJson), null, 2)}\n`);
      else if (!writers.length) process.stdout.write(`No writers are subscribed${o.standalone ? ' (--standalone has no external writers)' : ''}.\n`);
      else process.stdout.write(`${writers.map(formatWriter).join('\n\n')}\n`);
    } finally {
      await access.close();
    }
  });
}
