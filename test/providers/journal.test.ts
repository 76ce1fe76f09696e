// The change journal (inotifywait) behind the reflink and copy providers' commit: it must
// copy exactly what changed, give the same snapshot as a full rescan, and give up — so that
// commit rescans everything — whenever it cannot be sure (overflow, watch limit, too much).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChangeJournal, type JournalOptions } from '../../src/providers/journal.js';
import { excludedFileMatcher, RACY_MARGIN_NS, syncTree, wholeTreesExcluded } from '../../src/providers/tree.js';
import { hasTool, isRoot } from '../../src/providers/system.js';
import { digestTree, diffTrees } from './helpers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const skip = process.platform !== 'linux' ? 'inotify needs Linux' : !hasTool('inotifywait') ? 'inotifywait is not installed (Debian: apt-get install inotify-tools)' : false;

const base = mkdtempSync(join(tmpdir(), 'shadowcopy-journal-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;

/** A volume and a store beside it, as the providers lay them out. */
function layout(): { src: string; store: string; dst: string; opts: JournalOptions } {
  const dir = join(base, `t${++n}`);
  const src = join(dir, 'vol');
  const store = join(dir, 'store');
  mkdirSync(src, { recursive: true });
  mkdirSync(join(store, 'snapshots'), { recursive: true });
  return { src, store, dst: join(store, 'snapshots', 'snap'), opts: { root: src, sentinelDir: store, sentinelName: `t${n}`, exclude: [join(store, 'snapshots')] } };
}

/** Everything digestTree checks, plus directories' mtimes and which paths share an inode. */
function fullDigest(root: string): { tree: ReturnType<typeof digestTree>; dirMtimes: Map<string, number>; links: string[] } {
  const tree = digestTree(root);
  const dirMtimes = new Map<string, number>();
  const byIno = new Map<number, string[]>();
  for (const [rel, d] of tree) {
    const st = lstatSync(join(root, rel));
    if (d.kind === 'dir') dirMtimes.set(rel, Math.floor(st.mtimeMs));
    if (d.kind === 'file' && st.nlink > 1) byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), rel]);
  }
  dirMtimes.set('', Math.floor(lstatSync(root).mtimeMs));
  return { tree, dirMtimes, links: [...byIno.values()].map((l) => l.sort().join(' = ')).sort() };
}

function assertSame(src: string, dst: string): void {
  const a = fullDigest(src);
  const b = fullDigest(dst);
  assert.deepEqual(diffTrees(a.tree, b.tree), []);
  assert.deepEqual([...b.dirMtimes], [...a.dirMtimes], 'directory mtimes');
  assert.deepEqual(b.links, a.links, 'hard links');
}

/** 20 directories of 25 files, a symlink, a hard-linked pair; nothing racy once it returns. */
async function populate(src: string): Promise<void> {
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(src, `d${d}`));
    for (let f = 0; f < 25; f++) writeFileSync(join(src, `d${d}`, `f${f}`), `dir ${d} file ${f}\n`.repeat(f + 1));
  }
  mkdirSync(join(src, 'd0/sub/deeper'), { recursive: true });
  writeFileSync(join(src, 'd0/sub/deeper/x'), 'x');
  symlinkSync('d1/f1', join(src, 'link'));
  writeFileSync(join(src, 'pair-a'), 'linked');
  linkSync(join(src, 'pair-a'), join(src, 'd2/pair-b'));
  await sleep(Number(RACY_MARGIN_NS / 1_000_000n) + 50);
}

