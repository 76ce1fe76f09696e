// The admin commands (writers, metadata, create, list, delete, expose, unexpose) as a user
// runs them: the CLI process against a real `shadowcopy daemon` on a private socket and state
// directory, test writers as `shadowcopy test-writer` processes, snapshots of a tmpfs volume.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBackupComponents, parseWriterMetadata } from '../../src/vss/index.js';
import type { TestWriterConfig } from '../../src/testing/test-writer.js';
import { tmpfsUnavailable } from '../../src/testing/tmpfs.js';
import { runCliAsync } from '../support/cli.js';
import { E2E, type WriterProc } from '../coordinator/e2e.js';

const skip = tmpfsUnavailable();

const cli = runCliAsync;

const IDS = {
  app: 'a0a0a0a0-0000-4000-8000-0000000000a1',
  elsewhere: 'b0b0b0b0-0000-4000-8000-0000000000b2',
  veto: 'c0c0c0c0-0000-4000-8000-0000000000c3',
};

function appWriter(volume: string): TestWriterConfig {
  return {
    writerId: IDS.app,
    name: 'App Writer',
    components: [
      { name: 'data', files: [{ path: `${volume}/app`, filespec: '*', recursive: true }] },
      { name: 'config', selectable: false, files: [{ path: '/etc/shadowcopy-test-nowhere', filespec: 'app.conf' }] },
    ],
  } as TestWriterConfig;
}

/** A writer whose files are on no volume the tests snapshot. */
const elsewhereWriter: TestWriterConfig = { writerId: IDS.elsewhere, name: 'Elsewhere Writer', components: [{ name: 'logs', files: [{ path: '/var/shadowcopy-test-nowhere', filespec: '*' }] }] } as TestWriterConfig;

const SEQUENCE = ['PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot', 'BackupComplete', 'BackupShutdown'];

/** Events of one session after `from` log lines, Identify left out. */
function sessionEvents(w: WriterProc, from: number): string[] {
  return w
    .lines()
    .slice(from)
    .filter((l) => l.event !== 'Identify')
    .map((l) => (l.answer === 'ok' ? l.event : `${l.event}:${l.answer}`));
}

interface SnapshotJson {
  snapshotId: string;
  snapshotSetId: string;
  originalVolume: string;
  snapshotPath: string;
  exposedName: string;
  context: string;
  persistent: boolean;
}

