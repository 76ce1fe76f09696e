// shadowcopy list [--json] [--set ID]: the completed snapshots the coordinator knows, in
// every context (like `vssadmin list shadows`), grouped by snapshot set.
import type { Command } from 'commander';
import { formatSnapshotSets, parseId, snapshotJson } from '../admin-format.js';
import { addCoordinatorOptions, coordinatorAccess, type CoordinatorCliOptions } from '../coordinator-options.js';

export function registerList(program: Command): void {
  const cmd = program
    .command('list')
    .description('List the snapshots (every context), grouped by snapshot set (like vssadmin list shadows)')
    .option('--set <id>', 'only the snapshots of this snapshot set')
    .option('--json', 'print the snapshots as a JSON array');
  addCoordinatorOptions(cmd).action(async (o: CoordinatorCliOptions & { set?: string; json?: boolean }) => {
    const setId = o.set !== undefined ? parseId(o.set, '--set') : undefined;
    const access = await coordinatorAccess(o);
    try {
      const admin = await access.admin();
      let snapshots;
      try {
        snapshots = await admin.query(setId ? { snapshotSetId: setId } : {});
      } finally {
        admin.close();
      }
      if (o.json) process.stdout.write(`${JSON.stringify(snapshots.map(snapshotJson), null, 2)}\n`);
      else if (!snapshots.length) process.stdout.write(setId ? `No snapshot belongs to the set ${setId.toString()}.\n` : 'No snapshots.\n');
      else process.stdout.write(`${formatSnapshotSets(snapshots)}\n`);
    } finally {
      await access.close();
    }
  });
}
