// The SQLite engine on real databases written by another process: what the writer will do
// around a snapshot (freeze, copy the files while frozen, thaw), then what it does at restore.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { VssError } from '../../src/vss/index.js';
import { SqliteEngine } from '../../src/writers/sqlite/engine.js';
import { startApp } from './fixtures/sqlite-app-process.js';


/** The "snapshot": a plain copy of the database and whichever side files exist. */
function copyDatabase(db: string, dest: string): void {
  mkdirSync(dest, { recursive: true });
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    if (existsSync(db + suffix)) copyFileSync(db + suffix, join(dest, `app.db${suffix}`));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SQLite engine', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'shadowcopy-sqlite-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('publishes one DATABASE component per database with its side files, restored by replacing', () => {
    const engine = new SqliteEngine({ databases: [join(dir, 'a.db'), join(dir, 'sub/b.sqlite')] });
    const wmd = engine.metadata();
    assert.equal(wmd.getRestoreMethod().method, 2 /* RESTORE_IF_CAN_REPLACE */);
    assert.deepEqual(
      wmd.components.map((c) => [c.logicalPath, c.componentName, c.databaseFiles.map((f) => f.path + '/' + f.filespec), c.logFiles.map((f) => f.filespec)]),
      [
        ['sqlite', 'a.db', [`${dir}/a.db`], ['a.db-wal*', 'a.db-journal*']],
        ['sqlite', 'b.sqlite', [`${dir}/sub/b.sqlite`], ['b.sqlite-wal*', 'b.sqlite-journal*']],
      ],
    );
    // The wal-index is a cache SQLite rebuilds from the WAL: never backed up.
    assert.deepEqual(wmd.excludeFiles.map((x) => `${x.path}/${x.filespec}`), [`${dir}/a.db-shm*`, `${dir}/sub/b.sqlite-shm*`]);
    // Nor copied into the snapshot: a copy provider then never opens it (see the lock test below).
    assert.deepEqual(wmd.excludeFilesFromSnapshot.map((x) => `${x.path}/${x.filespec}`), [`${dir}/a.db-shm*`, `${dir}/sub/b.sqlite-shm*`]);
    assert.throws(() => new SqliteEngine({ databases: [join(dir, 'x/a.db'), join(dir, 'y/a.db')] }), (e) => VssError.is(e, 'E_INVALIDARG'));
  });

  it('20 backups taken while another process commits in a loop are consistent and hold every earlier commit', async () => {
    const db = join(dir, 'loop', 'app.db');
    mkdirSync(join(dir, 'loop'));
    const app = await startApp(db, 0);
    const engine = new SqliteEngine({ databases: [db] });
    const copies: { dest: string; before: number }[] = [];
    const freezeMs: number[] = [];
    const holdMs: number[] = [];
    try {
      await app.waitFor(200);
      for (let i = 0; i < 20; i++) {
        await app.waitFor(app.committed() + 20 + Math.floor(Math.random() * 80));
        const before = app.committed();
        const report = await engine.freeze();
        freezeMs.push(report.elapsedMs);
        const t0 = performance.now();
        const dest = join(dir, 'loop', `copy-${i}`);
        copyDatabase(db, dest);
        holdMs.push(performance.now() - t0);
        await engine.thaw();
        copies.push({ dest, before });
      }
      await engine.close();
    } catch (e) {
      app.proc.kill();
      await engine.close();
      throw e;
    }
    const { stallMs, commits } = await app.stop();
    for (const { dest, before } of copies) {
      const copy = join(dest, 'app.db');
      await new SqliteEngine({ databases: [copy] }).verify(copy).catch((e: unknown) => assert.fail(`${dest}: ${String(e)}`));
      const c = new Database(copy);
      try {
        const n = (c.prepare("SELECT n FROM counters WHERE k = 'items'").get() as { n: number }).n;
        const count = (c.prepare('SELECT count(*) AS c FROM items').get() as { c: number }).c;
        const upto = (c.prepare('SELECT count(*) AS c FROM items WHERE id <= ?').get(before) as { c: number }).c;
        assert.equal(count, n, `${dest}: the counter and the rows disagree, so the copy holds half a transaction`);
        assert.equal(upto, before, `${dest}: ${before - upto} of the ${before} transactions committed before Freeze are missing`);
      } finally {
        c.close();
      }
    }
    const max = (a: number[]) => Math.max(...a).toFixed(1);
    console.log(`# sqlite: ${commits} commits; freeze took up to ${max(freezeMs)} ms, copy while frozen up to ${max(holdMs)} ms; app's longest commit ${stallMs} ms`);
  });

  it('holds the write lock while frozen: another connection cannot write until thaw', async () => {
    const db = join(dir, 'lock.db');
    const setup = new Database(db);
    setup.pragma('journal_mode = WAL');
    setup.exec('CREATE TABLE t (x)');
    setup.close();
    const engine = new SqliteEngine({ databases: [db] });
    const other = new Database(db, { timeout: 50 });
    try {
      await engine.freeze();
      assert.equal(engine.isFrozen, true);
      assert.throws(() => other.exec('INSERT INTO t VALUES (1)'), (e: Error & { code?: string }) => e.code === 'SQLITE_BUSY');
      // Readers are not blocked: WAL readers never wait for the writer.
      assert.deepEqual(other.prepare('SELECT count(*) AS c FROM t').get(), { c: 0 });
      await engine.thaw();
      other.exec('INSERT INTO t VALUES (1)');
      // Abort is idempotent and harmless when nothing is frozen.
      await engine.abort();
      await engine.abort();
    } finally {
      other.close();
      await engine.close();
    }
  });

  // POSIX record locks belong to a process and all go when any descriptor of the file in it is
  // closed: a copy provider in this process copying the files must not free the application.
  it('keeps the write lock while this process opens and closes the database and its -shm', async () => {
    const db = join(dir, 'host.db');
    const setup = new Database(db);
    setup.pragma('journal_mode = WAL');
    setup.exec('CREATE TABLE t (x)');
    const engine = new SqliteEngine({ databases: [db] });
    const tryWrite = (): string => {
      const script = `const D = require('better-sqlite3'); const d = new D(${JSON.stringify(db)}, { timeout: 0 });
        try { d.exec('INSERT INTO t VALUES (1)'); console.log('wrote'); } catch (e) { console.log(e.code); } finally { d.close(); }`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: process.cwd() });
      return (r.stdout || r.stderr).trim();
    };
    try {
      await engine.freeze();
      for (const f of [db, `${db}-shm`, `${db}-wal`]) if (existsSync(f)) closeSync(openSync(f, 'r'));
      assert.equal(tryWrite(), 'SQLITE_BUSY', 'another process wrote while the writer was frozen');
      await engine.thaw();
      assert.equal(tryWrite(), 'wrote');
    } finally {
      setup.close();
      await engine.close();
    }
  });

  it('releases the lock when the freeze window ends, and Thaw then reports a timeout', async () => {
    const db = join(dir, 'window.db');
    new Database(db).exec('CREATE TABLE t (x)').close();
    const engine = new SqliteEngine({ databases: [db], freezeWindowMs: 100 });
    const other = new Database(db, { timeout: 10_000 });
    try {
      await engine.freeze();
      // Poll instead of sleeping a fixed time: the window ends when it ends.
      while (engine.isFrozen) await sleep(20);
      other.exec('INSERT INTO t VALUES (1)');
      await assert.rejects(engine.thaw(), (e) => VssError.is(e, 'VSS_E_WRITERERROR_TIMEOUT'));
    } finally {
      other.close();
      await engine.close();
    }
  });

  it('keeps the event loop free while waiting for a lock another process holds', async () => {
    const db = join(dir, 'busy.db');
    new Database(db).exec('CREATE TABLE t (x)').close();
    const engine = new SqliteEngine({ databases: [db], busyTimeoutMs: 10_000 });
    await engine.verify(db); // starts the lock process, so what follows measures only the wait
    // Another process takes the write lock and lets it go after 1 s, saying so.
    const holder = spawn(process.execPath, [
      '-e',
      `const D=require(${JSON.stringify(requireResolve('better-sqlite3'))});const d=new D(${JSON.stringify(db)});d.exec('BEGIN IMMEDIATE');console.log('held');setTimeout(()=>{d.exec('ROLLBACK');console.log('released');d.close()},1000)`,
    ], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: holder.stdout! });
    let released = false;
    await new Promise<void>((r) => lines.on('line', (l) => (l === 'held' ? r() : (released = l === 'released'))));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      const report = await engine.freeze();
      assert.equal(released, true, 'freeze() returned before the other process let go of its lock');
      assert.ok(ticks > 0, 'no timer fired while freeze() waited for the lock: the event loop was blocked');
      console.log(`# sqlite: waited ${report.databases[0]!.lockWaitMs.toFixed(0)} ms for a held lock; ${ticks} timer ticks meanwhile`);
      await engine.thaw();
    } finally {
      clearInterval(timer);
      await engine.close();
      holder.kill();
    }
  });

  it('fails Freeze as retryable when the lock stays taken, and holds nothing afterwards', async () => {
    const db = join(dir, 'taken.db');
    new Database(db).exec('CREATE TABLE t (x)').close();
    const holder = new Database(db);
    holder.exec('BEGIN IMMEDIATE');
    const engine = new SqliteEngine({ databases: [db], busyTimeoutMs: 100 });
    try {
      await assert.rejects(engine.freeze(), (e) => VssError.is(e, 'VSS_E_WRITERERROR_RETRYABLE'));
      assert.equal(engine.isFrozen, false);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
      await engine.close();
    }
  });

  it('fails PrepareForSnapshot and Freeze as non-retryable when a database is missing', async () => {
    const engine = new SqliteEngine({ databases: [join(dir, 'nope.db')] });
    try {
      await assert.rejects(engine.prepareSnapshot(), (e) => VssError.is(e, 'VSS_E_WRITERERROR_NONRETRYABLE'));
      await assert.rejects(engine.freeze(), (e) => VssError.is(e, 'VSS_E_WRITERERROR_NONRETRYABLE'));
      assert.equal(existsSync(join(dir, 'nope.db')), false, 'freeze must not create the database');
    } finally {
      await engine.close();
    }
  });

  it('restore: PreRestore clears live side files, PostRestore verifies and rejects a damaged file', async () => {
    const db = join(dir, 'restore.db');
    const s = new Database(db);
    s.pragma('journal_mode = WAL');
    s.exec('CREATE TABLE t (x); CREATE INDEX ti ON t(x)');
    const ins = s.prepare('INSERT INTO t VALUES (?)');
    for (let i = 0; i < 2000; i++) ins.run(`row ${i} ${'x'.repeat(100)}`);
    s.pragma('wal_checkpoint(TRUNCATE)');
    s.close();
    const engine = new SqliteEngine({ databases: [db] });
    try {
      await engine.verifyAll();
      writeFileSync(`${db}-wal`, 'stale live wal');
      await engine.prepareRestore(db);
      assert.equal(existsSync(`${db}-wal`), false);
      // Damage: overwrite a page in the middle of the file.
      const fd = openSync(db, 'r+');
      writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, 4096 * 3);
      closeSync(fd);
      await assert.rejects(engine.verify(db), (e) => VssError.is(e, 'VSS_E_WRITERERROR_NONRETRYABLE'));
    } finally {
      await engine.close();
    }
  });
});

function requireResolve(name: string): string {
  return import.meta.resolve(name).replace(/^file:\/\//, '');
}
