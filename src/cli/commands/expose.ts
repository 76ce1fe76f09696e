// shadowcopy expose ID DIR / shadowcopy unexpose ID: a snapshot made visible read-only at an
// empty directory (a bind mount; ExposeSnapshot with VSS_VOLSNAP_ATTR_EXPOSED_LOCALLY, like
// vshadow -el), and the mount removed again.
import type { Command } from 'commander';
import { parseId } from '../admin-format.js';
import { addCoordinatorOptions, coordinatorAccess, type CoordinatorCliOptions } from '../coordinator-options.js';

export function registerExpose(program: Command): void {
  const expose = program
    .command('expose')
    .description('Make a snapshot visible, read-only, at an empty directory (a bind mount)')
    .argument('<id>', 'the snapshot id')
    .argument('<dir>', 'an existing empty directory');
  addCoordinatorOptions(expose).action(async (id: string, dir: string, o: CoordinatorCliOptions) => {
    const snapshotId = parseId(id, 'the snapshot id');
    const access = await coordinatorAccess(o);
    try {
      const admin = await access.admin();
      try {
        const at = await admin.exposeSnapshot(snapshotId, dir);
        process.stdout.write(`Snapshot ${snapshotId.toString()} is exposed read-only at ${at}.\n`);
      } finally {
        admin.close();
      }
    } finally {
      await access.close();
    }
  });

  const unexpose = program
    .command('unexpose')
    .description('Remove the mount that exposes a snapshot')
    .argument('<id>', 'the snapshot id');
  addCoordinatorOptions(unexpose).action(async (id: string, o: CoordinatorCliOptions) => {
    const snapshotId = parseId(id, 'the snapshot id');
    const access = await coordinatorAccess(o);
    try {
      const admin = await access.admin();
      try {
        await admin.unexposeSnapshot(snapshotId);
        process.stdout.write(`Snapshot ${snapshotId.toString()} is no longer exposed.\n`);
      } finally {
        admin.close();
      }
    } finally {
      await access.close();
    }
  });
}
