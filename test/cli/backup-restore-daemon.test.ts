// shadowcopy backup and restore through a real daemon with a test-writer process: the writer
// takes part in both, and restore-time choices made on the command line (a subcomponent,
// restore options) reach it in PreRestore.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWriterConfig } from '../../src/testing/test-writer.js';
import { tmpfsUnavailable } from '../../src/testing/tmpfs.js';
import { runCliAsync } from '../support/cli.js';
import { E2E, type WriterProc } from '../coordinator/e2e.js';

const cli = runCliAsync;

describe('backup and restore through the daemon', { skip: tmpfsUnavailable(), timeout: 240_000 }, () => {
  let e: E2E;
  let w: WriterProc;
  let scratch: string;
  let db: string;
  before(async () => {
    e = await E2E.start({ volume: true });
    scratch = mkdtempSync(join(tmpdir(), 'shadowcopy-br-'));
    db = join(e.volume!, 'app', 'db');
    mkdirSync(join(db, 'part1'), { recursive: true });
    writeFileSync(join(db, 'main.db'), 'main v1');
    writeFileSync(join(db, 'part1', 'p.db'), 'part v1');
    w = await e.writer({
      writerId: 'd0d0d0d0-0000-4000-8000-0000000000d4',
      name: 'Restore CLI Writer',
      restoreMethod: { method: 'RESTORE_IF_CAN_BE_REPLACED', writerRestore: 'always' },
      components: [
        { name: 'db', files: [{ path: db, filespec: '*', recursive: false }] },
        { logicalPath: 'db', name: 'part1', selectable: false, selectableForRestore: true, files: [{ path: join(db, 'part1'), filespec: '*', recursive: true }] },
      ],
    } as TestWriterConfig);
  });
  after(async () => {
    await e?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('the writer takes part; a subcomponent and restore options reach it; only the subcomponent comes back', async () => {
    const to = join(scratch, 'backup');
    const b = await cli(['backup', '--socket-dir', e.sockDir, '--to', to, '--json', join(e.volume!, 'app')]);
    assert.equal(b.status, 0, b.stderr);
    assert.deepEqual(JSON.parse(b.stdout).components.map((c: { component: string; succeeded: boolean }) => [c.component, c.succeeded]), [['db', true]]);
    writeFileSync(join(db, 'main.db'), 'main v2');
    writeFileSync(join(db, 'part1', 'p.db'), 'part v2');
    const from = w.lines().length;
    const r = await cli([
      'restore', '--socket-dir', e.sockDir, '--from', to, '--no-files', '--state-dir', join(scratch, 'state'),
      '--subcomponent', 'Restore CLI Writer:db\\part1',
      '--restore-options', 'Restore CLI Writer:db="Roll Forward"="None"',
    ]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal(readFileSync(join(db, 'part1', 'p.db'), 'utf8'), 'part v1', 'the subcomponent is restored');
    assert.equal(readFileSync(join(db, 'main.db'), 'utf8'), 'main v2', 'the rest of the component set is not');
    const events = w.lines().slice(from);
    assert.deepEqual(events.filter((l) => l.event === 'PreRestore' || l.event === 'PostRestore').map((l) => l.event), ['PreRestore', 'PostRestore']);
    const pre = events.find((l) => l.event === 'PreRestore')!.restore!.find((c) => c.component === 'db')!;
    assert.equal(pre.selected, true);
    assert.deepEqual(pre.subcomponents, ['db\\part1']);
    assert.equal(pre.options, '"Roll Forward"="None"');
    const post = events.find((l) => l.event === 'PostRestore')!.restore!.find((c) => c.component === 'db')!;
    assert.equal(post.fileRestoreStatus, 'VSS_RS_ALL');
  });
});
