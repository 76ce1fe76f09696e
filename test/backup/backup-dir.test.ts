import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { BackupDir, BackupDirWriter, MANIFEST_FILE, volumeKey } from '../../src/backup/backup-dir.js';
import { CopyPool } from '../../src/backup/copy-pool.js';
import { RestoreExecutor } from '../../src/backup/restore-executor.js';
import { computeRestoreSet, FileRestoreStatus, parseBackupComponents, writeBackupComponents, writeWriterMetadata } from '../../src/vss/index.js';
import { rejectsVss, throwsVss } from '../support/assert.js';
import { Scenario, WRITER_ID } from './restore-scenario.js';

const scenarios: Scenario[] = [];
afterEach(() => {
  for (const s of scenarios.splice(0)) s.cleanup();
});
function scenario(): Scenario {
  const s = new Scenario();
  scenarios.push(s);
  return s;
}

/** Backs up the scenario's backup set from its "snapshot" into `dir`. */
function backUp(s: Scenario, dir: string, previous?: BackupDir): ReturnType<BackupDirWriter['finish']> {
  const w = BackupDirWriter.create(dir, [{ volume: s.live, root: s.snap }], previous);
  for (const e of s.entries) w.add(e.path, 'application', e, s.tree.resolve(e.source));
  w.saveDocument('backup-components.xml', writeBackupComponents(s.bcd));
  w.saveDocument(`writers/${WRITER_ID}.xml`, writeWriterMetadata(s.wmd));
  return w.finish({ backupType: previous ? 'incremental' : 'full', writers: [], components: [] });
}

