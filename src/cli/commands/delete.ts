// shadowcopy delete ID | --set ID | --all [--force]: deletes snapshots (DeleteSnapshots with
// VSS_OBJECT_SNAPSHOT or VSS_OBJECT_SNAPSHOT_SET; like vshadow -ds, -dx, -da). An exposed
// snapshot is only deleted with --force (which unmounts it first); without --force nothing is
// deleted when one of the chosen snapshots is exposed.
import type { Command } from 'commander';
import { ObjectType, VssError, type SnapshotProperties } from '../../vss/index.js';
import { parseId } from '../admin-format.js';
import { addCoordinatorOptions, coordinatorAccess, type CoordinatorCliOptions } from '../coordinator-options.js';

interface DeleteOptions extends CoordinatorCliOptions {
  set?: string;
  all?: boolean;
  force?: boolean;
}

export function registerDelete(program: Command): void {
  const cmd = program
    .command('delete')
    .description('Delete a snapshot, a snapshot set (--set) or every snapshot (--all)')
    .argument('[id]', 'the snapshot id')
    .option('--set <id>', 'delete every snapshot of this snapshot set')
    .option('--all', 'delete every snapshot the coordinator knows, in every context')
    .option('--force', 'also delete exposed snapshots (they are unmounted first)');
  addCoordinatorOptions(cmd).action(async (id: string | undefined, o: DeleteOptions) => {
    const chosen = [id !== undefined, o.set !== undefined, Boolean(o.all)].filter(Boolean).length;
    if (chosen !== 1) cmd.error('shadowcopy delete: name exactly one of a snapshot ID, --set ID or --all', { exitCode: 2, code: 'shadowcopy.usage' });
    const snapshotId = id !== undefined ? parseId(id, 'the snapshot id') : undefined;
    const setId = o.set !== undefined ? parseId(o.set, '--set') : undefined;
    const access = await coordinatorAccess(o);
    try {
      const admin = await access.admin();
      try {
        let victims: SnapshotProperties[];
        const known = await admin.query();
        if (snapshotId) {
          victims = known.filter((p) => p.snapshotId.equals(snapshotId));
          if (!victims.length) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `no snapshot ${snapshotId.toString()}; \`shadowcopy list\` shows the snapshots`);
        } else if (setId) {
          victims = known.filter((p) => p.snapshotSetId.equals(setId));
          if (!victims.length) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `no snapshot belongs to the set ${setId.toString()}; \`shadowcopy list\` shows the snapshots`);
        } else victims = known;
        const exposed = victims.filter((p) => p.exposedName);
        if (exposed.length && !o.force) {
          throw new VssError('VSS_E_BAD_STATE', `${exposed.map((p) => `snapshot ${p.snapshotId.toString()} is exposed at ${p.exposedName}`).join('; ')}; unexpose it with \`shadowcopy unexpose ID\`, or pass --force to unmount and delete it`);
        }
        let deleted = 0;
        if (setId) deleted = await admin.deleteSnapshots(setId, ObjectType.SNAPSHOT_SET);
        else {
          for (const p of victims) {
            try {
              deleted += await admin.deleteSnapshots(p.snapshotId, ObjectType.SNAPSHOT);
            } catch (e) {
              if (VssError.is(e) && e.code === 'VSS_E_OBJECT_NOT_FOUND' && o.all) continue; // gone meanwhile (its session ended)
              if (VssError.is(e)) throw new VssError(e.code, `deleted ${deleted} snapshot(s); ${e.message.slice(e.code.length + 2)}`);
              throw e;
            }
          }
        }
        process.stdout.write(`Deleted ${deleted} snapshot${deleted === 1 ? '' : 's'}.\n`);
      } finally {
        admin.close();
      }
    } finally {
      await access.close();
    }
  });
}
