// The life of one snapshot on a real filesystem, shared by the btrfs, XFS and ext4 tests:
// the volume changes between prepare and commit (writers still running), the snapshot must
// equal the volume at commit time, stay so while the volume keeps changing, and deleting it
// must leave nothing behind.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SnapshotContext, SnapshotState } from '../../src/vss/enums.js';
import type { ProviderName } from '../../src/vss/snapshot.js';
import { SnapshotManager } from '../../src/providers/index.js';
import type { SyncStats } from '../../src/providers/tree.js';
import { digestTree, diffTrees, populate } from './helpers.js';

/** Writers at work before the freeze: an edit, a new file, a deletion, a rename-over, a new dir. */
export function churn(volume: string, round: number): void {
  writeFileSync(join(volume, 'db/data.db'), `database pages v${round + 2}`);
  writeFileSync(join(volume, `new-${round}.txt`), `new in round ${round}`);
  rmSync(join(volume, `docs/f${round}.txt`), { force: true });
  writeFileSync(join(volume, 'docs/replace.tmp'), `replacement ${round}`);
  renameSync(join(volume, 'docs/replace.tmp'), join(volume, 'docs/f49.txt'));
  mkdirSync(join(volume, `dir-${round}/sub`), { recursive: true });
}

export async function snapshotLifecycle(opts: {
  stateDir: string;
  volume: string;
  provider: ProviderName;
  force?: boolean;
  /** Top-level names of the volume the snapshot leaves out besides the store (nested subvolumes). */
  skipTop?: string[];
}): Promise<{ commitStats: SyncStats | undefined }> {
  const { stateDir, volume } = opts;
  populate(volume);
  const manager = await SnapshotManager.open({ stateDir });
  const set = manager.startSnapshotSet({ sessionId: 'session-1', context: SnapshotContext.APP_ROLLBACK });
  const id = await set.addToSnapshotSet(volume, opts.force ? { provider: opts.provider } : {});
  assert.equal(set.providerOf(id), opts.provider);
  await set.prepare();
  churn(volume, 0); // after prepare: must be in the snapshot
  await set.preCommit();
  const atCommit = digestTree(volume, ['.shadowcopy', ...(opts.skipTop ?? [])]);
  await set.commit();
  const commitStats = (manager.providers[opts.provider] as { lastCommitStats?: Map<string, SyncStats> }).lastCommitStats?.get(volume);
  churn(volume, 1); // after commit: must not be
  const [props] = await set.postCommit();
  assert.ok(props);
  assert.equal(props.status, SnapshotState.CREATED);
  assert.equal(props.snapshotsCount, 1);
  assert.ok(props.snapshotId.equals(id));
  const snap = props.snapshotDeviceObject;
  assert.deepEqual(diffTrees(atCommit, digestTree(snap)), []);

  // The volume keeps changing; the snapshot does not.
  writeFileSync(join(volume, 'hello.txt'), 'overwritten in place');
  writeFileSync(join(volume, 'docs/report.bin'), Buffer.alloc(300_000, 9));
  unlinkSync(join(volume, 'docs/deep/deeper/n.txt'));
  churn(volume, 2);
  assert.deepEqual(diffTrees(atCommit, digestTree(snap)), []);

  // A restarted manager still knows it (persistent context).
  const again = await SnapshotManager.open({ stateDir });
  const listed = again.query({ context: SnapshotContext.APP_ROLLBACK });
  assert.deepEqual(listed.map((p) => p.snapshotId.toString()), [id.toString()]);

  const { deletedCount } = await again.deleteSnapshots(id);
  assert.equal(deletedCount, 1);
  assert.equal(existsSync(snap), false, 'snapshot directory removed');
  assert.equal(again.registry.list().length, 0, 'registry entry removed');
  assert.equal(existsSync(join(snap, '..', '..')), false, 'empty snapshot store removed');
  return { commitStats };
}