describe('admin commands against a daemon', { skip, timeout: 300_000 }, () => {
  let e: E2E;
  let app: WriterProc;
  let elsewhere: WriterProc;
  let S: string[];
  let scratch: string;
  before(async () => {
    e = await E2E.start({ volume: true });
    S = ['--socket-dir', e.sockDir];
    scratch = mkdtempSync(join(tmpdir(), 'shadowcopy-admin-'));
    app = await e.writer(appWriter(e.volume!));
    elsewhere = await e.writer(elsewhereWriter);
  });
  after(async () => {
    await e?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('writers lists each writer with ids, state [1] Stable and no error; --json names the fields', async () => {
    const r = await cli(['writers', ...S]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Writer name: 'App Writer'\n {3}Writer Id: \{a0a0a0a0-0000-4000-8000-0000000000a1\}\n {3}Writer Instance Id: \{[0-9a-f-]{36}\}\n {3}State: \[1\] Stable\n {3}Last error: No error/);
    assert.match(r.stdout, /Writer name: 'Elsewhere Writer'/);
    const j = await cli(['writers', ...S, '--json']);
    assert.equal(j.status, 0, j.stderr);
    const ws = JSON.parse(j.stdout) as { writerId: string; instanceId: string; writerName: string; state: number; stateName: string; stateLabel: string; lastError: number; lastErrorName: string | null }[];
    const a = ws.find((w) => w.writerId === IDS.app)!;
    assert.equal(a.writerName, 'App Writer');
    assert.equal(a.state, 1);
    assert.equal(a.stateName, 'VSS_WS_STABLE');
    assert.equal(a.stateLabel, 'Stable');
    assert.equal(a.lastError, 0);
    assert.equal(a.lastErrorName, null);
    assert.equal(ws.length, 2);
  });

  test('metadata shows the summary, --writer filters by name or id, --xml is the genuine document', async () => {
    const r = await cli(['metadata', ...S]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Writer name: {5}App Writer/);
    assert.match(r.stdout, /Writer name: {5}Elsewhere Writer/);
    const one = await cli(['metadata', ...S, '--writer', 'app writer']);
    assert.equal(one.status, 0, one.stderr);
    assert.match(one.stdout, /App Writer/);
    assert.doesNotMatch(one.stdout, /Elsewhere Writer/);
    const x = await cli(['metadata', ...S, '--writer', IDS.elsewhere, '--xml']);
    assert.equal(x.status, 0, x.stderr);
    const docs = x.stdout.trim().split('\n');
    assert.equal(docs.length, 1);
    const wmd = parseWriterMetadata(docs[0]!, 'metadata --xml');
    assert.equal(wmd.identity.writerId.toString(), IDS.elsewhere);
    assert.deepEqual(wmd.components.map((c) => c.componentName), ['logs']);
    const none = await cli(['metadata', ...S, '--writer', 'No Such Writer']);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /VSS_E_OBJECT_NOT_FOUND: no writer "No Such Writer"/);
  });

  test('create (auto-release): the full sequence, the writers with files on the volume take part, the BCD saved, the snapshot gone afterwards', async () => {
    const appFrom = app.lines().length;
    const elsewhereFrom = elsewhere.lines().length;
    const bcd = join(scratch, 'auto.xml');
    const r = await cli(['create', ...S, '--save-bcd', bcd, '--json', join(e.volume!, 'app')]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { snapshotSetId: string; context: string; persistent: boolean; deletedOnExit: boolean; snapshots: SnapshotJson[]; writers: { writerId: string; instanceId: string; writerName: string; instanceName: string; components: string[] }[] };
    assert.equal(out.context, 'VSS_CTX_BACKUP');
    assert.equal(out.deletedOnExit, true);
    assert.equal(out.snapshots.length, 1);
    const s = out.snapshots[0]!;
    assert.equal(s.snapshotSetId, out.snapshotSetId);
    assert.equal(s.originalVolume, e.volume);
    assert.ok(s.snapshotPath.length > 0 && s.snapshotId.length === 36);
    // The selectable component on the volume, and the writer's required component with it.
    assert.deepEqual(out.writers, [{ writerId: IDS.app, instanceId: out.writers[0]!.instanceId, writerName: 'App Writer', instanceName: '', components: ['data', 'config'] }]);
    assert.deepEqual(sessionEvents(app, appFrom), SEQUENCE);
    assert.deepEqual(sessionEvents(elsewhere, elsewhereFrom), [], 'a writer with no component on the volume gets nothing after Identify');
    const doc = parseBackupComponents(readFileSync(bcd, 'utf8'), bcd);
    assert.equal(doc.snapshotSetId?.toString(), out.snapshotSetId);
    assert.deepEqual(doc.writers.map((w) => [w.writerId.toString(), w.components.map((c) => c.componentName)]), [[IDS.app, ['data', 'config']]]);
    // Auto-release: deleted when the command's session ended.
    assert.equal(existsSync(s.snapshotPath), false);
    const l = await cli(['list', ...S, '--json']);
    assert.deepEqual(JSON.parse(l.stdout), []);
    const text = await cli(['create', ...S, e.volume!]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^Snapshot set \{[0-9a-f-]{36}\} created \(VSS_CTX_BACKUP, auto-release\)\n {2}Snapshot \{[0-9a-f-]{36}\}\n {4}Original volume: .*\n {4}Snapshot path: {3}\S+/);
    assert.match(text.stdout, /auto-release: they were deleted when this command ended/);
  });

  test('create --writer-exclude leaves a writer out; --writer-include brings one in with all its components', async () => {
    const appFrom = app.lines().length;
    const elsewhereFrom = elsewhere.lines().length;
    const r = await cli(['create', ...S, '--json', '--writer-exclude', 'App Writer', '--writer-include', IDS.elsewhere, e.volume!]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { writers: { writerId: string; components: string[] }[] };
    assert.deepEqual(out.writers.map((w) => [w.writerId, w.components]), [[IDS.elsewhere, ['logs']]]);
    assert.deepEqual(sessionEvents(app, appFrom), []);
    assert.deepEqual(sessionEvents(elsewhere, elsewhereFrom), SEQUENCE);
    const missing = await cli(['create', ...S, '--writer-include', 'Ghost Writer', e.volume!]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /VSS_E_OBJECT_NOT_FOUND: --writer-include Ghost Writer/);
  });

  test('create --nowriters: a writerless context, no event to any writer', async () => {
    const appFrom = app.lines().length;
    const r = await cli(['create', ...S, '--nowriters', '--json', e.volume!]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { context: string; writers: unknown[] };
    assert.equal(out.context, 'VSS_CTX_FILE_SHARE_BACKUP');
    assert.deepEqual(out.writers, []);
    assert.deepEqual(app.lines().slice(appFrom), []);
  });

  test('create --persistent survives the command: list, expose read-only, unexpose, delete by id, by set, --all', async () => {
    writeFileSync(join(e.volume!, 'app', 'data.db'), 'version 1');
    const r = await cli(['create', ...S, '--persistent', '--json', e.volume!]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { snapshotSetId: string; context: string; snapshots: SnapshotJson[] };
    assert.equal(out.context, 'VSS_CTX_APP_ROLLBACK');
    const s = out.snapshots[0]!;
    writeFileSync(join(e.volume!, 'app', 'data.db'), 'version 2');
    assert.equal(readFileSync(join(s.snapshotPath, 'app', 'data.db'), 'utf8'), 'version 1');

    const nw = await cli(['create', ...S, '--persistent', '--nowriters', '--json', e.volume!]);
    assert.equal(nw.status, 0, nw.stderr);
    const second = JSON.parse(nw.stdout) as { snapshotSetId: string; context: string; snapshots: SnapshotJson[] };
    assert.equal(second.context, 'VSS_CTX_NAS_ROLLBACK');

    const list = JSON.parse((await cli(['list', ...S, '--json'])).stdout) as SnapshotJson[];
    assert.deepEqual(list.map((x) => x.snapshotId).sort(), [s.snapshotId, second.snapshots[0]!.snapshotId].sort());
    const one = JSON.parse((await cli(['list', ...S, '--json', '--set', `{${out.snapshotSetId}}`])).stdout) as SnapshotJson[];
    assert.deepEqual(one.map((x) => [x.snapshotId, x.originalVolume, x.snapshotPath, x.persistent]), [[s.snapshotId, e.volume, s.snapshotPath, true]]);
    const text = await cli(['list', ...S]);
    assert.match(text.stdout, new RegExp(`Contents of shadow copy set ID: \\{${out.snapshotSetId}\\}[\\s\\S]*Shadow Copy ID: \\{${s.snapshotId}\\}\\n {6}Original Volume: ${e.volume}`));

    const dir = join(scratch, 'exposed');
    mkdirSync(dir);
    const ex = await cli(['expose', ...S, s.snapshotId, dir]);
    assert.equal(ex.status, 0, ex.stderr);
    assert.equal(readFileSync(join(dir, 'app', 'data.db'), 'utf8'), 'version 1');
    assert.throws(() => writeFileSync(join(dir, 'app', 'data.db'), 'x'), /EROFS/);
    const listed = JSON.parse((await cli(['list', ...S, '--json', '--set', out.snapshotSetId])).stdout) as SnapshotJson[];
    assert.equal(listed[0]!.exposedName, dir);
    const refused = await cli(['delete', ...S, s.snapshotId]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /VSS_E_BAD_STATE: snapshot .* is exposed at .*--force/);
    assert.equal(existsSync(s.snapshotPath), true, 'nothing deleted when refused');
    const un = await cli(['unexpose', ...S, s.snapshotId]);
    assert.equal(un.status, 0, un.stderr);
    assert.equal(existsSync(join(dir, 'app')), false);
    const again = await cli(['unexpose', ...S, s.snapshotId]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /VSS_E_BAD_STATE: snapshot .* is not exposed/);

    const del = await cli(['delete', ...S, s.snapshotId]);
    assert.equal(del.status, 0, del.stderr);
    assert.match(del.stdout, /Deleted 1 snapshot\./);
    assert.equal(existsSync(s.snapshotPath), false);
    const delSet = await cli(['delete', ...S, '--set', second.snapshotSetId]);
    assert.equal(delSet.status, 0, delSet.stderr);
    assert.deepEqual(JSON.parse((await cli(['list', ...S, '--json'])).stdout), []);

    // --all, with an exposed one: refused without --force, unmounted and deleted with it.
    const p1 = JSON.parse((await cli(['create', ...S, '--persistent', '--json', e.volume!])).stdout) as { snapshots: SnapshotJson[] };
    const p2 = JSON.parse((await cli(['create', ...S, '--persistent', '--nowriters', '--json', e.volume!])).stdout) as { snapshots: SnapshotJson[] };
    assert.equal((await cli(['expose', ...S, p1.snapshots[0]!.snapshotId, dir])).status, 0);
    assert.equal((await cli(['delete', ...S, '--all'])).status, 1);
    assert.equal(JSON.parse((await cli(['list', ...S, '--json'])).stdout).length, 2);
    const all = await cli(['delete', ...S, '--all', '--force']);
    assert.equal(all.status, 0, all.stderr);
    assert.match(all.stdout, /Deleted 2 snapshots\./);
    assert.equal(existsSync(join(dir, 'app')), false, 'the exposed mount is gone');
    assert.equal(existsSync(p2.snapshots[0]!.snapshotPath), false);
    assert.deepEqual(e.leftoverSnapshots(), []);
  });

  test('bad input: ids that are not GUIDs, unknown ids, delete without a target, a missing path', async () => {
    const bad = await cli(['delete', ...S, 'not-a-guid']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /E_INVALIDARG: the snapshot id "not-a-guid" is not a GUID/);
    const unknown = await cli(['expose', ...S, '00000000-0000-4000-8000-000000000000', scratch]);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /VSS_E_OBJECT_NOT_FOUND/);
    const usage = await cli(['delete', ...S]);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /name exactly one of a snapshot ID, --set ID or --all/);
    const path = await cli(['create', ...S, join(scratch, 'no-such-dir')]);
    assert.equal(path.status, 1);
    assert.match(path.stderr, /VSS_E_OBJECT_NOT_FOUND: the volume path .* does not exist/);
  });
});

describe('create with a writer that vetoes', { skip, timeout: 120_000 }, () => {
  let e: E2E;
  before(async () => {
    e = await E2E.start({ volume: true });
  });
  after(async () => {
    await e?.close();
  });

  test('fails with the writer\'s error and exit code 1, leaves no snapshot, and `writers` shows the failed state', async () => {
    const w = await e.writer({
      writerId: IDS.veto,
      name: 'Veto Writer',
      components: [{ name: 'data', files: [{ path: `${e.volume}/app`, filespec: '*', recursive: true }] }],
      faults: [{ event: 'PrepareForSnapshot', action: 'veto', error: 'VSS_E_WRITERERROR_RETRYABLE', message: 'disk busy' }],
    } as TestWriterConfig);
    const r = await cli(['create', '--socket-dir', e.sockDir, '--persistent', e.volume!]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^shadowcopy: VSS_E_WRITERERROR_RETRYABLE: .*writer "Veto Writer": \[8\] Failed at PrepareForSnapshot, VSS_E_WRITERERROR_RETRYABLE \(disk busy\)/);
    assert.deepEqual(sessionEvents(w, 0), ['PrepareForBackup', 'PrepareForSnapshot:veto', 'BackupShutdown']);
    assert.deepEqual(JSON.parse((await cli(['list', '--socket-dir', e.sockDir, '--json'])).stdout), []);
    assert.deepEqual(e.leftoverSnapshots(), []);
    const ws = await cli(['writers', '--socket-dir', e.sockDir]);
    assert.match(ws.stdout, /State: \[8\] Failed at PrepareForSnapshot\n {3}Last error: VSS_E_WRITERERROR_RETRYABLE\n {3}Application message: disk busy/);
  });
});

describe('admin commands without a daemon', () => {
  test('an unreachable daemon is an error that says how to start one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shadowcopy-nodaemon-'));
    try {
      for (const cmd of [['writers'], ['list'], ['metadata'], ['create', dir]]) {
        const r = await cli([...cmd, '--socket-dir', dir]);
        assert.equal(r.status, 1, cmd.join(' '));
        assert.match(r.stderr, /VSS_E_WRITER_INFRASTRUCTURE: cannot reach the shadowcopy daemon .*shadowcopy daemon --socket-dir .*--standalone/, cmd.join(' '));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('--standalone: no external writers, and writers/list say so', async () => {
    const state = mkdtempSync(join(tmpdir(), 'shadowcopy-standalone-'));
    try {
      const w = await cli(['writers', '--standalone', '--state-dir', state]);
      assert.equal(w.status, 0, w.stderr);
      assert.match(w.stdout, /No writers are subscribed \(--standalone has no external writers\)/);
      const l = await cli(['list', '--standalone', '--state-dir', state, '--json']);
      assert.equal(l.status, 0, l.stderr);
      assert.deepEqual(JSON.parse(l.stdout), []);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});
