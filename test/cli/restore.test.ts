// shadowcopy backup then restore through the command line: byte for byte with modes and
// times, in place or elsewhere; a damaged backup is refused before anything is touched.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync, symlinkSync, readlinkSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BackupDir } from '../../src/backup/backup-dir.js';
import { makeTmpfs, tmpfsUnavailable, type TmpfsVolume } from '../../src/testing/tmpfs.js';
import { runCli } from '../support/cli.js';

describe('shadowcopy restore', { skip: tmpfsUnavailable() }, () => {
  let vol: TmpfsVolume;
  let app: string;
  let state: string;
  let backup: string;
  const when = new Date('2024-02-03T04:05:06Z');
  before(() => {
    vol = makeTmpfs();
    app = join(vol.mountPoint, 'app');
    mkdirSync(join(app, 'sub', 'empty'), { recursive: true });
    writeFileSync(join(app, 'a.txt'), 'hello');
    writeFileSync(join(app, 'sub', 'b.bin'), Buffer.from([0, 1, 2, 255]));
    chmodSync(join(app, 'sub', 'b.bin'), 0o640);
    symlinkSync('a.txt', join(app, 'link'));
    utimesSync(join(app, 'a.txt'), when, when);
    state = join(vol.dir, 'state');
    backup = join(vol.dir, 'backup');
    const r = runCli(['backup', '--standalone', '--state-dir', state, '--to', backup, app]);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => vol?.cleanup());

  test('to another directory: contents, modes, times and symlinks', () => {
    const to = join(vol.dir, 'elsewhere');
    const r = runCli(['restore', '--standalone', '--from', backup, '--to', to, '--state-dir', state]);
    assert.equal(r.status, 0, r.stderr);
    const base = join(to, app);
    assert.equal(readFileSync(join(base, 'a.txt'), 'utf8'), 'hello');
    assert.deepEqual([...readFileSync(join(base, 'sub', 'b.bin'))], [0, 1, 2, 255]);
    assert.equal(statSync(join(base, 'sub', 'b.bin')).mode & 0o777, 0o640);
    assert.equal(statSync(join(base, 'a.txt')).mtime.getTime(), when.getTime());
    assert.ok(statSync(join(base, 'sub', 'empty')).isDirectory());
    assert.ok(lstatSync(join(base, 'link')).isSymbolicLink());
    assert.equal(readlinkSync(join(base, 'link')), 'a.txt');
  });

  test('in place, over changed files; --dry-run first changes nothing', () => {
    writeFileSync(join(app, 'a.txt'), 'CHANGED');
    const dry = runCli(['restore', '--standalone', '--from', backup, '--dry-run', '--state-dir', state]);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`${join(app, 'a.txt')} -> ${join(app, 'a.txt')}`));
    assert.equal(readFileSync(join(app, 'a.txt'), 'utf8'), 'CHANGED');
    const r = runCli(['restore', '--standalone', '--from', backup, '--json', '--state-dir', state]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).files.status, 'VSS_RS_ALL');
    assert.equal(readFileSync(join(app, 'a.txt'), 'utf8'), 'hello');
  });

  test('a damaged backup is refused before anything is touched', () => {
    const b = BackupDir.open(backup);
    writeFileSync(b.storedPath(b.file(join(app, 'sub', 'b.bin'))!), 'tampered');
    writeFileSync(join(app, 'a.txt'), 'CHANGED AGAIN');
    const r = runCli(['restore', '--standalone', '--from', backup, '--state-dir', state]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /VSS_E_CORRUPT_XML_DOCUMENT: the backup .* is damaged \(1 file\): .*b\.bin: its stored copy (has|does not match)/);
    assert.equal(readFileSync(join(app, 'a.txt'), 'utf8'), 'CHANGED AGAIN');
  });
});
