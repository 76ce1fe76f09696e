// The SQLite writer on the SDK, through the real requester path: an in-process coordinator,
// the copy provider on a tmpfs volume, runBackup and runRestore, with another process
// committing in a loop the whole time.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { runBackup } from '../../src/backup/run-backup.js';
import { runRestore } from '../../src/backup/run-restore.js';
import { SessionRestoreParticipation } from '../../src/backup/restore-participation.js';
import { makeTmpfs, tmpfsUnavailable, type TmpfsVolume } from '../../src/testing/tmpfs.js';
import { WriterState } from '../../src/vss/index.js';
import { SqliteEngine } from '../../src/writers/sqlite/engine.js';
import { SqliteWriter } from '../../src/writers/sqlite/writer.js';
import { fixture, type Fixture } from '../coordinator/helpers.js';
import { holdWriteLock } from './fixtures/lock-holder.js';
import { startApp } from './fixtures/sqlite-app-process.js';

const skip = tmpfsUnavailable();

describe('SQLite writer (SDK) through runBackup / runRestore', { skip }, () => {
  let vol: TmpfsVolume;
  let f: Fixture;
  before(async () => {
    vol = makeTmpfs(256);
    f = await fixture();
  });
  after(async () => {
    await f?.close();
    vol?.cleanup();
  });

  // The writer and the copy provider share this process, as with any in-process coordinator.
  // This once failed in ~1.5% of backups: the provider copied the -shm file, and closing it
  // released the writer's WAL write lock (POSIX record locks belong to the process), so the
  // application committed in the middle of the freeze. The lock is now held in a child
  // process, and files excluded from the snapshot (the -shm) are never opened.
  it('20 backups taken while another process commits restore to intact databases holding every commit made before Freeze', async () => {
    const dbDir = join(vol.mountPoint, 'app');
    mkdirSync(dbDir);
    const db = join(dbDir, 'app.db');
    const app = await startApp(db);
    const writer = new SqliteWriter({ databases: [db] });
    // What the application had committed when the lock was held: everything up to it must be in the backup.
    let atFreeze = -1;
    writer.on('frozen', () => (atFreeze = app.committed()));
    const results: { backup: string; before: number }[] = [];
    try {
      await writer.subscribe({ stream: () => f.co.connectWriter(), reconnect: false });
      await app.waitFor(200);
      for (let i = 0; i < 20; i++) {
        await app.waitFor(app.committed() + 20 + Math.floor(Math.random() * 80));
        atFreeze = -1;
        const session = await f.requester();
        const backup = join(vol.dir, `backup-${i}`);
        const report = await runBackup(session, { to: backup, components: [{ writer: 'SQLite Writer' }], writerVerify: ['SQLite Writer'] });
        await session.release();
        assert.deepEqual(report.components.map((c) => [c.component, c.succeeded]), [['sqlite\\app.db', true]]);
        assert.ok(atFreeze > 0, 'the writer was never frozen during the backup');
        results.push({ backup, before: atFreeze });
      }
    } finally {
      const { stallMs, commits } = await app.stop().catch(() => ({ stallMs: NaN, commits: NaN }));
      app.proc.kill();
      await writer.close();
      console.log(`# sqlite writer: ${commits} commits during 20 backups; the application's longest commit ${stallMs} ms`);
    }

    for (const [i, { backup, before }] of results.entries()) {
      const to = join(vol.dir, `restored-${i}`);
      const rr = await runRestore({ from: backup, to, stateDir: join(vol.dir, 'restore-state') });
      assert.deepEqual(rr.steps.flatMap((s) => s.results.map((r) => [r.plan.definingComponent.fullPath, r.error?.message])), [['sqlite\\app.db', undefined]]);
      const copy = join(to, db);
      // What PostRestore runs (this restore goes elsewhere, without the writer; the in-place test below goes through it).
      await new SqliteEngine({ databases: [copy] }).verify(copy);
      const c = new Database(copy, { readonly: true });
      try {
        const n = (c.prepare("SELECT n FROM counters WHERE k = 'items'").get() as { n: number }).n;
        const count = (c.prepare('SELECT count(*) AS c FROM items').get() as { c: number }).c;
        const upto = (c.prepare('SELECT count(*) AS c FROM items WHERE id <= ?').get(before) as { c: number }).c;
        assert.equal(count, n, `backup ${i}: counter and rows disagree: the snapshot holds half a transaction`);
        if (upto !== before) {
          const missing = (c.prepare('SELECT max(id) AS m FROM items').get() as { m: number }).m;
          const files = readdirSync(join(to, dbDir)).map((n) => `${n}:${statSync(join(to, dbDir, n)).size}`);
          const manifest = JSON.parse(readFileSync(join(backup, 'manifest.json'), 'utf8')) as { files: { path: string; size: number }[] };
          console.log(`# DIAG backup ${i}: max id ${missing}, before ${before}, restored ${files.join(' ')}, backed up ${manifest.files.map((x) => `${x.path}:${x.size}`).join(' ')}`);
        }
        assert.equal(upto, before, `backup ${i}: ${before - upto} of the ${before} transactions committed before Freeze are missing`);
      } finally {
        c.close();
      }
    }
  });

  it('a lock it cannot get vetoes Freeze with the engine\'s RETRYABLE code, and the backup fails', async () => {
    const dbDir = join(vol.mountPoint, 'busy');
    mkdirSync(dbDir);
    const db = join(dbDir, 'busy.db');
    new Database(db).exec('CREATE TABLE t (x)').close();
    const writer = new SqliteWriter({ databases: [db], busyTimeoutMs: 200, instanceName: 'busy' });
    const holder = await holdWriteLock(db);
    try {
      await writer.subscribe({ stream: () => f.co.connectWriter(), reconnect: false });
      const session = await f.requester();
      await assert.rejects(runBackup(session, { to: join(vol.dir, 'busy-backup'), components: [{ writer: 'busy' }] }), /VSS_E_WRITERERROR_RETRYABLE|could not take the write lock/);
      await session.gatherWriterStatus();
      const st = session.getWriterStatuses().find((s) => s.instanceName === 'busy');
      assert.equal(st?.state, WriterState.FAILED_AT_FREEZE);
      assert.equal(st?.hrWriterFailure, 0x800423f3, 'VSS_E_WRITERERROR_RETRYABLE');
      assert.match(st?.applicationMessage ?? '', /could not take the write lock/);
      await session.release();
      assert.equal(writer.engine.isFrozen, false);
    } finally {
      holder.kill();
      await writer.close();
    }
  });

  it('restored in place with writer participation: PreRestore drops the live side files, PostRestore runs integrity_check', async () => {
    const dbDir = join(vol.mountPoint, 'inplace');
    mkdirSync(dbDir);
    const db = join(dbDir, 'app.db');
    const app = await startApp(db);
    const writer = new SqliteWriter({ databases: [db], instanceName: 'inplace' });
    const verified: string[][] = [];
    writer.on('verified', (paths: string[]) => verified.push(paths));
    let atFreeze = -1;
    writer.on('frozen', () => (atFreeze = app.committed()));
    try {
      await writer.subscribe({ stream: () => f.co.connectWriter(), reconnect: false });
      await app.waitFor(300);
      const session = await f.requester();
      const backup = join(vol.dir, 'inplace-backup');
      await runBackup(session, { to: backup, components: [{ writer: 'inplace' }] });
      await session.release();
      await app.waitFor(atFreeze + 200);
      // The application stops for the restore (SQLite has no service to stop for it).
      await app.stop();
      const rr = await runRestore({ from: backup, stateDir: join(vol.dir, 'inplace-state'), files: false, participation: new SessionRestoreParticipation({ open: () => f.requester() }) });
      assert.deepEqual(rr.steps.flatMap((s) => s.results.map((r) => [r.plan.definingComponent.fullPath, r.error?.message])), [['sqlite\\app.db', undefined]]);
      assert.deepEqual(verified, [[db]], 'PostRestore did not verify the restored database');
      const c = new Database(db, { readonly: true });
      try {
        const max = (c.prepare('SELECT max(id) AS m FROM items').get() as { m: number }).m;
        const n = (c.prepare("SELECT n FROM counters WHERE k = 'items'").get() as { n: number }).n;
        assert.ok(max >= atFreeze && max < atFreeze + 200, `the live database was not replaced by the backup (max id ${max}, ${atFreeze} at Freeze)`);
        assert.equal(n, max);
      } finally {
        c.close();
      }
    } finally {
      app.proc.kill();
      await writer.close();
    }
  });
});
