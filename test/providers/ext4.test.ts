// The copy provider on a real ext4 filesystem (loop image), and its failures.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VssError } from '../../src/vss/errors.js';
import { resolveVolume, SnapshotManager } from '../../src/providers/index.js';
import { journalUnavailable } from '../../src/providers/journal.js';
import { loopFsUnavailable, makeLoopFs, mountsUnder, type LoopFs } from '../../src/testing/loopfs.js';
import { digestTree, diffTrees } from './helpers.js';
import { snapshotLifecycle } from './scenario.js';

const skip = loopFsUnavailable('ext4');

/** inotifywait processes whose command line names `dir` (a journal left open). */
function inotifywaitsWatching(dir: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('inotifywait') && argv.includes(dir)) out.push(pid);
    } catch {
      // gone
    }
  }
  return out;
}

describe('copy provider on ext4', { skip }, () => {
  let fs: LoopFs;
  before(() => {
    fs = makeLoopFs('ext4', { sizeMb: 64 });
  });
  after(() => fs?.cleanup());

  const fresh = (name: string): { volume: string; stateDir: string } => {
    // Each test gets an empty volume: everything but lost+found is cleared.
    for (const n of readdirSync(fs.mountPoint)) if (n !== 'lost+found') rmSync(join(fs.mountPoint, n), { recursive: true, force: true });
    const stateDir = join(fs.dir, `state-${name}`);
    return { volume: fs.mountPoint, stateDir };
  };

  test('snapshot equals the volume at commit time, stays so, and deletes without trace', async () => {
    const { volume, stateDir } = fresh('life');
    const { commitStats } = await snapshotLifecycle({ stateDir, volume, provider: 'copy' });
    assert.equal(readdirSync(fs.mountPoint).includes('.shadowcopy'), false, 'no store left on the volume');
    // With inotify-tools installed, commit looked only at what the journal named.
    const why = journalUnavailable(await resolveVolume(volume));
    assert.equal(commitStats?.mode, why ? 'full' : 'journal', commitStats?.fallback ?? why);
    if (!why) assert.ok(commitStats!.scanned < 40, `commit looked at ${commitStats!.scanned} entries`);
    assert.deepEqual(inotifywaitsWatching(volume), [], 'the journal is closed');
  });

  test('the providers that cannot serve ext4 say so', async () => {
    const { volume, stateDir } = fresh('unsupported');
    const m = await SnapshotManager.open({ stateDir });
    assert.equal((await m.isVolumeSupported(volume)).provider, 'copy');
    const reflink = await m.isVolumeSupported(volume, 'reflink');
    assert.equal(reflink.supported, false);
    assert.match(reflink.reason, /cannot clone/);
    const set = m.startSnapshotSet({ sessionId: 's' });
    await assert.rejects(set.addToSnapshotSet(volume, { provider: 'btrfs' }), (e) => VssError.is(e, 'VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER'));
    await assert.rejects(set.addToSnapshotSet(volume, { provider: 'reflink' }), (e) => VssError.is(e, 'VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER'));
    await set.abort();
    assert.equal(existsSync(join(volume, '.shadowcopy')), false);
  });

  test('a full filesystem during commit is VSS_E_INSUFFICIENT_STORAGE and leaves nothing', async () => {
    const { volume, stateDir } = fresh('enospc-commit');
    writeFileSync(join(volume, 'a.bin'), Buffer.alloc(20 * 1024 * 1024, 1));
    const m = await SnapshotManager.open({ stateDir });
    const set = m.startSnapshotSet({ sessionId: 's' });
    await set.addToSnapshotSet(volume);
    await set.prepare(); // 40 MB of ~56 MB used
    // A writer adds more than is left: commit must copy it and runs out of space.
    writeFileSync(join(volume, 'b.bin'), Buffer.alloc(12 * 1024 * 1024, 2));
    await set.preCommit();
    await assert.rejects(set.commit(), (e) => VssError.is(e, 'VSS_E_INSUFFICIENT_STORAGE'));
    assert.equal(existsSync(join(volume, '.shadowcopy')), false, 'store removed');
    assert.deepEqual(m.registry.list(), []);
    assert.deepEqual((await SnapshotManager.open({ stateDir })).registry.list(), [], 'nothing on disk either');
    await set.abort(); // a requester aborts after a failed DoSnapshotSet: must be harmless
  });

  test('a full filesystem during prepare is VSS_E_INSUFFICIENT_STORAGE and leaves nothing', async () => {
    const { volume, stateDir } = fresh('enospc-prepare');
    writeFileSync(join(volume, 'a.bin'), Buffer.alloc(34 * 1024 * 1024, 1));
    const m = await SnapshotManager.open({ stateDir });
    const set = m.startSnapshotSet({ sessionId: 's' });
    await set.addToSnapshotSet(volume);
    await assert.rejects(set.prepare(), (e) => VssError.is(e, 'VSS_E_INSUFFICIENT_STORAGE'));
    assert.equal(existsSync(join(volume, '.shadowcopy')), false);
    assert.deepEqual(m.registry.list(), []);
    // The manager is free for the next set.
    m.startSnapshotSet({ sessionId: 's2' });
  });

  test('a prepared snapshot directory that vanished is VSS_E_OBJECT_NOT_FOUND at commit, cleaned up', async () => {
    const { volume, stateDir } = fresh('vanished');
    mkdirSync(join(volume, 'x'));
    writeFileSync(join(volume, 'x/y'), 'y');
    const m = await SnapshotManager.open({ stateDir });
    const set = m.startSnapshotSet({ sessionId: 's' });
    const id = await set.addToSnapshotSet(volume);
    await set.prepare();
    rmSync(join(volume, '.shadowcopy/snapshots', id.toString()), { recursive: true });
    await set.preCommit();
    await assert.rejects(set.commit(), (e) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
    assert.equal(existsSync(join(volume, '.shadowcopy')), false);
    assert.deepEqual(m.registry.list(), []);
  });

  test('a completed snapshot whose directory vanished is reported, not served', async () => {
    const { volume, stateDir } = fresh('vanished-later');
    writeFileSync(join(volume, 'f'), 'f');
    const m = await SnapshotManager.open({ stateDir });
    const set = m.startSnapshotSet({ sessionId: 's', context: 0x9 });
    await set.addToSnapshotSet(volume);
    const [p] = await set.doSnapshotSet();
    rmSync(p!.snapshotDeviceObject, { recursive: true });
    await assert.rejects(m.getSnapshotProperties(p!.snapshotId), (e) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
    const target = join(fs.dir, 'expose-vanished');
    mkdirSync(target);
    await assert.rejects(m.exposeSnapshot(p!.snapshotId, target), (e) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
    assert.deepEqual(mountsUnder(target), []);
    const report = await m.recover(new Set());
    assert.deepEqual(report.vanished, [p!.snapshotId.toString()]);
    assert.deepEqual(m.registry.list(), []);
    assert.equal(existsSync(join(volume, '.shadowcopy')), false);
  });

  test('abort after prepare and after commit leaves nothing', async () => {
    const { volume, stateDir } = fresh('abort');
    writeFileSync(join(volume, 'f'), 'content');
    const m = await SnapshotManager.open({ stateDir });
    const before = digestTree(volume);
    for (const stop of ['prepare', 'commit'] as const) {
      const set = m.startSnapshotSet({ sessionId: 's' });
      await set.addToSnapshotSet(volume);
      await set.prepare();
      if (stop === 'commit') {
        await set.preCommit();
        await set.commit();
      }
      await set.abort();
      assert.equal(existsSync(join(volume, '.shadowcopy')), false, `store gone after abort at ${stop}`);
      assert.deepEqual(m.registry.list(), []);
      assert.deepEqual((await SnapshotManager.open({ stateDir })).registry.list(), []);
      assert.deepEqual(diffTrees(before, digestTree(volume)), [], 'the volume itself is untouched');
    }
  });
});
