// SnapshotManager: snapshot sets, contexts, query, deletion, the registry and recovery after
// a crash. Volumes are tmpfs mounts (copy provider): cheap enough to make 65 of them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectType, SnapshotContext, SnapshotState, VolumeSnapshotAttributes } from '../../src/vss/enums.js';
import { VssError } from '../../src/vss/errors.js';
import { PROVIDER_IDS } from '../../src/vss/snapshot.js';
import { REGISTRY_FILE, SnapshotManager } from '../../src/providers/index.js';
import { mountsUnder } from '../../src/testing/loopfs.js';

const root = typeof process.getuid === 'function' && process.getuid() === 0;
const skip = root ? undefined : 'needs root to mount tmpfs volumes';

describe('SnapshotManager', { skip }, () => {
  let dir: string;
  const vols: string[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'shadowcopy-manager-'));
    for (let i = 0; i < 66; i++) {
      const v = join(dir, `vol${i}`);
      mkdirSync(v);
      const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', `shadowcopy-test-${i}`, v], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      writeFileSync(join(v, 'data.txt'), `volume ${i}`);
      vols.push(v);
    }
  });
  after(() => {
    for (const mp of mountsUnder(dir)) if (spawnSync('umount', [mp]).status !== 0) spawnSync('umount', ['-l', mp]);
    rmSync(dir, { recursive: true, force: true });
  });
  let n = 0;
  const open = (): Promise<SnapshotManager> => SnapshotManager.open({ stateDir: join(dir, `state${++n}`) });

  test('bad volumes: a missing path, a duplicate, a 65th volume', async () => {
    const m = await open();
    const set = m.startSnapshotSet({ sessionId: 's' });
    await assert.rejects(set.addToSnapshotSet(join(dir, 'no/such/path')), (e) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
    for (let i = 0; i < 64; i++) await set.addToSnapshotSet(vols[i]!);
    await assert.rejects(set.addToSnapshotSet(vols[64]!), (e) => VssError.is(e, 'VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED'));
    await set.abort();
    const set2 = m.startSnapshotSet({ sessionId: 's' });
    await set2.addToSnapshotSet(vols[0]!);
    mkdirSync(join(vols[0]!, 'sub'));
    await assert.rejects(set2.addToSnapshotSet(join(vols[0]!, 'sub')), (e) => VssError.is(e, 'VSS_E_OBJECT_ALREADY_EXISTS'));
    await set2.abort();
    rmSync(join(vols[0]!, 'sub'), { recursive: true });
    assert.deepEqual(m.registry.list(), []);
  });

  test('64 volumes in one set, all snapshotted, one set deletion removes them all', async () => {
    const m = await open();
    const set = m.startSnapshotSet({ sessionId: 's', context: SnapshotContext.APP_ROLLBACK });
    for (let i = 0; i < 64; i++) await set.addToSnapshotSet(vols[i]!);
    const props = await set.doSnapshotSet();
    assert.equal(props.length, 64);
    for (const [i, p] of props.entries()) {
      assert.equal(p.snapshotsCount, 64);
      assert.equal(p.originalVolumeName, vols[i]);
      assert.ok(p.providerId.equals(PROVIDER_IDS.copy));
      assert.equal(readFileSync(join(p.snapshotDeviceObject, 'data.txt'), 'utf8'), `volume ${i}`);
    }
    assert.deepEqual(await m.deleteSnapshots(set.snapshotSetId, ObjectType.SNAPSHOT_SET), { deletedCount: 64 });
    for (const v of vols) assert.equal(existsSync(join(v, '.shadowcopy')), false);
  });

  test('one set at a time; a finished or aborted set frees the manager', async () => {
    const m = await open();
    const a = m.startSnapshotSet({ sessionId: 's' });
    assert.throws(() => m.startSnapshotSet({ sessionId: 't' }), (e) => VssError.is(e, 'VSS_E_SNAPSHOT_SET_IN_PROGRESS'));
    await a.abort();
    await assert.rejects(a.addToSnapshotSet(vols[0]!), (e) => VssError.is(e, 'VSS_E_BAD_STATE'));
    const b = m.startSnapshotSet({ sessionId: 's' });
    await assert.rejects(b.commit(), (e) => VssError.is(e, 'VSS_E_BAD_STATE'), 'commit before prepare');
  });

  test('contexts: attributes, query per context, refusal of VSS_CTX_ALL', async () => {
    const m = await open();
    assert.throws(() => m.startSnapshotSet({ sessionId: 's', context: SnapshotContext.ALL }), (e) => VssError.is(e, 'VSS_E_UNSUPPORTED_CONTEXT'));
    const made: Record<string, string> = {};
    for (const [name, context] of Object.entries({ backup: SnapshotContext.BACKUP, nas: SnapshotContext.NAS_ROLLBACK, share: SnapshotContext.FILE_SHARE_BACKUP })) {
      const set = m.startSnapshotSet({ sessionId: name, context });
      await set.addToSnapshotSet(vols[1]!);
      const [p] = await set.doSnapshotSet();
      made[name] = p!.snapshotId.toString();
    }
    const ids = (context: number): string[] => m.query({ context }).map((p) => p.snapshotId.toString());
    assert.deepEqual(ids(SnapshotContext.BACKUP), [made.backup]);
    assert.deepEqual(ids(SnapshotContext.NAS_ROLLBACK), [made.nas]);
    assert.deepEqual(ids(SnapshotContext.FILE_SHARE_BACKUP), [made.share]);
    assert.equal(ids(SnapshotContext.ALL).length, 3);
    const nas = await m.getSnapshotProperties(made.nas!);
    assert.equal(nas.snapshotAttributes, VolumeSnapshotAttributes.PERSISTENT | VolumeSnapshotAttributes.NO_AUTO_RELEASE | VolumeSnapshotAttributes.NO_WRITERS);
    assert.equal(nas.status, SnapshotState.CREATED);
    assert.ok(Math.abs(nas.creationTimestamp.getTime() - Date.now()) < 60_000);
    // Ending a session releases its auto-release snapshots, never persistent ones.
    assert.equal(await m.releaseSession('nas'), 0);
    assert.equal(await m.releaseSession('backup'), 1);
    assert.equal(await m.releaseSession('share'), 1);
    assert.deepEqual(ids(SnapshotContext.ALL), [made.nas]);
    await m.deleteSnapshots(made.nas!);
    await assert.rejects(m.deleteSnapshots(made.nas!), (e) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
  });

  test('the registry is written durably and atomically: a complete JSON file, no temporary left', async () => {
    const m = await open();
    const set = m.startSnapshotSet({ sessionId: 's', context: SnapshotContext.APP_ROLLBACK });
    await set.addToSnapshotSet(vols[2]!);
    const [p] = await set.doSnapshotSet();
    const onDisk = JSON.parse(readFileSync(m.registry.file, 'utf8')) as { snapshots: { snapshotId: string; state: number }[] };
    assert.deepEqual(onDisk.snapshots.map((s) => [s.snapshotId, s.state]), [[p!.snapshotId.toString(), SnapshotState.CREATED]]);
    const { readdirSync } = await import('node:fs');
    assert.deepEqual(readdirSync(m.registry.stateDir), [REGISTRY_FILE]);
    await m.deleteSnapshots(p!.snapshotId);
  });

  test('a corrupt registry is refused with a way out', async () => {
    const stateDir = join(dir, 'corrupt');
    mkdirSync(stateDir);
    writeFileSync(join(stateDir, REGISTRY_FILE), '{"version": 1, "snapshots": [');
    await assert.rejects(SnapshotManager.open({ stateDir }), (e) => VssError.is(e, 'VSS_E_UNEXPECTED') && /move it aside/.test(e.message));
  });

  test('restart after a crash: persistent kept, orphaned auto-release and half-made removed', async () => {
    const stateDir = join(dir, 'crash');
    const m = await SnapshotManager.open({ stateDir });
    const make = async (sessionId: string, context: number, vol: string): Promise<string> => {
      const set = m.startSnapshotSet({ sessionId, context });
      await set.addToSnapshotSet(vol);
      const [p] = await set.doSnapshotSet();
      return p!.snapshotId.toString();
    };
    const persistent = await make('dead', SnapshotContext.CLIENT_ACCESSIBLE_WRITERS, vols[10]!);
    const orphan = await make('dead', SnapshotContext.BACKUP, vols[11]!);
    const live = await make('alive', SnapshotContext.BACKUP, vols[12]!);
    // A set interrupted by the crash between prepare and commit.
    const half = m.startSnapshotSet({ sessionId: 'alive' });
    const halfId = (await half.addToSnapshotSet(vols[13]!)).toString();
    await half.prepare();
    const halfPath = join(vols[13]!, '.shadowcopy/snapshots', halfId);
    assert.ok(existsSync(halfPath), 'the half-made snapshot exists on disk');
    // The daemon dies here: `m` and `half` are dropped without cleanup. A new one starts.
    const restarted = await SnapshotManager.open({ stateDir });
    const report = await restarted.recover(new Set(['alive']));
    assert.deepEqual(report.kept.sort(), [persistent, live].sort());
    assert.deepEqual(report.released, [orphan]);
    assert.deepEqual(report.halfMade, [halfId]);
    assert.deepEqual(report.failures, []);
    assert.equal(existsSync(halfPath), false);
    assert.equal(existsSync(join(vols[13]!, '.shadowcopy')), false);
    assert.equal(existsSync(join(vols[11]!, '.shadowcopy')), false);
    assert.deepEqual(restarted.registry.list().map((r) => r.snapshotId).sort(), [persistent, live].sort());
    assert.equal(readFileSync(join((await restarted.getSnapshotProperties(persistent)).snapshotDeviceObject, 'data.txt'), 'utf8'), 'volume 10');
    // Once the live session also ends, only the persistent snapshot remains.
    const again = await SnapshotManager.open({ stateDir });
    const r2 = await again.recover(new Set());
    assert.deepEqual(r2.released, [live]);
    assert.deepEqual(again.query().map((p) => p.snapshotId.toString()), [persistent]);
    await again.deleteSnapshots(persistent);
  });

  test('the commit window: a commit that cannot finish in time fails with VSS_E_HOLD_WRITES_TIMEOUT and leaves nothing', async () => {
    const m = await SnapshotManager.open({ stateDir: join(dir, 'window'), commitWindowMs: 1 });
    const v = vols[20]!;
    for (let i = 0; i < 3000; i++) writeFileSync(join(v, `f${i}`), 'x');
    const set = m.startSnapshotSet({ sessionId: 's' });
    await set.addToSnapshotSet(v);
    await set.prepare();
    // 3000 changed files cannot be copied in 1 ms.
    for (let i = 0; i < 3000; i++) writeFileSync(join(v, `f${i}`), 'changed');
    await set.preCommit();
    await assert.rejects(set.commit(), (e) => VssError.is(e, 'VSS_E_HOLD_WRITES_TIMEOUT'));
    assert.equal(existsSync(join(v, '.shadowcopy')), false);
    assert.deepEqual(m.registry.list(), []);
  });
});
