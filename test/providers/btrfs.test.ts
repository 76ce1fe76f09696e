// The btrfs provider (and reflink on btrfs) on a real btrfs filesystem in a loop image.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ObjectType, SnapshotContext, VolumeSnapshotAttributes } from '../../src/vss/enums.js';
import { VssError } from '../../src/vss/errors.js';
import { SnapshotManager } from '../../src/providers/index.js';
import { loopFsUnavailable, makeLoopFs, type LoopFs } from '../../src/testing/loopfs.js';
import { digestTree, diffTrees, populate } from './helpers.js';
import { snapshotLifecycle } from './scenario.js';

const skip = loopFsUnavailable('btrfs');

function btrfs(...args: string[]): string {
  const r = spawnSync('btrfs', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `btrfs ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Paths of every subvolume of the filesystem, relative to its top. */
function subvolumes(mnt: string): string[] {
  return btrfs('subvolume', 'list', mnt)
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(l.indexOf(' path ') + 6))
    .sort();
}

describe('btrfs provider on btrfs', { skip }, () => {
  let fs: LoopFs;
  let n = 0;
  before(() => {
    fs = makeLoopFs('btrfs');
  });
  after(() => fs?.cleanup());

  /** A fresh subvolume as the volume, and a fresh state directory. */
  const fresh = (): { volume: string; stateDir: string } => {
    const volume = join(fs.mountPoint, `vol${++n}`);
    btrfs('subvolume', 'create', volume);
    return { volume, stateDir: join(fs.dir, `state${n}`) };
  };

  test('a subvolume snapshot equals the volume at commit time, is read-only, and deletes without trace', async () => {
    const { volume, stateDir } = fresh();
    const before = subvolumes(fs.mountPoint);
    await snapshotLifecycle({ stateDir, volume, provider: 'btrfs' });
    assert.deepEqual(subvolumes(fs.mountPoint), before, 'no subvolume left (not even the store)');
    assert.equal(existsSync(join(fs.mountPoint, '.shadowcopy')), false);
  });

  test('the snapshot is a read-only subvolume', async () => {
    const { volume, stateDir } = fresh();
    writeFileSync(join(volume, 'f'), 'f');
    const m = await SnapshotManager.open({ stateDir });
    const set = m.startSnapshotSet({ sessionId: 's' });
    await set.addToSnapshotSet(volume);
    const [p] = await set.doSnapshotSet();
    const snap = p!.snapshotDeviceObject;
    assert.equal(statSync(snap).ino, 256, 'a subvolume root');
    assert.match(btrfs('property', 'get', '-ts', snap, 'ro'), /ro=true/);
    assert.throws(() => writeFileSync(join(snap, 'g'), 'g'), /EROFS/);
    await m.releaseSession('s');
    assert.equal(existsSync(snap), false);
  });

  test("writers' EXCLUDE_FILES_FROM_SNAPSHOT are removed from the snapshot, unless NO_AUTORECOVERY", async () => {
    for (const noAutoRecovery of [false, true]) {
      const { volume, stateDir } = fresh();
      populate(volume);
      const m = await SnapshotManager.open({ stateDir });
      const context = SnapshotContext.BACKUP | (noAutoRecovery ? VolumeSnapshotAttributes.NO_AUTORECOVERY : 0);
      const set = m.startSnapshotSet({ sessionId: 's', context });
      await set.addToSnapshotSet(volume);
      set.setExcludeFromSnapshot([
        { path: join(volume, 'db'), filespec: '*.tmp', recursive: false },
        { path: join(volume, 'db'), filespec: 'data.db-wal', recursive: false },
        { path: join(volume, 'docs'), filespec: 'n.txt', recursive: true },
        { path: '/somewhere/else', filespec: '*', recursive: true },
      ]);
      const [p] = await set.doSnapshotSet();
      const snap = p!.snapshotDeviceObject;
      const expected = digestTree(volume);
      if (!noAutoRecovery) {
        for (const gone of ['db/temp.tmp', 'db/data.db-wal', 'docs/deep/deeper/n.txt']) expected.delete(gone);
      }
      assert.deepEqual(diffTrees(expected, digestTree(snap)), [], `noAutoRecovery=${noAutoRecovery}`);
      assert.match(btrfs('property', 'get', '-ts', snap, 'ro'), /ro=true/, 'read-only after the exclusions');
      assert.equal(p!.snapshotAttributes & VolumeSnapshotAttributes.NO_AUTORECOVERY, noAutoRecovery ? VolumeSnapshotAttributes.NO_AUTORECOVERY : 0);
      await m.releaseSession('s');
    }
  });

  test('the mount root as volume: the store inside it is not in the snapshot', async () => {
    const stateDir = join(fs.dir, 'state-root');
    writeFileSync(join(fs.mountPoint, 'top.txt'), 'top-level file');
    const m = await SnapshotManager.open({ stateDir });
    const set = m.startSnapshotSet({ sessionId: 's' });
    await set.addToSnapshotSet(fs.mountPoint);
    assert.equal(set.providerOf(set.snapshotIds[0]!), 'btrfs');
    const [p] = await set.doSnapshotSet();
    const snap = p!.snapshotDeviceObject;
    const names = readdirSync(snap);
    assert.equal(names.includes('.shadowcopy'), false, 'no store placeholder');
    assert.ok(names.includes('top.txt'));
    // Nested subvolumes (the other tests' volumes) show as empty directories, as btrfs makes them.
    for (const name of names.filter((x) => x.startsWith('vol'))) assert.deepEqual(readdirSync(join(snap, name)), []);
    assert.equal(p!.originalVolumeName, fs.mountPoint);
    assert.deepEqual(await m.deleteSnapshots(p!.snapshotSetId, ObjectType.SNAPSHOT_SET), { deletedCount: 1 });
    assert.equal(existsSync(join(fs.mountPoint, '.shadowcopy')), false);
  });

  test('reflink forced on a btrfs subvolume clones the tree', async () => {
    const { volume, stateDir } = fresh();
    await snapshotLifecycle({ stateDir, volume, provider: 'reflink', force: true });
  });

  test('a path inside a subvolume names that subvolume; a second path on it is a duplicate', async () => {
    const { volume, stateDir } = fresh();
    populate(volume);
    const m = await SnapshotManager.open({ stateDir });
    const set = m.startSnapshotSet({ sessionId: 's' });
    await set.addToSnapshotSet(join(volume, 'docs/deep'));
    await assert.rejects(set.addToSnapshotSet(volume), (e) => VssError.is(e, 'VSS_E_OBJECT_ALREADY_EXISTS'));
    const [p] = await set.doSnapshotSet();
    assert.equal(p!.originalVolumeName, volume);
    await m.releaseSession('s');
  });

  test('abort after commit removes the subvolume', async () => {
    const { volume, stateDir } = fresh();
    writeFileSync(join(volume, 'f'), 'f');
    const before = subvolumes(fs.mountPoint);
    const m = await SnapshotManager.open({ stateDir });
    const set = m.startSnapshotSet({ sessionId: 's' });
    await set.addToSnapshotSet(volume);
    await set.prepare();
    await set.preCommit();
    await set.commit();
    assert.equal(subvolumes(fs.mountPoint).length, before.length + 2, 'the snapshot and the store exist before abort');
    await set.abort();
    assert.deepEqual(subvolumes(fs.mountPoint), before);
    assert.deepEqual(m.registry.list(), []);
  });
});