describe('the change journal', { skip }, () => {
  test('commit copies exactly what changed, and the snapshot equals the volume byte for byte and in metadata', async () => {
    const { src, dst, opts } = layout();
    await populate(src);
    const journal = await ChangeJournal.start(opts);
    try {
      assert.equal(journal.failure, undefined);
      const first = await syncTree(src, dst, undefined, { clone: false });
      assertSame(src, dst);
      const total = first.manifest.entries.size;

      writeFileSync(join(src, 'd3/f3'), 'modified'); // 1 copied
      writeFileSync(join(src, 'd3/created'), 'created'); // 1
      rmSync(join(src, 'd4/f4')); // removed
      renameSync(join(src, 'd5/f5'), join(src, 'd6/moved')); // 1 copied (new path), 1 removed
      renameSync(join(src, 'd7'), join(src, 'd7-renamed')); // 25 copied under the new name, 1 removed
      mkdirSync(join(src, 'newdir/inner'), { recursive: true });
      writeFileSync(join(src, 'newdir/a'), 'a'); // 1
      writeFileSync(join(src, 'newdir/inner/b'), 'b'); // 1
      chmodSync(join(src, 'd8/f8'), 0o600); // 1
      if (isRoot()) chownSync(join(src, 'd8/f9'), 4242, 4343); // 1 (root only)
      linkSync(join(src, 'd9/f9'), join(src, 'd10/hard')); // d9/f9 recopied (its ctime moved) and linked: 1
      writeFileSync(join(src, 'pair-a'), 'changed through one name'); // 1, d2/pair-b relinked
      rmSync(join(src, 'link'));
      symlinkSync('d1/f2', join(src, 'link')); // 1
      rmSync(join(src, 'd0/sub'), { recursive: true }); // removed
      const second = await syncTree(src, dst, first.manifest, { clone: false, journal });
      assert.equal(second.stats.mode, 'journal', second.stats.fallback);
      assertSame(src, dst);
      assert.equal(second.stats.copied, 34 + (isRoot() ? 1 : 0), 'only what changed was copied');
      assert.ok(second.stats.scanned < total / 4, `looked at ${second.stats.scanned} of ${total} entries`);
      // The manifest it returns describes the volume, as a full scan would.
      const full = await syncTree(src, join(base, `check${n}`), undefined, { clone: false });
      assert.deepEqual([...second.manifest.entries.keys()].sort(), [...full.manifest.entries.keys()].sort());
    } finally {
      journal.close();
    }
  });

  test('a change deep in the tree, alone, touches nothing else', async () => {
    const { src, dst, opts } = layout();
    await populate(src);
    const journal = await ChangeJournal.start(opts);
    try {
      const first = await syncTree(src, dst, undefined, { clone: false });
      writeFileSync(join(src, 'd0/sub/deeper/x'), 'deep change');
      const second = await syncTree(src, dst, first.manifest, { clone: false, journal });
      assert.equal(second.stats.mode, 'journal', second.stats.fallback);
      assert.equal(second.stats.copied, 1);
      assert.equal(second.stats.removed, 0);
      assertSame(src, dst);
      rmSync(join(src, 'd0/sub/deeper/x'));
      const third = await syncTree(src, join(base, `full${n}`), undefined, { clone: false });
      assert.ok(third.manifest.entries.has('d0/sub/deeper'));
    } finally {
      journal.close();
    }
  });

  test('a tree whose files the snapshot leaves out is not watched, yet commit sees the directories made in it', async () => {
    const { src, dst, opts } = layout();
    await populate(src);
    mkdirSync(join(src, 'wal/archive_status'), { recursive: true });
    writeFileSync(join(src, 'wal/seg1'), 'wal');
    const specs = [{ path: join(src, 'wal'), filespec: '*', recursive: true }, { path: join(src, 'd1'), filespec: '*.tmp', recursive: false }];
    // Only the whole-tree exclusion goes unwatched.
    assert.deepEqual(wholeTreesExcluded(src, specs), [join(src, 'wal')]);
    const excludeFile = excludedFileMatcher(src, specs)!;
    const journal = await ChangeJournal.start({ ...opts, unwatched: wholeTreesExcluded(src, specs) });
    try {
      assert.equal(journal.failure, undefined);
      const first = await syncTree(src, dst, undefined, { clone: false, excludeFile });
      for (let i = 0; i < 300; i++) writeFileSync(join(src, 'wal/seg1'), `record ${i}\n`, { flag: 'a' });
      writeFileSync(join(src, 'wal/seg2'), 'next segment');
      mkdirSync(join(src, 'wal/summaries'));
      rmSync(join(src, 'wal/archive_status'), { recursive: true });
      writeFileSync(join(src, 'd1/f1'), 'changed');
      const changes = await journal.drain();
      assert.ok(!('failure' in changes), 'failure' in changes ? changes.failure : '');
      assert.deepEqual([...changes.paths].filter((p) => p.startsWith('wal')), [], 'nothing recorded inside the unwatched tree');
      assert.deepEqual([...changes.rescan], ['wal']);
      const second = await syncTree(src, dst, first.manifest, { clone: false, excludeFile, journal });
      assert.equal(second.stats.mode, 'journal', second.stats.fallback);
      assert.equal(second.stats.copied, 1, 'd1/f1 alone');
      assert.deepEqual(readdirSync(join(dst, 'wal')).sort(), ['summaries'], 'the directories as they are now, no file');
      // The same as a full scan with the same exclusions.
      const full = await syncTree(src, join(base, `full${n}`), undefined, { clone: false, excludeFile });
      assert.deepEqual([...second.manifest.entries.keys()].sort(), [...full.manifest.entries.keys()].sort());
      assert.deepEqual(diffTrees(digestTree(join(base, `full${n}`)), digestTree(dst)), []);
    } finally {
      journal.close();
    }
  });

  test('a snapshot store inside the volume is neither watched nor copied, and the sentinel leaves no trace', async () => {
    const dir = join(base, `t${++n}`);
    const src = join(dir, 'vol');
    const storeTop = join(src, '.shadowcopy');
    mkdirSync(join(storeTop, 'snapshots'), { recursive: true });
    await populate(src);
    const dst = join(storeTop, 'snapshots', 'snap');
    const skipStore = (rel: string): boolean => rel === '.shadowcopy';
    const journal = await ChangeJournal.start({ root: src, sentinelDir: storeTop, sentinelName: 'in', exclude: [join(storeTop, 'snapshots')] });
    try {
      const first = await syncTree(src, dst, undefined, { clone: false, skip: skipStore });
      writeFileSync(join(src, 'd1/f1'), 'changed');
      const second = await syncTree(src, dst, first.manifest, { clone: false, skip: skipStore, journal });
      assert.equal(second.stats.mode, 'journal', second.stats.fallback);
      assert.equal(second.stats.copied, 1);
      assert.deepEqual(diffTrees(digestTree(src, ['.shadowcopy']), digestTree(dst)), []);
      assert.deepEqual(readdirSync(storeTop), ['snapshots'], 'no sentinel left');
    } finally {
      journal.close();
    }
  });

  test('a queue overflow (the consumer paused while writers go on) falls back to a full rescan, which is right', async () => {
    const { src, dst, opts } = layout();
    await populate(src);
    const queue = Number(spawnSync('cat', ['/proc/sys/fs/inotify/max_queued_events'], { encoding: 'utf8' }).stdout);
    // Each new file is three events (CREATE, MODIFY, CLOSE_WRITE).
    const files = Math.ceil(queue / 3) + 500;
    if (!(files <= 200_000)) return void test.skip?.(`max_queued_events is ${queue}: too many files to overflow it`);
    const journal = await ChangeJournal.start(opts);
    try {
      const first = await syncTree(src, dst, undefined, { clone: false });
      process.kill(journal.pid!, 'SIGSTOP'); // inotifywait stops reading: the kernel queue fills
      try {
        // In a directory already watched (a new one would only be watched once inotifywait runs again).
        for (let i = 0; i < files; i++) writeFileSync(join(src, 'd1', `flood-${i}`), 'x');
      } finally {
        process.kill(journal.pid!, 'SIGCONT');
      }
      writeFileSync(join(src, 'd1/f1'), 'after the flood');
      const second = await syncTree(src, dst, first.manifest, { clone: false, journal });
      assert.equal(second.stats.mode, 'full');
      assert.match(second.stats.fallback ?? '', /overflow/);
      assertSame(src, dst);
    } finally {
      journal.close();
    }
  });

  const unshareOk = spawnSync('unshare', ['-U', '-r', 'sh', '-c', 'echo 100 > /proc/sys/user/max_inotify_watches'], { encoding: 'utf8' }).status === 0;
  /** inotifywait in a user namespace of its own whose watch limit is `max`: a real ENOSPC, the host's limits untouched. */
  const limited = (max: number): string[] => ['unshare', '-U', '-r', 'sh', '-c', `echo ${max} > /proc/sys/user/max_inotify_watches && exec "$0" "$@"`];

  test('a watch that cannot be added (max_user_watches) means no journal: commit rescans everything', { skip: unshareOk ? false : 'needs unshare -U with per-namespace inotify limits' }, async () => {
    const { src, dst, opts } = layout();
    await populate(src); // 23 directories, and the store
    const journal = await ChangeJournal.start({ ...opts, wrap: limited(5) });
    try {
      assert.match(journal.failure ?? '', /upper limit on inotify watches/);
      const first = await syncTree(src, dst, undefined, { clone: false });
      writeFileSync(join(src, 'd1/f1'), 'changed');
      const second = await syncTree(src, dst, first.manifest, { clone: false, journal });
      assert.equal(second.stats.mode, 'full');
      assertSame(src, dst);
    } finally {
      journal.close();
    }
  });

  test('a new directory that cannot be watched makes the journal give up', { skip: unshareOk ? false : 'needs unshare -U with per-namespace inotify limits' }, async () => {
    const { src, dst, opts } = layout();
    await populate(src);
    let dirs = 0;
    for (const d of [src, opts.sentinelDir]) {
      const stack = [d];
      while (stack.length) {
        const p = stack.pop()!;
        if (p === opts.exclude[0]) continue;
        dirs++;
        for (const e of readdirSync(p, { withFileTypes: true })) if (e.isDirectory()) stack.push(join(p, e.name));
      }
    }
    const journal = await ChangeJournal.start({ ...opts, wrap: limited(dirs) });
    try {
      assert.equal(journal.failure, undefined);
      const first = await syncTree(src, dst, undefined, { clone: false });
      mkdirSync(join(src, 'one-too-many'));
      writeFileSync(join(src, 'one-too-many/f'), 'f');
      const second = await syncTree(src, dst, first.manifest, { clone: false, journal });
      assert.equal(second.stats.mode, 'full');
      assert.match(second.stats.fallback ?? '', /watch/i);
      assertSame(src, dst);
    } finally {
      journal.close();
    }
  });

  test('when most of the tree changed, a full rescan is used', async () => {
    const { src, dst, opts } = layout();
    mkdirSync(join(src, 'many'));
    for (let i = 0; i < 2000; i++) writeFileSync(join(src, 'many', `${i}`), 'x');
    await sleep(Number(RACY_MARGIN_NS / 1_000_000n) + 50);
    const journal = await ChangeJournal.start(opts);
    try {
      const first = await syncTree(src, dst, undefined, { clone: false });
      for (let i = 0; i < 1500; i++) writeFileSync(join(src, 'many', `${i}`), 'y');
      const second = await syncTree(src, dst, first.manifest, { clone: false, journal });
      assert.equal(second.stats.mode, 'full');
      assert.match(second.stats.fallback ?? '', /full scan is as cheap/);
      assertSame(src, dst);
    } finally {
      journal.close();
    }
  });

  test('a write through a shared mapping (no inotify event at all) is still copied', { skip: hasTool('python3') ? false : 'needs python3 to map a file' }, async () => {
    const { src, dst, opts } = layout();
    await populate(src);
    writeFileSync(join(src, 'mapped.db'), Buffer.alloc(8192, 'a'));
    await sleep(Number(RACY_MARGIN_NS / 1_000_000n) + 50);
    const journal = await ChangeJournal.start(opts);
    const first = await syncTree(src, dst, undefined, { clone: false });
    // Opens, maps, closes the descriptor, writes through the mapping and keeps it: the only
    // event is IN_OPEN, which no snapshot cares about; CLOSE_WRITE comes only at unmap.
    const py = spawn('python3', ['-c', `
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
os.close(fd)
m[0:5] = b'bbbbb'
print('written', flush=True)
sys.stdin.read()
`, join(src, 'mapped.db')], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        py.stdout.on('data', (d: Buffer) => d.toString().includes('written') && resolve());
        py.on('exit', (code) => reject(new Error(`python3 exited ${code}`)));
      });
      const second = await syncTree(src, dst, first.manifest, { clone: false, journal });
      assert.equal(second.stats.mode, 'journal', second.stats.fallback);
      assertSame(src, dst);
    } finally {
      py.stdin.end();
      journal.close();
    }
  });

  test('closing is idempotent and leaves no process behind', async () => {
    const { opts } = layout();
    const journal = await ChangeJournal.start(opts);
    const pid = journal.pid!;
    journal.close();
    journal.close();
    for (let i = 0; i < 50; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await sleep(20);
    }
    assert.fail(`inotifywait ${pid} still running`);
  });
});
