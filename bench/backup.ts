// bench/backup: `shadowcopy backup` (the whole requester flow, btrfs snapshot included)
// against `tar -cf - -C SNAPSHOT . | cat >/dev/null` on a snapshot of the same data, and
// `shadowcopy restore` against `tar -xf` of the same data; 10,000 files, 200 MB, one run.
// Backups and restores go to a tmpfs, as tar's output goes to a pipe or the same tmpfs.
// Deleting what a run made (the backup before, a restored tree) is not timed.
// Also printed, without a goal, floors: the least the same job costs here with nothing of
// ours in it.
// - Under a restore that checks every checksum before it writes: hashing the stored files on
//   two threads, then two tar -x at once (native code for the writing).
// - The same job in bare Node: two worker threads (whole directories each) verify every
//   stored file, then write the tree (open, write, futimes, close), with no manifest,
//   journal, owner, mode or durability: timed with the threads' start
//   (restore_floor_node_vs_tar), as any restore process must start them, and without it
//   (restore_floor_node_passes_vs_tar). The goal's figure cannot go under these in this
//   language.
// - Under a backup: the bare Node copy, two worker threads reading a fresh snapshot, hashing,
//   writing, with nothing else (no snapshot made, no manifest); and the same plus what making
//   and deleting a snapshot costs (backup_floor_node_copy_with_snapshot_vs_tar), which the
//   backup's time includes and tar's does not.
//
// Which snapshot tar reads decides the figure. A backup reads the snapshot it has just made,
// and btrfs caches a snapshot's pages apart from the volume's: nothing of it is in memory.
// So the goal's tar reads a snapshot in that same state: made just before it runs (untimed),
// deleted after (untimed); only tar is timed, while the backup's time includes making and
// deleting its snapshot. For comparison two more figures, without a goal: tar re-reading one
// snapshot whose pages are cached after its first run (tar_cached_snapshot_ms), and tar timed
// with making and deleting its snapshot, as a tar-based backup of the live volume runs
// (tar_with_snapshot_ms).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { runBackup } from '../src/backup/run-backup.js';
import { runRestore } from '../src/backup/run-restore.js';
import { Coordinator } from '../src/coordinator/index.js';
import { SnapshotManager } from '../src/providers/index.js';
import { BackupComponents } from '../src/requester/index.js';
import { loopFsUnavailable, makeLoopFs } from '../src/testing/loopfs.js';
import { makeTmpfs, tmpfsUnavailable } from '../src/testing/tmpfs.js';
import { interleavedMedianMs, report } from './report.js';

const FILES = 10_000;
const TOTAL = 200 * 1024 * 1024;

function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
}

// The bare-Node floors' worker: `verify` reads and hashes its files against their checksums,
// `write` creates each anew (O_EXCL) with the stored content and its times, `copy` backs up
// (read, hash, write); the bench's files fit one read of its buffer. The bare-Node floors start
// its threads inside the timed part, as any run must start them; the native floor's hashing
// counts only the hashing.
const BARE_WORKER = `
  const { parentPort } = require('node:worker_threads');
  const fs = require('node:fs');
  const { createHash } = require('node:crypto');
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const buf = Buffer.allocUnsafe(1 << 20);
  const readAll = (path) => { const fd = fs.openSync(path, 'r'); try { return buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, null)); } finally { fs.closeSync(fd); } };
  parentPort.on('message', ({ op, files, to }) => {
    if (op === 'verify') {
      for (const f of files) if (createHash('sha256').update(readAll(f.src)).digest('hex') !== f.sha256) throw new Error('checksum mismatch: ' + f.src);
    } else if (op === 'write') {
      for (const f of files) {
        const data = readAll(f.src);
        const fd = fs.openSync(to + '/' + f.rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
        fs.writeSync(fd, data); fs.futimesSync(fd, f.atimeMs / 1000, f.mtimeMs / 1000); fs.closeSync(fd);
      }
    } else {
      const made = new Set();
      for (const f of files) {
        const dir = to + '/' + f.rel.slice(0, f.rel.lastIndexOf('/'));
        if (!made.has(dir)) { fs.mkdirSync(dir, { recursive: true }); made.add(dir); }
        const src = fs.openSync(f.src, 'r'); fs.fstatSync(src);
        const dst = fs.openSync(to + '/' + f.rel, 'w', 0o600);
        const h = createHash('sha256');
        for (;;) { const n = fs.readSync(src, buf, 0, buf.length, null); if (n === 0) break; h.update(buf.subarray(0, n)); fs.writeSync(dst, buf, 0, n); if (n < buf.length) break; }
        h.digest('hex'); fs.closeSync(src); fs.closeSync(dst);
      }
    }
    parentPort.postMessage('done');
  });
  parentPort.postMessage('ready');`;

