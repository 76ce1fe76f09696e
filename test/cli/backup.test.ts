// shadowcopy backup and trace through the command line, standalone (in-process coordinator).
import assert from 'node:assert/strict';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BackupDir } from '../../src/backup/backup-dir.js';
import { makeTmpfs, tmpfsUnavailable, type TmpfsVolume } from '../../src/testing/tmpfs.js';
import { runCli } from '../support/cli.js';

describe('shadowcopy backup (standalone)', { skip: tmpfsUnavailable() }, () => {
  let vol: TmpfsVolume;
  let app: string;
  let state: string;
  before(() => {
    vol = makeTmpfs();
    app = join(vol.mountPoint, 'app');
    mkdirSync(join(app, 'sub'), { recursive: true });
    writeFileSync(join(app, 'a.txt'), 'hello');
    writeFileSync(join(app, 'sub', 'b.txt'), 'world');
    state = join(vol.dir, 'state');
  });
  after(() => vol?.cleanup());

  test('a full backup, its JSON result and its trace', () => {
    const to = join(vol.dir, 'full');
    const r = runCli(['backup', '--standalone', '--state-dir', state, '--to', to, '--json', app]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.backupType, 'full');
    assert.equal(out.totals.bytes, 10);
    const b = BackupDir.open(to);
    assert.deepEqual(b.verify(), []);
    assert.equal(b.file(join(app, 'sub/b.txt'))?.consistency, 'crash', 'no writer: crash-consistent, and marked so');
    const t = runCli(['trace', to]);
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, new RegExp(`snapshot set ${out.snapshotSetId}`));
    assert.match(t.stdout, /provider CommitSnapshots/);
    const tj = JSON.parse(runCli(['trace', '--json', to]).stdout);
    assert.equal(tj.snapshotSetId, out.snapshotSetId);
  });

  test('an incremental backup stores only what changed', () => {
    const full = join(vol.dir, 'base');
    assert.equal(runCli(['backup', '--standalone', '--state-dir', state, '--to', full, app]).status, 0);
    writeFileSync(join(app, 'a.txt'), 'hello again');
    utimesSync(join(app, 'a.txt'), new Date(), new Date(Date.now() + 2000));
    const incr = join(vol.dir, 'incr');
    const r = runCli(['backup', '--standalone', '--state-dir', state, '--to', incr, '--type', 'incremental', '--previous', full, '--json', app]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.totals.bytesStored, 'hello again'.length);
    assert.equal(out.chain.length, 2);
  });

  test('bad requests fail with the VSS error and a non-zero exit', () => {
    const notEmpty = join(vol.dir, 'full');
    const r = runCli(['backup', '--standalone', '--state-dir', state, '--to', notEmpty, app]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /VSS_E_OBJECT_ALREADY_EXISTS: the backup destination .* is not empty/);
    const t = runCli(['backup', '--standalone', '--state-dir', state, '--to', join(vol.dir, 'x'), '--type', 'weekly', app]);
    assert.match(t.stderr, /E_INVALIDARG: --type weekly/);
    const n = runCli(['backup', '--standalone', '--state-dir', state, '--to', join(vol.dir, 'y')]);
    assert.match(n.stderr, /name what to back up/);
    const missing = runCli(['backup', '--standalone', '--state-dir', state, '--to', join(vol.dir, 'z'), join(vol.dir, 'does-not-exist')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /VSS_E_OBJECT_NOT_FOUND/);
  });
});
