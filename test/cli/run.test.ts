// shadowcopy run: a command runs on the exposed, read-only snapshot; its status decides
// the backup's success and is the exit status. restic (Debian's package) backs up through it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTmpfs, tmpfsUnavailable, type TmpfsVolume } from '../../src/testing/tmpfs.js';
import { runCli } from '../support/cli.js';

const noRestic = spawnSync('restic', ['version']).status === 0 ? undefined : 'restic is not installed (apt-get install restic)';

describe('shadowcopy run', { skip: tmpfsUnavailable() }, () => {
  let vol: TmpfsVolume;
  let state: string;
  before(() => {
    vol = makeTmpfs();
    mkdirSync(join(vol.mountPoint, 'app'));
    writeFileSync(join(vol.mountPoint, 'app', 'a.txt'), 'snapshot me');
    state = join(vol.dir, 'state');
  });
  after(() => vol?.cleanup());

  const run = (...cmd: string[]) => runCli(['run', '--standalone', '--state-dir', state, '--volume', vol.mountPoint, '--', ...cmd]);

  test('the command sees the snapshot through the environment, read-only', () => {
    const r = run('sh', '-c', 'test -n "$SHADOWCOPY_SNAPSHOT_SET_ID" && echo "$SHADOWCOPY_ROOTS" && cat "$SHADOWCOPY_ROOT_0/app/a.txt" && ! touch "$SHADOWCOPY_ROOT/app/new" 2>/dev/null');
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const [roots, content] = r.stdout.trim().split('\n');
    assert.ok(JSON.parse(roots!)[vol.mountPoint], 'the JSON map names the volume');
    assert.equal(content, 'snapshot me');
    const store = join(vol.mountPoint, '.shadowcopy', 'snapshots');
    assert.ok(!existsSync(store) || readdirSync(store).length === 0, 'auto-release snapshot deleted afterwards');
    const mounts = readFileSync('/proc/self/mounts', 'utf8');
    assert.ok(!mounts.includes('shadowcopy-run-'), 'nothing left exposed');
  });

  test('the command\'s exit status is ours', () => {
    assert.equal(run('sh', '-c', 'exit 3').status, 3);
    const missing = run('/no/such/command');
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /VSS_E_OBJECT_NOT_FOUND: cannot run \/no\/such\/command/);
  });

  test('restic backs up the snapshot, and restores from it', { skip: noRestic }, () => {
    const env = { RESTIC_REPOSITORY: join(vol.dir, 'repo'), RESTIC_PASSWORD: 'shadowcopy-test' };
    assert.equal(spawnSync('restic', ['init'], { env: { ...process.env, ...env } }).status, 0);
    const r = runCli(['run', '--standalone', '--state-dir', state, '--volume', vol.mountPoint, '--', 'sh', '-c', 'restic backup --quiet --host test "$SHADOWCOPY_ROOT/app"'], { env });
    assert.equal(r.status, 0, r.stderr);
    writeFileSync(join(vol.mountPoint, 'app', 'a.txt'), 'changed after the backup');
    const target = join(vol.dir, 'restored');
    const rr = spawnSync('restic', ['restore', 'latest', '--target', target], { env: { ...process.env, ...env }, encoding: 'utf8' });
    assert.equal(rr.status, 0, rr.stderr);
    const found = spawnSync('find', [target, '-name', 'a.txt'], { encoding: 'utf8' }).stdout.trim();
    assert.equal(readFileSync(found, 'utf8'), 'snapshot me');
  });
});
