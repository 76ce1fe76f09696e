// The copy pool's jobs: a backup copy hashes and stats on the open file, refuses what is
// not a regular file (a FIFO must not hang it), a stored copy's checksum is read back, and a
// staged restore file gets its owner, mode and times from the job.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CopyPool } from '../../src/backup/copy-pool.js';

const root = mkdtempSync(join(tmpdir(), 'shadowcopy-pool-'));
const pool = new CopyPool(2);
after(async () => {
  await pool.close();
  rmSync(root, { recursive: true, force: true });
});

test('backup: copy, checksum and fstat attributes of each file; a FIFO or a missing file fails alone', async () => {
  const content = Buffer.alloc(3 << 20, 7); // more than one read buffer
  writeFileSync(join(root, 'big'), content, { mode: 0o640 });
  utimesSync(join(root, 'big'), 1_000_000, 2_000_000);
  execFileSync('mkfifo', [join(root, 'fifo')]);
  const [big, fifo, missing] = await pool.run([
    { op: 'backup', from: join(root, 'big'), to: join(root, 'out/a/big') },
    { op: 'backup', from: join(root, 'fifo'), to: join(root, 'out/fifo') },
    { op: 'backup', from: join(root, 'nothing'), to: join(root, 'out/nothing') },
  ]);
  assert.equal(big!.sha256, createHash('sha256').update(content).digest('hex'));
  assert.equal(big!.size, content.length);
  assert.deepEqual({ ...big!.stat, uid: 0, gid: 0 }, { size: content.length, mode: 0o640, uid: 0, gid: 0, atimeMs: 1_000_000_000, mtimeMs: 2_000_000_000 });
  assert.ok(readFileSync(join(root, 'out/a/big')).equals(content));
  assert.equal(statSync(join(root, 'out/a/big')).mode & 0o777, 0o600, 'stored copies are private');
  assert.equal(fifo!.error?.code, 'EINVAL');
  assert.equal(missing!.error?.code, 'ENOENT');
});

test('backupMany: the files of one directory in one job, answered by column; a FIFO or a missing file fails alone', async () => {
  const dir = join(root, 'many');
  mkdirSync(dir);
  writeFileSync(join(dir, 'a'), 'alpha', { mode: 0o604 });
  writeFileSync(join(dir, 'c'), Buffer.alloc(3 << 20, 9)); // more than one read buffer
  utimesSync(join(dir, 'c'), 5_000_000, 6_000_000);
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  const [r] = await pool.run([{ op: 'backupMany', fromDir: dir, toDir: join(root, 'many-out/x'), names: ['a', 'fifo', 'missing', 'c'] }]);
  const m = r!.many!;
  const sha = (i: number): string => m.sha256.slice(i * 64, i * 64 + 64);
  assert.equal(sha(0), createHash('sha256').update('alpha').digest('hex'));
  assert.equal(sha(3), createHash('sha256').update(Buffer.alloc(3 << 20, 9)).digest('hex'));
  assert.deepEqual([m.size[0], m.mode[0], m.size[3], m.atimeMs[3], m.mtimeMs[3]], [5, 0o604, 3 << 20, 5_000_000_000, 6_000_000_000]);
  assert.deepEqual(m.errors.map(([i, code]) => [i, code]), [[1, 'EINVAL'], [2, 'ENOENT']]);
  assert.equal(readFileSync(join(root, 'many-out/x/a'), 'utf8'), 'alpha');
  assert.equal(statSync(join(root, 'many-out/x/c')).size, 3 << 20);
  assert.equal(statSync(join(root, 'many-out/x/a')).mode & 0o777, 0o600, 'stored copies are private');
});

test('stageMany: new files with the given mode and times, answered by column; an existing name is never overwritten and fails alone', async () => {
  writeFileSync(join(root, 'src'), 'content');
  writeFileSync(join(root, 'taken'), 'keep');
  const [r] = await pool.run([
    { op: 'stageMany', toDir: root, names: ['staged', 'taken', 'after'], from: [join(root, 'src'), join(root, 'src'), join(root, 'src')], mode: [0o4751, 0o644, 0o640], uid: [-1, -1, -1], gid: [-1, -1, -1], atimeMs: [3_000_000, 0, 5_000_000], mtimeMs: [4_000_000, 0, 6_000_000] },
  ]);
  const c = r!.column!;
  assert.deepEqual(c.errors.map(([i, code]) => [i, code]), [[1, 'EEXIST']]);
  assert.deepEqual(c.size, [7, 0, 7]);
  const st = statSync(join(root, 'staged'));
  assert.equal(st.mode & 0o7777, 0o4751);
  assert.equal(st.mtimeMs, 4_000_000);
  assert.equal(st.atimeMs, 3_000_000);
  assert.equal(readFileSync(join(root, 'staged'), 'utf8'), 'content');
  assert.equal(readFileSync(join(root, 'taken'), 'utf8'), 'keep');
  assert.equal(statSync(join(root, 'after')).mtimeMs, 6_000_000, 'the files after a failed one are staged');
});

