// The reflink provider on a real XFS filesystem (reflink=1, the mkfs.xfs default) in a loop image.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SnapshotManager } from '../../src/providers/index.js';
import { loopFsUnavailable, makeLoopFs, type LoopFs } from '../../src/testing/loopfs.js';
import { snapshotLifecycle } from './scenario.js';

const skip = loopFsUnavailable('xfs');

/** Blocks used on the filesystem (df), to see that a clone shares extents instead of copying. */
function usedKb(mnt: string): number {
  const out = spawnSync('df', ['--output=used', '-k', mnt], { encoding: 'utf8' }).stdout.trim().split('\n');
  return Number(out[out.length - 1]);
}

describe('reflink provider on XFS', { skip }, () => {
  let fs: LoopFs;
  before(() => {
    fs = makeLoopFs('xfs');
  });
  after(() => fs?.cleanup());

  const fresh = (name: string): { volume: string; stateDir: string } => {
    for (const n of readdirSync(fs.mountPoint)) rmSync(join(fs.mountPoint, n), { recursive: true, force: true });
    return { volume: fs.mountPoint, stateDir: join(fs.dir, `state-${name}`) };
  };

  test('chosen automatically; the clone equals the volume at commit time, stays so, and deletes without trace', async () => {
    const { volume, stateDir } = fresh('life');
    await snapshotLifecycle({ stateDir, volume, provider: 'reflink' });
    assert.equal(existsSync(join(volume, '.shadowcopy')), false);
  });

  test('the clone shares extents: a 100 MB volume costs far less than 100 MB to snapshot', async () => {
    const { volume, stateDir } = fresh('extents');
    mkdirSync(join(volume, 'big'));
    for (let i = 0; i < 4; i++) writeFileSync(join(volume, 'big', `${i}.bin`), Buffer.alloc(25 * 1024 * 1024, i + 1));
    spawnSync('sync');
    const before = usedKb(volume);
    const m = await SnapshotManager.open({ stateDir });
    const set = m.startSnapshotSet({ sessionId: 's' });
    await set.addToSnapshotSet(volume);
    await set.doSnapshotSet();
    spawnSync('sync');
    assert.ok(usedKb(volume) - before < 10 * 1024, `used grew by ${usedKb(volume) - before} kB`);
    await m.releaseSession('s');
  });

  test('the copy provider can be forced on XFS', async () => {
    const { volume, stateDir } = fresh('copy');
    await snapshotLifecycle({ stateDir, volume, provider: 'copy', force: true });
  });

  test('abort after prepare leaves nothing', async () => {
    const { volume, stateDir } = fresh('abort');
    writeFileSync(join(volume, 'f'), 'f');
    const m = await SnapshotManager.open({ stateDir });
    const set = m.startSnapshotSet({ sessionId: 's' });
    await set.addToSnapshotSet(volume);
    await set.prepare();
    await set.abort();
    assert.deepEqual(readdirSync(volume), ['f']);
    assert.deepEqual(m.registry.list(), []);
  });
});
