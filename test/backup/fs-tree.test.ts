import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsFileTree } from '../../src/backup/fs-tree.js';
import { ComponentType, SourceType, UsageType } from '../../src/vss/enums.js';
import { VssError } from '../../src/vss/errors.js';
import { WriterMetadataBuilder } from '../../src/vss/writer-metadata.js';
import { BackupSelection, computeBackupSet } from '../../src/vss/selection/index.js';

test('FsFileTree reads a real snapshot directory: kinds, sizes, modes, mapping of volumes', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'shadowcopy-fstree-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const snap = join(root, 'snap');
  const nested = join(root, 'snap-srv');
  mkdirSync(join(snap, 'etc', 'app', 'empty'), { recursive: true });
  writeFileSync(join(snap, 'etc', 'app', 'a.conf'), 'hello', { mode: 0o600 });
  writeFileSync(join(snap, 'etc', 'app', 'b.tmp'), 'x');
  symlinkSync('/etc/passwd', join(snap, 'etc', 'app', 'link'));
  mkdirSync(join(nested, 'data'), { recursive: true });
  writeFileSync(join(nested, 'data', 'db'), '12345678');

  const tree = new FsFileTree([{ volume: '/', snapshotRoot: snap }, { volume: '/srv', snapshotRoot: nested }]);
  const list = [...tree.list('/etc/app')!].sort((a, b) => a.name.localeCompare(b.name));
  assert.deepEqual(list.map((e) => `${e.name}:${e.kind}`), ['a.conf:file', 'b.tmp:file', 'empty:dir', 'link:symlink']);
  assert.equal(list[0]!.size, 5);
  assert.equal(list[0]!.mode, 0o600);
  assert.equal(tree.list('/etc/nothing'), undefined);
  assert.equal(tree.list('/etc/app/a.conf'), undefined); // a file is not a directory
  assert.deepEqual(tree.list('/srv/data')!.map((e) => e.name), ['db']); // the nested volume wins

  // The same tree behind the pure backup-set code.
  const b = new WriterMetadataBuilder({ writerId: '33333333-0000-0000-0000-000000000001', writerName: 'W', usage: UsageType.USERDATA, source: SourceType.OTHER });
  b.addComponent({ type: ComponentType.FILEGROUP, componentName: 'app', selectable: false });
  b.addFilesToFileGroup('', 'app', '/etc/app', '*', true);
  b.addFilesToFileGroup('', 'app', '/srv/data', 'db', false);
  b.addExcludeFiles('/etc/app', '*.tmp', false);
  const s = new BackupSelection([b.build()]);
  s.addComponent({ writerId: '33333333-0000-0000-0000-000000000001', componentName: 'app' });
  const set = computeBackupSet(s.result(), tree);
  assert.deepEqual(set.failures, []);
  assert.deepEqual(set.entries.map((e) => `${e.kind}:${e.path}:${e.size}`), ['file:/etc/app/a.conf:5', 'symlink:/etc/app/link:11', 'dir:/etc/app/empty:0', 'file:/srv/data/db:8']);

  // A path on a volume outside the snapshot set is an error for the component.
  const only = new FsFileTree([{ volume: '/srv', snapshotRoot: nested }]);
  assert.throws(() => only.list('/etc'), (e: unknown) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND') && /"\/etc"/.test(e.message));
  const partial = computeBackupSet(s.result(), only);
  assert.equal(partial.failures.length, 1);
  assert.ok(partial.entries.some((e) => e.path === '/srv/data/db'));
});
