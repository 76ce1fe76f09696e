// examples/python-writer/writer.py, a writer written from docs/protocol.md with Python's
// standard library only, takes part in backups run against a real `shadowcopy daemon`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BackupType, ComponentType, parseBackupComponents, parseWriterMetadata } from '../../src/vss/index.js';
import { runCliAsync } from '../support/cli.js';
import { E2E, IS_ROOT, killHard, waitFor } from '../coordinator/e2e.js';

const WRITER = resolve(import.meta.dirname, '..', '..', 'examples', 'python-writer', 'writer.py');
const PY_ID = '7079c0de-0000-4000-8000-000000000001';
const noPython = spawnSync('python3', ['--version']).status === 0 ? undefined : 'python3 is not installed';

interface PyLine {
  event: string;
  sessionId: string | null;
  snapshotSetId: string | null;
  answer: string;
  components?: string[];
}

const cli = runCliAsync;

describe('the Python writer', { skip: noPython, timeout: 180_000 }, () => {
  let e: E2E;
  const procs: ChildProcess[] = [];
  let dataPath: string;

  /** Starts writer.py and waits until the daemon lists it. */
  async function startPython(extra: string[], log: string, id = PY_ID): Promise<{ proc: ChildProcess; lines: () => PyLine[] }> {
    writeFileSync(log, '');
    const proc = spawn('python3', [WRITER, '--socket-dir', e.sockDir, '--writer-id', id, '--path', dataPath, '--log', log, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
    procs.push(proc);
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`writer.py exited: ${err}`);
      const a = await e.admin();
      try {
        return (await a.listWriters()).some((w) => w.writerId === id) || undefined;
      } finally {
        a.close();
      }
    }, 'the Python writer to subscribe');
    return { proc, lines: () => readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as PyLine) };
  }

  before(async () => {
    e = await E2E.start({ volume: true });
    dataPath = e.volume ? join(e.volume, 'app') : '/srv/python-writer-test';
  });
  after(async () => {
    for (const p of procs) await killHard(p);
    await e?.close();
  });

  test('answers Identify with a genuine Writer Metadata Document and receives the backup events in order through the requester SDK', async () => {
    const py = await startPython([], join(e.dir, 'py-sdk.log'));
    // A full sequence with no provider work: a snapshot set with no volume (spec §4.1 #10).
    const bc = await e.requester();
    let setId: string;
    let bcdXml: string;
    try {
      await bc.initializeForBackup();
      await bc.setBackupState(true, false, BackupType.FULL);
      await bc.gatherWriterMetadata();
      const mine = Array.from({ length: bc.getWriterMetadataCount() }, (_, i) => bc.getWriterMetadata(i)).find((m) => m.metadata.identity.writerId.equals(PY_ID));
      assert.ok(mine, 'the Python writer answered Identify');
      assert.equal(mine.metadata.identity.writerName, 'Python Writer');
      assert.deepEqual(mine.metadata.components.map((c) => [c.componentName, c.files.map((f) => [f.path, f.filespec, f.recursive])]), [['data', [[dataPath, '*', true]]]]);
      await bc.addComponent(mine.instanceId, PY_ID, ComponentType.FILEGROUP, '', 'data');
      setId = (await bc.startSnapshotSet()).toString();
      await bc.prepareForBackup();
      await bc.doSnapshotSet();
      await bc.gatherWriterStatus();
      const st = bc.getWriterStatuses().find((s) => s.writerId.equals(PY_ID))!;
      assert.equal(st.state, 5, 'WAITING_FOR_BACKUP_COMPLETE after DoSnapshotSet');
      bcdXml = await bc.saveAsXml();
      await bc.setBackupSucceeded(mine.instanceId, PY_ID, ComponentType.FILEGROUP, '', 'data', true);
      await bc.backupComplete();
    } finally {
      await bc.release();
    }
    await waitFor(() => py.lines().some((l) => l.event === 'BackupShutdown') || undefined, 'BackupShutdown');
    const seq = py.lines().filter((l) => l.event !== 'Identify');
    assert.deepEqual(seq.map((l) => `${l.event}:${l.answer}`), ['PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot', 'BackupComplete', 'BackupShutdown'].map((x) => `${x}:ok`));
    assert.ok(seq.every((l) => l.sessionId === bc.sessionId));
    assert.ok(seq.slice(0, -1).every((l) => l.snapshotSetId === setId));
    // No volume, so no snapshot: BackupShutdown carries the null GUID.
    assert.equal(seq.at(-1)!.snapshotSetId, '00000000-0000-0000-0000-000000000000');
    assert.deepEqual(seq[0]!.components, ['data'], 'the writer read its component from the BCD part it was sent');
    const doc = parseBackupComponents(bcdXml, 'saved BCD');
    assert.deepEqual(doc.writers.map((w) => [w.writerId.toString(), w.components.map((c) => c.componentName)]), [[PY_ID, ['data']]]);
    await killHard(py.proc);
  });

  test('takes part in `shadowcopy create` on a volume, its component in the saved BCD; a veto fails the create', { skip: IS_ROOT ? undefined : 'mounting a tmpfs volume needs root' }, async () => {
    const py = await startPython([], join(e.dir, 'py-create.log'));
    const meta = await cli(['metadata', '--socket-dir', e.sockDir, '--writer', 'Python Writer', '--xml']);
    assert.equal(meta.status, 0, meta.stderr);
    assert.equal(parseWriterMetadata(meta.stdout.trim(), 'metadata --xml').identity.writerId.toString(), PY_ID);
    const bcd = join(e.dir, 'create-bcd.xml');
    const r = await cli(['create', '--socket-dir', e.sockDir, '--save-bcd', bcd, '--json', dataPath]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { snapshotSetId: string; snapshots: { snapshotPath: string }[]; writers: { writerId: string; components: string[] }[] };
    assert.deepEqual(out.writers.map((w) => [w.writerId, w.components]), [[PY_ID, ['data']]]);
    const seq = py.lines().filter((l) => l.event !== 'Identify');
    assert.deepEqual(seq.map((l) => l.event), ['PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot', 'BackupComplete', 'BackupShutdown']);
    assert.ok(seq.every((l) => l.snapshotSetId === out.snapshotSetId), 'a snapshot was made: every event, BackupShutdown too, names the set');
    const doc = parseBackupComponents(readFileSync(bcd, 'utf8'), bcd);
    assert.equal(doc.snapshotSetId?.toString(), out.snapshotSetId);
    assert.deepEqual(doc.writers.map((w) => [w.writerId.toString(), w.components.map((c) => c.componentName)]), [[PY_ID, ['data']]]);
    assert.equal(existsSync(out.snapshots[0]!.snapshotPath), false, 'auto-release: gone with the session');
    await killHard(py.proc);

    const vetoer = await startPython(['--veto', 'Freeze'], join(e.dir, 'py-veto.log'));
    const v = await cli(['create', '--socket-dir', e.sockDir, dataPath]);
    assert.equal(v.status, 1);
    assert.match(v.stderr, /VSS_E_WRITERERROR_RETRYABLE/);
    assert.deepEqual(vetoer.lines().filter((l) => l.event !== 'Identify').map((l) => `${l.event}:${l.answer}`), ['PrepareForBackup:ok', 'PrepareForSnapshot:ok', 'Freeze:veto', 'Abort:ok', 'BackupShutdown:ok']);
    assert.deepEqual(e.leftoverSnapshots(), []);
  });
});