interface BareFile {
  src: string;
  rel: string;
  sha256?: string;
  atimeMs?: number;
  mtimeMs?: number;
}

/**
 * Runs the bare worker's steps on two threads, each with half the files. Returns the time the
 * steps took once both threads had started (the callers that time the whole call count the start).
 */
async function onTwoBareThreads(files: readonly BareFile[], steps: { op: 'verify' | 'write' | 'copy'; to?: string; before?: () => void }[]): Promise<number> {
  // Whole directories to each thread, alternately: two threads creating files in one directory
  // wait for each other on its lock.
  const dirIndex = new Map<string, number>();
  const half = (f: BareFile): number => {
    const dir = f.rel.slice(0, f.rel.lastIndexOf('/'));
    if (!dirIndex.has(dir)) dirIndex.set(dir, dirIndex.size);
    return dirIndex.get(dir)! % 2;
  };
  const workers = [0, 1].map((k) => ({ w: new Worker(BARE_WORKER, { eval: true }), files: files.filter((f) => half(f) === k) }));
  const next = (): Promise<unknown> => Promise.all(workers.map(({ w }) => new Promise((r, j) => (w.once('message', r), w.once('error', j)))));
  try {
    await next();
    const t = performance.now();
    for (const step of steps) {
      step.before?.();
      const done = next();
      for (const { w, files: half } of workers) w.postMessage({ op: step.op, files: half, to: step.to });
      await done;
    }
    return performance.now() - t;
  } finally {
    await Promise.all(workers.map(({ w }) => w.terminate()));
  }
}
const why = loopFsUnavailable('btrfs') ?? tmpfsUnavailable();
if (why) {
  console.log(`bench: backup skipped: ${why}`);
} else {
  const fs = makeLoopFs('btrfs', { sizeMb: 1024 });
  const out = makeTmpfs(1600);
  try {
    // 10,000 files of varied sizes averaging 20 KiB, in 100 directories.
    const data = join(fs.mountPoint, 'data');
    const pool = randomBytes(TOTAL / FILES * 2);
    for (let d = 0; d < 100; d++) {
      mkdirSync(join(data, `d${d}`), { recursive: true });
      for (let f = 0; f < FILES / 100; f++) {
        const size = Math.floor(((d * 100 + f) % 100) / 100 * (TOTAL / FILES) * 2);
        writeFileSync(join(data, `d${d}`, `f${f}`), pool.subarray(0, size));
      }
    }
    const relFiles = readdirSync(data).sort().flatMap((d) => readdirSync(join(data, d)).sort().map((f) => `${d}/${f}`));
    sh(`sync; btrfs subvolume snapshot -r ${fs.mountPoint} ${fs.mountPoint}/bench-snap >/dev/null`);
    const archive = join(out.mountPoint, 'data.tar');
    sh(`tar -cf ${archive} -C ${fs.mountPoint}/bench-snap/data .`);

    const stateDir = join(out.mountPoint, 'state');
    const snapshots = await SnapshotManager.open({ stateDir });
    const co = new Coordinator({ snapshots, stateDir });
    let n = 0;
    const backups: string[] = [];
    // btrfs cleans a deleted snapshot in the background: wait for it, untimed, so that work
    // does not land in the next measurement.
    const settle = (): void => sh(`btrfs subvolume sync ${fs.mountPoint}`);
    // tar on a snapshot just made: made before the timed part, deleted after it.
    let snapshotToRead = '';
    const freshSnapshot = (): string => {
      snapshotToRead = `${fs.mountPoint}/bench-fresh-${n++}`;
      sh(`btrfs subvolume snapshot -r ${fs.mountPoint} ${snapshotToRead} >/dev/null`);
      return snapshotToRead;
    };
    const times = await interleavedMedianMs(
      {
        tar: {
          before: freshSnapshot,
          run: () => {
            sh(`tar -cf - -C ${snapshotToRead}/data . | cat >/dev/null`);
            return () => {
              sh(`btrfs subvolume delete ${snapshotToRead} >/dev/null`);
              settle();
            };
          },
        },
        tarCached: () => sh(`tar -cf - -C ${fs.mountPoint}/bench-snap/data . | cat >/dev/null`),
        copyFloor: {
          before: freshSnapshot,
          run: async () => {
            const to = join(out.mountPoint, `floor-copy-${n++}`);
            await onTwoBareThreads(
              relFiles.map((rel) => ({ src: `${snapshotToRead}/data/${rel}`, rel })),
              [{ op: 'copy', to }],
            );
            return () => {
              rmSync(to, { recursive: true, force: true });
              sh(`btrfs subvolume delete ${snapshotToRead} >/dev/null`);
              settle();
            };
          },
        },
        tarWithSnapshot: () => {
          const snap = `${fs.mountPoint}/bench-fresh-${n++}`;
          sh(`btrfs subvolume snapshot -r ${fs.mountPoint} ${snap} >/dev/null && tar -cf - -C ${snap}/data . | cat >/dev/null && btrfs subvolume delete ${snap} >/dev/null`);
          return settle;
        },
        backup: async () => {
          const to = join(out.mountPoint, `backup-${n++}`);
          const s = await BackupComponents.create({ stream: () => co.connectRequester() });
          await runBackup(s, { to, paths: [data] });
          await s.release();
          backups.push(to);
          // Keep one backup for the restore runs; the rest only cost memory.
          return () => {
            if (backups.length > 1) rmSync(backups.shift()!, { recursive: true, force: true });
            settle();
          };
        },
      },
      3,
      1,
    );
    report('backup', 'tar_create_ms', times.tar);
    report('backup', 'shadowcopy_backup_ms', times.backup);
    report('backup', 'backup_vs_tar', times.backup / times.tar, { op: '<=', target: 1.25 });
    report('backup', 'tar_cached_snapshot_ms', times.tarCached);
    report('backup', 'backup_vs_tar_cached_snapshot', times.backup / times.tarCached);
    report('backup', 'tar_with_snapshot_ms', times.tarWithSnapshot);
    report('backup', 'backup_vs_tar_with_snapshot', times.backup / times.tarWithSnapshot);
    report('backup', 'backup_floor_node_copy_ms', times.copyFloor);
    report('backup', 'backup_floor_node_copy_vs_tar', times.copyFloor / times.tar);
    // The same copy plus what making and deleting the snapshot costs (tar with its snapshot
    // made and deleted, less tar alone): what the goal's backup pays at least.
    report('backup', 'backup_floor_node_copy_with_snapshot_vs_tar', (times.copyFloor + times.tarWithSnapshot - times.tar) / times.tar);

    const from = backups[0]!;
    const storedFiles: BareFile[] = (JSON.parse(readFileSync(join(from, 'manifest.json'), 'utf8')) as { files: { kind: string; path: string; stored?: string; sha256?: string; atimeMs: number; mtimeMs: number }[] }).files
      .filter((f) => f.kind === 'file' && f.stored)
      .map((f) => ({ src: join(from, f.stored!), rel: f.path.slice(data.length + 1), sha256: f.sha256!, atimeMs: f.atimeMs, mtimeMs: f.mtimeMs }));
    const storedDirs = [...new Set(storedFiles.map((f) => f.rel.slice(0, f.rel.lastIndexOf('/'))))];
    let r = 0;
    // The bare-Node floor's two passes alone, once its threads had started (warm-up included,
    // dropped below).
    const passes: number[] = [];
    const dest = (kind: string): string => {
      const d = join(out.mountPoint, `${kind}-${r++}`);
      mkdirSync(d);
      return d;
    };
    const restoreTimes = await interleavedMedianMs(
      {
        tarx: () => {
          const d = dest('untar');
          sh(`tar -xf ${archive} -C ${d}`);
          return () => rmSync(d, { recursive: true, force: true });
        },
        restore: async () => {
          const d = dest('restore');
          await runRestore({ from, to: d, stateDir });
          return () => rmSync(d, { recursive: true, force: true });
        },
        nodeFloor: async () => {
          const d = dest('floor-node');
          passes.push(await onTwoBareThreads(storedFiles, [{ op: 'verify' }, { op: 'write', to: d, before: () => storedDirs.forEach((sub) => mkdirSync(join(d, sub), { recursive: true })) }]));
          return () => rmSync(d, { recursive: true, force: true });
        },
      },
      3,
      1,
    );
    report('backup', 'tar_extract_ms', restoreTimes.tarx);
    report('backup', 'shadowcopy_restore_ms', restoreTimes.restore);
    report('backup', 'restore_vs_tar', restoreTimes.restore / restoreTimes.tarx, { op: '<=', target: 1.25 });
    report('backup', 'restore_floor_node_ms', restoreTimes.nodeFloor);
    report('backup', 'restore_floor_node_vs_tar', restoreTimes.nodeFloor / restoreTimes.tarx);
    const passesMs = passes.slice(1).sort((x, y) => x - y)[Math.floor((passes.length - 1) / 2)]!;
    report('backup', 'restore_floor_node_passes_ms', passesMs);
    report('backup', 'restore_floor_node_passes_vs_tar', passesMs / restoreTimes.tarx);

    // The floor under any restore that checks every checksum before it writes: the stored
    // files hashed on two threads, then the tree written by two tar -x at once (each half of
    // the archive). No manifest, journal, durability or thread start-up in it: the two parts
    // alone, each on both cores.
    const dirs = readdirSync(data).sort();
    const halves = [dirs.slice(0, dirs.length / 2), dirs.slice(dirs.length / 2)].map((ds, i) => {
      const tar = join(out.mountPoint, `half-${i}.tar`);
      sh(`tar -cf ${tar} -C ${fs.mountPoint}/bench-snap/data ${ds.join(' ')}`);
      return tar;
    });
    const floorRuns: { hash: number[]; write: number[] } = { hash: [], write: [] };
    for (let i = 0; i < 1 + 3; i++) {
      // The stored files hashed (and checked) on two threads: the threads' start is not counted.
      const hash = await onTwoBareThreads(storedFiles, [{ op: 'verify' }]);
      const d = dest('floor');
      const t = performance.now();
      sh(halves.map((h) => `tar -xf ${h} -C ${d} &`).join(' ') + ' wait');
      const write = performance.now() - t;
      rmSync(d, { recursive: true, force: true });
      if (i === 0) continue; // warm-up
      floorRuns.hash.push(hash);
      floorRuns.write.push(write);
    }
    const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
    const floor = { hash: median(floorRuns.hash), write: median(floorRuns.write) };
    report('backup', 'restore_floor_hash_2_threads_ms', floor.hash);
    report('backup', 'restore_floor_write_2_tar_x_ms', floor.write);
    report('backup', 'restore_floor_vs_tar', (floor.hash + floor.write) / restoreTimes.tarx);
    await co.shutdown();
  } finally {
    sh(`btrfs subvolume delete ${fs.mountPoint}/bench-snap >/dev/null 2>&1 || true`);
    out.cleanup();
    fs.cleanup();
  }
}