describe('backup directory', () => {
  test('a full backup stores every file with its checksum and verifies clean', async () => {
    const s = scenario();
    const dir = join(s.root, 'backup');
    const m = await backUp(s, dir);
    assert.equal(m.chain.length, 1);
    assert.equal(m.totals.bytes, m.totals.bytesStored);
    const b = BackupDir.open(dir);
    assert.deepEqual(b.verify(), []);
    const a = b.file(join(s.live, 'data/a.db'))!;
    assert.equal(readFileSync(b.storedPath(a), 'utf8'), 'alpha');
    assert.ok(a.stored!.startsWith(`files/${volumeKey(s.live)}/`));
    assert.equal(b.entries().length, s.entries.length);
  });

  test('addFiles records the files of a directory in order, with or without a pool, and an incremental one compares each with the previous backup', async () => {
    const s = scenario();
    const live = s.live;
    const names = Array.from({ length: 150 }, (_, i) => `f${String(i).padStart(3, '0')}`); // more than one job's worth
    mkdirSync(join(s.snap, 'flat'), { recursive: true });
    for (const n of names) writeFileSync(join(s.snap, 'flat', n), `content of ${n}`, { mode: 0o640 });
    const pool = new CopyPool(2);
    try {
      const made: Awaited<ReturnType<BackupDirWriter['finish']>>[] = [];
      for (const [i, p] of [undefined, pool].entries()) {
        const w = BackupDirWriter.create(join(s.root, `flat-${i}`), [{ volume: live, root: s.snap }], undefined, p);
        w.add(join(live, 'flat', names[1]!), 'crash', undefined, join(s.snap, 'flat', names[1]!)); // recorded already: skipped
        // A file gone since its directory was read: the pool's copy fails it alone (without a pool, add throws at once).
        w.addFiles(join(live, 'flat'), join(s.snap, 'flat'), p ? [...names, 'gone'] : names, 'crash');
        const failed = await w.flush();
        assert.deepEqual(failed.map((f) => f.path), p ? [join(live, 'flat', 'gone')] : []);
        made.push(await w.finish({ backupType: 'full', writers: [], components: [] }));
      }
      const shape = (m: (typeof made)[0]) => m.files.map(({ path, kind, size, mode, sha256, stored }) => ({ path, kind, size, mode, sha256, stored }));
      const [plain, pooled] = made;
      assert.deepEqual(shape(pooled!), shape(plain!));
      assert.deepEqual(pooled!.files.map((f) => f.path), [names[1]!, names[0]!, ...names.slice(2)].map((n) => join(live, 'flat', n)));
      assert.equal(pooled!.files[5]!.sha256, createHash('sha256').update(`content of ${names[5]}`).digest('hex'));
      assert.equal(pooled!.files[5]!.mode, 0o640);
      assert.deepEqual(BackupDir.open(join(s.root, 'flat-1')).verify(), []);
      // The next backup builds on it: only the changed file is stored again.
      writeFileSync(join(s.snap, 'flat', names[7]!), 'changed');
      utimesSync(join(s.snap, 'flat', names[7]!), new Date(), new Date(Date.now() + 5000));
      const w = BackupDirWriter.create(join(s.root, 'flat-incr'), [{ volume: live, root: s.snap }], BackupDir.open(join(s.root, 'flat-1')), pool);
      w.addFiles(join(live, 'flat'), join(s.snap, 'flat'), names, 'crash');
      assert.deepEqual(await w.flush(), []);
      const m = await w.finish({ backupType: 'incremental', writers: [], components: [] });
      assert.equal(m.totals.bytesStored, 'changed'.length);
      assert.deepEqual(m.files.filter((f) => !f.storedIn).map((f) => f.path), [join(live, 'flat', names[7]!)]);
      assert.deepEqual(BackupDir.open(join(s.root, 'flat-incr')).verify(), []);
    } finally {
      await pool.close();
    }
  });

  test('an incremental backup stores only what changed and restores from the chain', async () => {
    const s = scenario();
    const full = join(s.root, 'full');
    await backUp(s, full);
    // The next snapshot: one file changed, one added.
    s.write('data/a.db', 'alpha-2', s.snap);
    utimesSync(join(s.snap, 'data/a.db'), new Date(), new Date(Date.now() + 5000));
    const incr = join(s.root, 'incr');
    const m = await backUp(s, incr, BackupDir.open(full));
    assert.equal(m.totals.bytesStored, 'alpha-2'.length, 'only the changed file is stored');
    assert.deepEqual(m.chain.length, 2);
    const b = BackupDir.open(incr);
    assert.deepEqual(b.verify(), []);
    assert.equal(b.file(join(s.live, 'data/sub/b.db'))!.storedIn, BackupDir.open(full).manifest.id);
    // Restore everything from the newest backup of the chain.
    rmSync(join(s.live, 'data'), { recursive: true });
    s.select(['data']);
    const set = computeRestoreSet(s.bcd, [s.wmd], b.entries());
    const [r] = await new RestoreExecutor({ stateDir: s.stateDir }).restore(set, b.source());
    assert.equal(r!.status, FileRestoreStatus.ALL, r!.error?.message);
    assert.equal(readFileSync(join(s.live, 'data/a.db'), 'utf8'), 'alpha-2');
    assert.equal(readFileSync(join(s.live, 'data/sub/b.db'), 'utf8'), 'bravo');
  });

  test('an altered or missing stored file is found by verify', async () => {
    const s = scenario();
    const dir = join(s.root, 'backup');
    await backUp(s, dir);
    const b = BackupDir.open(dir);
    writeFileSync(b.storedPath(b.file(join(s.live, 'data/a.db'))!), 'alphb');
    rmSync(b.storedPath(b.file(join(s.live, 'data/sub/b.db'))!));
    const problems = BackupDir.open(dir).verify();
    assert.deepEqual(problems.map((p) => p.path).sort(), [join(s.live, 'data/a.db'), join(s.live, 'data/sub/b.db')]);
    assert.match(problems.find((p) => p.path.endsWith('a.db'))!.problem, /does not match its checksum/);
    assert.match(problems.find((p) => p.path.endsWith('b.db'))!.problem, /missing/);
  });

  test('on a pool, verification finds what verify finds, in manifest order, over runs of many files of one directory', async () => {
    const s = scenario();
    const dir = join(s.root, 'backup');
    mkdirSync(join(s.snap, 'many'));
    const w = BackupDirWriter.create(dir, [{ volume: s.live, root: s.snap }]);
    // 150 files of one directory: three pool jobs (64, 64, 22), then the scenario's files.
    for (let i = 0; i < 150; i++) {
      writeFileSync(join(s.snap, 'many', `f${i}`), `content ${i}`);
      w.add(join(s.live, 'many', `f${i}`), 'crash', undefined, join(s.snap, 'many', `f${i}`), 'file');
    }
    for (const e of s.entries) w.add(e.path, 'application', e, s.tree.resolve(e.source));
    await w.finish({ backupType: 'full', writers: [], components: [] });
    const b = BackupDir.open(dir);
    const stored = (path: string): string => b.storedPath(b.file(path)!);
    writeFileSync(stored(join(s.live, 'many/f3')), 'content X'); // same size, other bytes
    writeFileSync(stored(join(s.live, 'many/f70')), 'short');
    rmSync(stored(join(s.live, 'many/f149')));
    rmSync(stored(join(s.live, 'data/a.db')));
    rmSync(stored(join(s.live, 'many/f100')));
    mkdirSync(stored(join(s.live, 'many/f100'))); // there, but cannot be read
    const pool = new CopyPool(2);
    try {
      const seen: number[] = [];
      const problems = await b.verifyWith(pool, (done) => seen.push(done));
      assert.deepEqual(problems, b.verify());
      assert.deepEqual(problems.map((p) => p.path), ['many/f3', 'many/f70', 'many/f100', 'many/f149', 'data/a.db'].map((p) => join(s.live, p)));
      assert.match(problems[0]!.problem, /does not match its checksum/);
      assert.match(problems[1]!.problem, /has 5 bytes, the manifest says 10/);
      assert.match(problems[2]!.problem, /could not be read \(EISDIR: /);
      assert.match(problems[3]!.problem, /is missing/);
      assert.equal(seen.at(-1), b.manifest.files.filter((f) => f.kind === 'file').length, 'progress reaches every file');
    } finally {
      await pool.close();
    }
  });

  test('on a pool: attributes taken on the open file; a file that cannot be copied leaves the backup with its entry', async () => {
    const s = scenario();
    const pool = new CopyPool(2);
    try {
      const dir = join(s.root, 'backup');
      const w = BackupDirWriter.create(dir, [{ volume: s.live, root: s.snap }], undefined, pool);
      const gone = s.entries.find((e) => e.path.endsWith('a.db'))!;
      rmSync(join(s.snap, 'data/a.db'));
      for (const e of s.entries) w.add(e.path, 'application', e, s.tree.resolve(e.source), e.kind === 'file' ? 'file' : undefined);
      const failed = await w.flush();
      assert.deepEqual(failed.map((f) => [f.path, f.error.code, f.entry]), [[gone.path, 'VSS_E_OBJECT_NOT_FOUND', gone]]);
      const m = await w.finish({ backupType: 'full', writers: [], components: [] });
      assert.ok(!m.files.some((f) => f.path === gone.path));
      const b = m.files.find((f) => f.path.endsWith('b.db'))!;
      const st = statSync(join(s.snap, 'data/sub/b.db'));
      assert.deepEqual([b.size, b.mode, b.uid, b.gid, b.mtimeMs], [st.size, st.mode & 0o7777, st.uid, st.gid, st.mtimeMs]);
      assert.equal(m.totals.bytes, m.files.reduce((n, f) => n + f.size, 0));
      assert.deepEqual(BackupDir.open(dir).verify(), []);
    } finally {
      await pool.close();
    }
  });

  test('an interrupted backup (no manifest) is refused; a non-empty destination is refused', () => {
    const s = scenario();
    const dir = join(s.root, 'backup');
    const w = BackupDirWriter.create(dir, [{ volume: s.live, root: s.snap }]);
    w.add(s.entries[0]!.path, 'application', s.entries[0]);
    throwsVss(() => BackupDir.open(dir), 'VSS_E_OBJECT_NOT_FOUND', /incomplete: it has no manifest/);
    throwsVss(() => BackupDirWriter.create(dir, []), 'VSS_E_OBJECT_ALREADY_EXISTS', /not empty/);
    throwsVss(() => w.add(s.entries[0]!.path, 'application'), 'VSS_E_OBJECT_ALREADY_EXISTS');
    throwsVss(() => w.add('/elsewhere/x', 'crash'), 'VSS_E_OBJECT_NOT_FOUND', /no volume/);
  });

  test('a tampered manifest is refused before anything is read through it', async () => {
    const s = scenario();
    const dir = join(s.root, 'backup');
    await backUp(s, dir);
    const path = join(dir, MANIFEST_FILE);
    const m = JSON.parse(readFileSync(path, 'utf8'));
    m.files[0].stored = '../../../etc/shadow';
    writeFileSync(path, JSON.stringify(m));
    throwsVss(() => BackupDir.open(dir), 'VSS_E_CORRUPT_XML_DOCUMENT', /outside the backup/);
    writeFileSync(path, '{"format": "something else"');
    throwsVss(() => BackupDir.open(dir), 'VSS_E_CORRUPT_XML_DOCUMENT', /not valid JSON/);
  });

  test('stored copies are private whatever the original mode; the manifest keeps the mode', async () => {
    const s = scenario();
    const dir = join(s.root, 'backup');
    await backUp(s, dir);
    const b = BackupDir.open(dir);
    const f = b.file(join(s.live, 'data/a.db'))!;
    assert.equal(f.mode, 0o644);
    assert.equal(statSync(b.storedPath(f)).mode & 0o777, 0o600);
  });

  test('the saved documents read back', async () => {
    const s = scenario();
    const dir = join(s.root, 'backup');
    await backUp(s, dir);
    const b = BackupDir.open(dir);
    assert.equal(parseBackupComponents(b.readDocument('backup-components.xml')).writers.length, 1);
    throwsVss(() => b.readDocument('../outside.xml'), 'VSS_E_CORRUPT_XML_DOCUMENT');
    mkdirSync(join(s.root, 'x'));
    await rejectsVss(async () => BackupDir.open(join(s.root, 'x')), 'VSS_E_OBJECT_NOT_FOUND');
    assert.ok(!existsSync(join(s.root, 'missing')));
  });
});