test('stageMany: owner and mode are right whether or not they differ from what a new file gets (umask, set-group-id directory, other owner)', { skip: process.getuid?.() === 0 ? false : 'needs root to give files other owners' }, async () => {
  const dir = join(root, 'owners');
  const sgid = join(dir, 'sgid');
  mkdirSync(sgid, { recursive: true });
  chownSync(sgid, 0, 4321);
  chmodSync(sgid, 0o2775); // files made here get group 4321
  const me = { uid: process.geteuid!(), gid: process.getegid!() };
  const cases: { to: string; mode: number; uid?: number; gid?: number; want: { mode: number; uid: number; gid: number } }[] = [
    // What a new file gets already: nothing to change.
    { to: join(dir, 'plain'), mode: 0o644, ...me, want: { mode: 0o644, ...me } },
    // Bits the umask (022 here) takes away, and bits no umask touches but open leaves out.
    { to: join(dir, 'wide'), mode: 0o666, ...me, want: { mode: 0o666, ...me } },
    { to: join(dir, 'sticky'), mode: 0o1700, ...me, want: { mode: 0o1700, ...me } },
    // Our own owner, but the directory would give another group: set back to the recorded one.
    { to: join(sgid, 'mine'), mode: 0o640, ...me, want: { mode: 0o640, ...me } },
    // The directory's group is the recorded one: kept without a chown.
    { to: join(sgid, 'group'), mode: 0o640, uid: me.uid, gid: 4321, want: { mode: 0o640, uid: me.uid, gid: 4321 } },
    // Another owner, with set-id bits that the chown would clear.
    { to: join(dir, 'other'), mode: 0o6750, uid: 1234, gid: 2345, want: { mode: 0o6750, uid: 1234, gid: 2345 } },
    // No owner recorded: ours.
    { to: join(dir, 'unknown'), mode: 0o600, want: { mode: 0o600, ...me } },
  ];
  const previous = process.umask(0o022);
  try {
    // One job per directory, as the restore sends them.
    const jobs = [dir, sgid].map((toDir) => {
      const here = cases.filter((c) => c.to.startsWith(`${toDir}/`) && !c.to.slice(toDir.length + 1).includes('/'));
      return {
        op: 'stageMany' as const,
        toDir,
        names: here.map((c) => c.to.slice(toDir.length + 1)),
        from: here.map(() => join(root, 'src')),
        mode: here.map((c) => c.mode),
        uid: here.map((c) => c.uid ?? -1),
        gid: here.map((c) => c.gid ?? -1),
        atimeMs: here.map(() => 0),
        mtimeMs: here.map(() => 0),
      };
    });
    assert.equal(jobs[0]!.names.length + jobs[1]!.names.length, cases.length);
    for (const r of await pool.run(jobs)) assert.deepEqual(r.column?.errors, []);
  } finally {
    process.umask(previous);
  }
  for (const c of cases) {
    const st = statSync(c.to);
    assert.deepEqual({ mode: st.mode & 0o7777, uid: st.uid, gid: st.gid }, c.want, c.to);
  }
});

test('hashMany: checksums and sizes by column, a missing file failing alone; jobs after close fail instead of hanging', async () => {
  const [h] = await pool.run([{ op: 'hashMany', dir: root, names: ['src', 'nothing', 'big'] }]);
  const c = h!.column!;
  assert.equal(c.sha256!.slice(0, 64), createHash('sha256').update('content').digest('hex'));
  assert.equal(c.sha256!.slice(64, 128), '0'.repeat(64));
  assert.equal(c.sha256!.slice(128), createHash('sha256').update(Buffer.alloc(3 << 20, 7)).digest('hex'));
  assert.deepEqual(c.size, [7, 0, 3 << 20]);
  assert.deepEqual(c.errors.map(([i, code]) => [i, code]), [[1, 'ENOENT']]);
  const closed = new CopyPool(1);
  await closed.close();
  const [r] = await closed.run([{ op: 'hashMany', dir: root, names: ['src'] }]);
  assert.equal(r!.error?.code, 'EWORKER');
});

test('nice: the workers, and only they, run at the niceness asked for (Linux)', { skip: process.platform !== 'linux' ? 'thread niceness is read from /proc' : false }, async () => {
  const niceOf = (tid: string): number => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  };
  const before = new Set(readdirSync('/proc/self/task'));
  const niced = new CopyPool(2, { nice: 7 });
  try {
    await niced.run([{ op: 'hashMany', dir: root, names: ['big'] }]);
    // Each worker sets its niceness as it boots: wait (a while at most) until both have.
    let nices: number[] = [];
    for (let i = 0; i < 100; i++) {
      nices = readdirSync('/proc/self/task').filter((t) => !before.has(t)).map(niceOf);
      if (nices.filter((n) => n === 7).length >= 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(nices.filter((n) => n === 7).length >= 2, `worker threads' niceness: ${nices.join(', ')}`);
    assert.equal(niceOf(String(process.pid)), 0, 'the main thread keeps its priority');
  } finally {
    await niced.close();
  }
});
