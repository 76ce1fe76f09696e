// Backup and restore round-trip files byte for byte, with modes, owners and times, on real
// btrfs, XFS and ext4 filesystems (each provider: btrfs snapshot, reflink, copy), through
// the reference requester with an in-process coordinator and a writer's component.
import assert from 'node:assert/strict';
import { chmodSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runBackup } from '../../src/backup/run-backup.js';
import { runRestore } from '../../src/backup/run-restore.js';
import { loopFsUnavailable, makeLoopFs, type LoopFsType } from '../../src/testing/loopfs.js';
import { fixture, IDS } from '../coordinator/helpers.js';

/** Every entry under `root`: kind, content or link target, mode, owner, and mtime of non-directories. */
function describeTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of (readdirSync(root, { recursive: true, encoding: 'utf8' }) as string[]).sort()) {
    const p = join(root, rel);
    const st = lstatSync(p);
    const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? `link->${readlinkSync(p)}` : `file:${readFileSync(p).toString('base64')}`;
    out[rel] = `${kind} mode=${(st.mode & 0o7777).toString(8)} owner=${st.uid}:${st.gid}${st.isDirectory() ? '' : ` mtime=${Math.round(st.mtimeMs)}`}`;
  }
  return out;
}

function populate(dir: string): void {
  mkdirSync(join(dir, 'db', 'nested', 'empty'), { recursive: true });
  writeFileSync(join(dir, 'db', 'main.db'), Buffer.from(Array.from({ length: 70000 }, (_, i) => i % 251)));
  writeFileSync(join(dir, 'db', 'nested', 'secret.key'), 'not for everyone');
  chmodSync(join(dir, 'db', 'nested', 'secret.key'), 0o600);
  lchownSync(join(dir, 'db', 'nested', 'secret.key'), 1234, 2345);
  writeFileSync(join(dir, 'db', 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(dir, 'db', 'run.sh'), 0o4755);
  symlinkSync('main.db', join(dir, 'db', 'current'));
  writeFileSync(join(dir, 'notes.txt'), 'outside any component');
  const when = new Date('2023-05-06T07:08:09Z');
  for (const f of ['db/main.db', 'db/nested/secret.key', 'db/run.sh', 'notes.txt']) utimesSync(join(dir, f), when, when);
  chmodSync(join(dir, 'db', 'nested'), 0o750);
}

for (const fsType of ['btrfs', 'xfs', 'ext4'] as LoopFsType[]) {
  describe(`backup and restore on ${fsType}`, { skip: loopFsUnavailable(fsType) ?? (process.getuid?.() === 0 ? false : 'needs root to mount loop filesystems') }, () => {
    test('byte for byte, with modes, owners and times', async () => {
      const fs = makeLoopFs(fsType, { sizeMb: fsType === 'xfs' ? 300 : 200 });
      const f = await fixture();
      try {
        const app = join(fs.mountPoint, 'app');
        populate(app);
        await f.writer({ writerId: IDS.a, name: 'RT Writer', components: [{ name: 'db', files: [{ path: join(app, 'db'), filespec: '*', recursive: true }] }] } as never);
        const backup = join(fs.dir, 'backup');
        const r = await f.requester();
        const report = await runBackup(r, { to: backup, paths: [app] });
        await r.release();
        assert.deepEqual(report.components.map((c) => c.succeeded), [true]);
        const before = describeTree(app);
        const to = join(fs.dir, 'restored');
        mkdirSync(to);
        const rr = await runRestore({ from: backup, to, stateDir: join(fs.dir, 'state') });
        assert.ok(rr.steps[0]!.results.every((x) => x.error === undefined), rr.steps[0]!.results.map((x) => x.error?.message).join());
        assert.deepEqual(describeTree(join(to, app)), before);
      } finally {
        await f.close();
        fs.cleanup();
      }
    });
  });
}
