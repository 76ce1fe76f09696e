// Expose / unexpose: a read-only bind mount of a snapshot at an empty directory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SnapshotContext, VolumeSnapshotAttributes } from '../../src/vss/enums.js';
import { VssError } from '../../src/vss/errors.js';
import { isMountPoint, SnapshotManager } from '../../src/providers/index.js';
import { loopFsUnavailable, makeLoopFs, mountsUnder, type LoopFs } from '../../src/testing/loopfs.js';

const skip = loopFsUnavailable('ext4');

describe('expose and unexpose', { skip }, () => {
  let fs: LoopFs;
  let manager: SnapshotManager;
  let snapshotId: string;
  let n = 0;
  before(async () => {
    fs = makeLoopFs('ext4', { sizeMb: 32 });
    writeFileSync(join(fs.mountPoint, 'file.txt'), 'as at commit');
    manager = await SnapshotManager.open({ stateDir: join(fs.dir, 'state') });
    const set = manager.startSnapshotSet({ sessionId: 's', context: SnapshotContext.APP_ROLLBACK });
    await set.addToSnapshotSet(fs.mountPoint);
    const [p] = await set.doSnapshotSet();
    snapshotId = p!.snapshotId.toString();
    writeFileSync(join(fs.mountPoint, 'file.txt'), 'changed later');
  });
  after(() => fs?.cleanup());

  const target = (): string => {
    const t = join(fs.dir, `expose${++n}`);
    mkdirSync(t);
    return t;
  };

  test('exposes read-only at an empty directory, reports it, and unexposes', async () => {
    const t = target();
    const at = await manager.exposeSnapshot(snapshotId, t);
    assert.equal(at, t);
    assert.ok(isMountPoint(t));
    assert.equal(readFileSync(join(t, 'file.txt'), 'utf8'), 'as at commit');
    assert.throws(() => writeFileSync(join(t, 'new.txt'), 'x'), /EROFS/);
    const p = await manager.getSnapshotProperties(snapshotId);
    assert.equal(p.exposedName, t);
    assert.ok(p.snapshotAttributes & VolumeSnapshotAttributes.EXPOSED_LOCALLY);
    await assert.rejects(manager.exposeSnapshot(snapshotId, target()), (e) => VssError.is(e, 'VSS_E_OBJECT_ALREADY_EXISTS'), 'already exposed');
    await manager.unexposeSnapshot(snapshotId);
    assert.equal(isMountPoint(t), false);
    const q = await manager.getSnapshotProperties(snapshotId);
    assert.equal(q.exposedName, '');
    assert.equal(q.snapshotAttributes & VolumeSnapshotAttributes.EXPOSED_LOCALLY, 0);
  });

  test('a non-empty, missing or mounted target is refused and nothing is mounted', async () => {
    const full = target();
    writeFileSync(join(full, 'occupied'), 'x');
    await assert.rejects(manager.exposeSnapshot(snapshotId, full), (e) => VssError.is(e, 'VSS_E_OBJECT_ALREADY_EXISTS') && /not empty/.test(e.message));
    await assert.rejects(manager.exposeSnapshot(snapshotId, join(fs.dir, 'missing')), (e) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
    const file = join(fs.dir, 'a-file');
    writeFileSync(file, 'x');
    await assert.rejects(manager.exposeSnapshot(snapshotId, file), (e) => VssError.is(e, 'E_INVALIDARG'));
    await assert.rejects(manager.exposeSnapshot('00000000-0000-0000-0000-00000000abcd', target()), (e) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
    assert.deepEqual(mountsUnder(fs.dir), [fs.mountPoint]);
    assert.equal((await manager.getSnapshotProperties(snapshotId)).exposedName, '');
  });

  test('after a reboot (mount gone) recovery exposes a persistent snapshot again; delete unexposes', async () => {
    const t = target();
    await manager.exposeSnapshot(snapshotId, t);
    assert.equal(spawnSync('umount', [t]).status, 0); // what a reboot does to a bind mount
    const restarted = await SnapshotManager.open({ stateDir: join(fs.dir, 'state') });
    const report = await restarted.recover(new Set());
    assert.deepEqual(report.reexposed, [snapshotId]);
    assert.ok(isMountPoint(t));
    assert.equal(readFileSync(join(t, 'file.txt'), 'utf8'), 'as at commit');
    await restarted.deleteSnapshots(snapshotId);
    assert.equal(isMountPoint(t), false);
    assert.deepEqual(mountsUnder(fs.dir), [fs.mountPoint]);
    assert.equal(existsSync(join(fs.mountPoint, '.shadowcopy')), false);
  });
});
