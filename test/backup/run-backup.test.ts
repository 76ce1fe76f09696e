// The reference requester's backup, end to end in-process: a real coordinator, a test
// writer, the copy provider on a real tmpfs volume, a real backup directory.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BackupDir } from '../../src/backup/backup-dir.js';
import { type BackupProgress, runBackup } from '../../src/backup/run-backup.js';
import { runRestore } from '../../src/backup/run-restore.js';
import { makeTmpfs, tmpfsUnavailable, type TmpfsVolume } from '../../src/testing/tmpfs.js';
import { BackupType, FileRestoreStatus } from '../../src/vss/index.js';
import { rejectsVss } from '../support/assert.js';
import { events, fixture, IDS, type Fixture } from '../coordinator/helpers.js';

const skip = tmpfsUnavailable();

describe('runBackup', { skip }, () => {
  let vol: TmpfsVolume;
  let f: Fixture;
  before(async () => {
    vol = makeTmpfs();
    const app = join(vol.mountPoint, 'app');
    mkdirSync(join(app, 'db'), { recursive: true });
    writeFileSync(join(app, 'db', 'main.db'), 'main database');
    writeFileSync(join(app, 'db', 'main.db-wal'), 'wal');
    writeFileSync(join(app, 'db', 'scratch.tmp'), 'excluded');
    writeFileSync(join(app, 'notes.txt'), 'not any writer\'s');
    f = await fixture();
    await f.writer({
      writerId: IDS.a,
      name: 'App Writer',
      components: [{ name: 'db', files: [{ path: join(app, 'db'), filespec: '*', recursive: true }] }],
      excludes: [{ path: join(app, 'db'), filespec: '*.tmp', recursive: true }],
    } as never);
  });
  after(async () => {
    await f?.close();
    vol?.cleanup();
  });

  test('backs up the writer\'s component application-consistently and the rest crash-consistently', async () => {
    const to = join(vol.dir, 'backup-1');
    const r = await f.requester();
    const report = await runBackup(r, { to, paths: [join(vol.mountPoint, 'app')] });
    await r.release();
    assert.deepEqual(report.components.map((c) => [c.component, c.succeeded]), [['db', true]]);
    const b = BackupDir.open(to);
    assert.deepEqual(b.verify(), []);
    const main = b.file(join(vol.mountPoint, 'app/db/main.db'))!;
    assert.equal(main.consistency, 'application');
    assert.equal(readFileSync(b.storedPath(main), 'utf8'), 'main database');
    assert.equal(b.file(join(vol.mountPoint, 'app/notes.txt'))!.consistency, 'crash');
    assert.equal(b.file(join(vol.mountPoint, 'app/db/scratch.tmp'))?.consistency, 'crash', 'excluded from the component, kept as a plain file under the path');
    assert.ok(b.readDocument('backup-components.xml').includes('componentName="db"'));
    assert.ok(b.readDocument(`writers/${IDS.a}.xml`).includes('App Writer'));
  });

  test('the writer saw the whole backup sequence', async () => {
    const to = join(vol.dir, 'backup-2');
    const writer = await f.writer({ writerId: IDS.b, name: 'Observer', components: [{ name: 'obs', files: [{ path: join(vol.mountPoint, 'app/db'), filespec: 'main.db', recursive: false }] }] } as never);
    const r = await f.requester();
    await runBackup(r, { to, paths: [join(vol.mountPoint, 'app/db')] });
    await r.release();
    assert.deepEqual(events(writer).filter((e) => e !== 'Identify'), ['PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot', 'BackupComplete', 'BackupShutdown']);
  });

  test('a full and an incremental backup of a component restore in order, additional restores on all but the last', async () => {
    const db = join(vol.mountPoint, 'app/db');
    const full = join(vol.dir, 'chain-full');
    const incr = join(vol.dir, 'chain-incr');
    const r1 = await f.requester();
    await runBackup(r1, { to: full, components: [{ writer: 'App Writer' }] });
    await r1.release();
    writeFileSync(join(db, 'main.db'), 'main database v2');
    utimesSync(join(db, 'main.db'), new Date(), new Date(Date.now() + 3000));
    const r2 = await f.requester();
    const report = await runBackup(r2, { to: incr, components: [{ writer: IDS.a }], backupType: BackupType.INCREMENTAL, previous: full });
    await r2.release();
    assert.equal(report.manifest.totals.bytesStored, 'main database v2'.length);
    rmSync(db, { recursive: true });
    const restored = await runRestore({ from: incr, stateDir: join(vol.dir, 'restore-state'), files: false });
    assert.deepEqual(restored.steps.map((s) => s.backupType), ['full', 'incremental']);
    assert.deepEqual(restored.steps.map((s) => s.results.map((x) => x.status)), [[FileRestoreStatus.ALL], [FileRestoreStatus.ALL]]);
    assert.equal(readFileSync(join(db, 'main.db'), 'utf8'), 'main database v2');
    assert.equal(readFileSync(join(db, 'main.db-wal'), 'utf8'), 'wal');
    // The BCD each step restored with says whether more restores follow.
    assert.deepEqual(restored.steps.map((s) => s.results[0]!.plan.additionalRestores), [true, false]);
  });

  test('a missing mandatory writer fails before anything is frozen; an incremental needs --previous', async () => {
    const r = await f.requester();
    await rejectsVss(() => runBackup(r, { to: join(vol.dir, 'x'), paths: [vol.mountPoint], writerVerify: ['44444444-4444-4444-8444-444444444444'] }), 'VSS_E_OBJECT_NOT_FOUND', /must take part/);
    await r.release();
    const r2 = await f.requester();
    await rejectsVss(() => runBackup(r2, { to: join(vol.dir, 'y'), paths: [vol.mountPoint], backupType: BackupType.INCREMENTAL }), 'E_INVALIDARG', /--previous/);
    await r2.release();
  });

  test('progress counts finished copies up to the total, for the backup and for the verification and restore', async () => {
    const tree = join(vol.mountPoint, 'progress');
    for (let d = 0; d < 3; d++) {
      mkdirSync(join(tree, `d${d}`), { recursive: true });
      for (let i = 0; i < 200; i++) writeFileSync(join(tree, `d${d}`, `f${i}`), 'x'.repeat(i));
    }
    const to = join(vol.dir, 'progress-backup');
    const seen: BackupProgress[] = [];
    const r = await f.requester();
    const report = await runBackup(r, { to, paths: [tree], onProgress: (p) => seen.push({ ...p }) });
    await r.release();
    const copy = seen.filter((p) => p.phase === 'copy');
    assert.ok(copy.length >= 2, 'reported when the copy starts and when it ends');
    for (const [a, b] of copy.slice(1).map((p, i) => [copy[i]!, p] as const)) assert.ok(b.files >= a.files && b.bytes >= a.bytes, 'never goes back');
    for (const p of copy) assert.ok(p.totalFiles !== undefined && p.files <= p.totalFiles, `${p.files} of ${p.totalFiles}`);
    const last = copy.at(-1)!;
    assert.equal(last.files, report.manifest.totals.files);
    assert.equal(last.totalFiles, report.manifest.totals.files);
    assert.equal(last.bytes, report.manifest.totals.bytes);
    assert.equal(last.totalBytes, undefined, 'walked paths have no byte total before they are copied');

    const dest = join(vol.dir, 'progress-restore');
    mkdirSync(dest);
    const phases: { phase: string; files: number; bytes: number; totalFiles?: number; totalBytes?: number }[] = [];
    await runRestore({ from: to, to: dest, stateDir: join(vol.dir, 'state-progress'), onProgress: (p) => phases.push({ ...p }) });
    const verify = phases.filter((p) => p.phase === 'verify').at(-1)!;
    assert.deepEqual([verify.files, verify.totalFiles, verify.bytes], [600, 600, report.manifest.totals.bytes]);
    const restored = phases.filter((p) => p.phase === 'restore').at(-1)!;
    assert.deepEqual([restored.files, restored.totalFiles, restored.bytes, restored.totalBytes], [600, 600, report.manifest.totals.bytes, report.manifest.totals.bytes]);
  });
});
