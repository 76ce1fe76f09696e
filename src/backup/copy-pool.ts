// Copying and hashing files on every core. Backups and restores move many small files; in
// one thread the per-file system calls, not the bytes, bound the speed (the bytes hash at
// over 1 GB/s with SHA extensions). Jobs go to worker threads in batches, so the message
// cost is paid per batch, not per file, and each job does all its per-file system calls in
// the worker: open, fstat, read, hash, write, and for a restore the owner, mode and times
// set on the open file rather than by path.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** The attributes a backup records for a file, taken with fstat on the file it copies. */
export interface FileStat {
  size: number;
  mode: number;
  uid: number;
  gid: number;
  atimeMs: number;
  mtimeMs: number;
}

export type CopyJob =
  /**
   * Back up one regular file: stat it on the open descriptor, copy it to `to` (mode 0600,
   * parent directories made) and hash it, reading it once. Anything but a regular file fails.
   */
  | { op: 'backup'; from: string; to: string }
  /**
   * Back up several regular files of one directory (`fromDir/name` to `toDir/name`), as
   * `backup` does each: one job and one compact answer for them all, so the thread that
   * walks the tree spends almost nothing per file.
   */
  | { op: 'backupMany'; fromDir: string; toDir: string; names: string[] }
  /** Read and hash several files (`dir/name`: verifying stored copies), answered by column. */
  | { op: 'hashMany'; dir: string; names: string[] }
  /**
   * Stage restored files into one existing directory, given by column: each a new file
   * `toDir/names[i]` (which must not exist) with `from[i]`'s content, then owner (`uid[i]`,
   * `gid[i]`; -1: what a new file gets), mode and times set on it. Answered by column; a file
   * that fails fails alone.
   */
  | { op: 'stageMany'; toDir: string; names: string[]; from: string[]; mode: number[]; uid: number[]; gid: number[]; atimeMs: number[]; mtimeMs: number[] };

export interface CopyResult {
  /** For `backup`: the checksum of what was read. */
  sha256?: string;
  /** For `backup`: bytes read. */
  size?: number;
  /** For `backup`: the file's attributes. */
  stat?: FileStat;
  /** errno code and message when the job failed. */
  error?: { code: string; message: string };
  /** For `backupMany`: what `backup` gives, by column, one row per name. */
  many?: ManyResult;
  /** For `hashMany` (checksums and sizes) and `stageMany` (sizes): one row per name. */
  column?: ColumnResult;
}

/** The answer of `hashMany` and `stageMany`. */
export interface ColumnResult {
  /** `hashMany`: the checksums one after the other, 64 hex digits each (zeros for a failed file). */
  sha256?: string;
  /** Bytes read of each file (0 for a failed one). */
  size: number[];
  /** The files that failed: index into `names`, errno code and message. */
  errors: [index: number, code: string, message: string][];
}

export interface ManyResult {
  /** The checksums one after the other, 64 hex digits each (zeros for a failed file). */
  sha256: string;
  size: number[];
  mode: number[];
  uid: number[];
  gid: number[];
  atimeMs: number[];
  mtimeMs: number[];
  /** The files that failed: index into `names`, errno code and message. */
  errors: [index: number, code: string, message: string][];
}

// Plain JavaScript run with `eval`: the same code serves the build and tsx, which does not
// hand its loader to workers on Node 20.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
// A niceness for this thread alone (Linux: setpriority on the thread id), so the copying
// yields the CPU to the other threads of its scheduling group (under autogroup, its session).
// Not being allowed to is no reason to fail.
if (workerData && workerData.nice) {
  try { require('node:os').setPriority(Number(fs.readlinkSync('/proc/thread-self').split('/').pop()), workerData.nice); } catch {}
}
const path = require('node:path');
const { createHash } = require('node:crypto');
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const buf = Buffer.allocUnsafe(1 << 20);
const made = new Set();
// Copies (and hashes) from src to dst until the end; returns the bytes read.
function pump(src, dst, hash) {
  let size = 0;
  for (;;) {
    const n = fs.readSync(src, buf, 0, buf.length, null);
    if (n === 0) break;
    if (hash) hash.update(buf.subarray(0, n));
    size += n;
    if (dst !== undefined) { let off = 0; while (off < n) off += fs.writeSync(dst, buf, off, n - off); }
    // A short read of a regular file is its end: no second read to learn that.
    if (n < buf.length) break;
  }
  return size;
}
function hashOne(from) {
  const src = fs.openSync(from, O_RDONLY);
  try {
    const hash = createHash('sha256');
    const size = pump(src, undefined, hash);
    return { sha256: hash.digest('hex'), size };
  } finally {
    fs.closeSync(src);
  }
}
function backup(job) {
  // O_NONBLOCK: a FIFO put where a file was must not hang the open; it fails the check below.
  const src = fs.openSync(job.from, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  let dst;
  try {
    const st = fs.fstatSync(src);
    if (!st.isFile()) {
      const e = new Error(job.from + ' is not a regular file');
      e.code = 'EINVAL';
      throw e;
    }
    const dir = path.dirname(job.to);
    if (!made.has(dir)) { fs.mkdirSync(dir, { recursive: true, mode: 0o700 }); made.add(dir); }
    // Backed-up files keep private permissions whatever their mode was: the manifest holds the mode.
    dst = fs.openSync(job.to, O_WRONLY | O_CREAT | O_TRUNC, 0o600);
    const hash = createHash('sha256');
    const size = pump(src, dst, hash);
    return { sha256: hash.digest('hex'), size, stat: { size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, atimeMs: st.atimeMs, mtimeMs: st.mtimeMs } };
  } finally {
    fs.closeSync(src);
    if (dst !== undefined) fs.closeSync(dst);
  }
}
// What a new file gets without asking: owner and group of this thread (or the directory's group
// when it is set-group-id), and the mode given to open less the umask. A restore sets owner and
// mode only where they differ: two system calls fewer per file in the usual case, and system
// calls are most of a small file's cost. Both are learnt again for each batch: the umask
// read from /proc (process.umask() reads it by setting it, which is not safe beside threads
// creating files; unknown, it is taken as the widest, so every mode is set), and each
// directory's group with one stat.
const euid = process.geteuid();
const egid = process.getegid();
let umask = 0o777;
function readUmask() {
  try {
    const m = /^Umask:\\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/thread-self/status', 'latin1'));
    umask = m ? parseInt(m[1], 8) : 0o777;
  } catch {
    umask = 0o777;
  }
}
const dirGroup = new Map();
function groupOfNewFileIn(dir) {
  let g = dirGroup.get(dir);
  if (g === undefined) {
    const st = fs.statSync(dir);
    g = st.mode & 0o2000 ? st.gid : egid; // S_ISGID
    dirGroup.set(dir, g);
  }
  return g;
}
// Runs one(i) for each name of a many-file job into the columns r; a file that fails fails
// alone: its row keeps zeros (64 of them in the checksums, when r has them).
function eachName(job, r, one) {
  for (let i = 0; i < job.names.length; i++) {
    try {
      one(i);
    } catch (e) {
      if (r.sha256 !== undefined) r.sha256 += '0'.repeat(64);
      r.errors.push([i, e.code || 'EIO', e.message]);
    }
  }
  return r;
}
const zeros = (n) => new Array(n).fill(0);
function backupMany(job) {
  const n = job.names.length;
  const r = { sha256: '', size: zeros(n), mode: zeros(n), uid: zeros(n), gid: zeros(n), atimeMs: zeros(n), mtimeMs: zeros(n), errors: [] };
  return { many: eachName(job, r, (i) => {
    const one = backup({ from: job.fromDir + '/' + job.names[i], to: job.toDir + '/' + job.names[i] });
    r.sha256 += one.sha256;
    r.size[i] = one.size;
    r.mode[i] = one.stat.mode;
    r.uid[i] = one.stat.uid;
    r.gid[i] = one.stat.gid;
    r.atimeMs[i] = one.stat.atimeMs;
    r.mtimeMs[i] = one.stat.mtimeMs;
  }) };
}
function hashMany(job) {
  const r = { sha256: '', size: zeros(job.names.length), errors: [] };
  return { column: eachName(job, r, (i) => {
    const one = hashOne(job.dir + '/' + job.names[i]);
    r.sha256 += one.sha256;
    r.size[i] = one.size;
  }) };
}
function stageMany(job) {
  const r = { size: zeros(job.names.length), errors: [] };
  return { column: eachName(job, r, (i) => {
    const uid = job.uid[i];
    const gid = job.gid[i];
    r.size[i] = stageOne({ from: job.from[i], to: job.toDir + '/' + job.names[i], mode: job.mode[i], uid: uid < 0 ? undefined : uid, gid: gid < 0 ? undefined : gid, atimeMs: job.atimeMs[i], mtimeMs: job.mtimeMs[i] }).size;
  }) };
}
function stageOne(job) {
  const src = fs.openSync(job.from, O_RDONLY);
  let dst;
  try {
    const perm = job.mode & 0o777;
    const setId = (job.mode & 0o7000) !== 0;
    // O_EXCL: the staged name is new; whatever is there (a planted symlink) is not followed.
    // Made with its own permissions (set-id bits aside): never more open than it will be.
    dst = fs.openSync(job.to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, perm);
    const size = pump(src, dst, undefined);
    const chown = job.uid !== undefined && (job.uid !== euid || (job.gid !== undefined && job.gid !== groupOfNewFileIn(path.dirname(job.to))));
    // Owner before mode: chown clears the set-id bits.
    if (chown) fs.fchownSync(dst, job.uid, job.gid === undefined ? -1 : job.gid);
    if (setId || (perm & umask) !== 0) fs.fchmodSync(dst, job.mode & 0o7777);
    fs.futimesSync(dst, job.atimeMs / 1000, job.mtimeMs / 1000);
    return { size };
  } finally {
    fs.closeSync(src);
    if (dst !== undefined) fs.closeSync(dst);
  }
}
const ops = { hashMany, backup, backupMany, stageMany };
parentPort.on('message', ({ id, jobs }) => {
  // A pool may outlive a change of umask or of a directory's group.
  if (jobs.some((job) => job.op === 'stageMany')) {
    readUmask();
    dirGroup.clear();
  }
  const results = jobs.map((job) => {
    try { return ops[job.op](job); } catch (e) { return { error: { code: e.code || 'EIO', message: e.message } }; }
  });
  parentPort.postMessage({ id, results });
});
`;

/** Jobs per message. */
const BATCH = 64;
/**
 * Batches handed to one worker before it answers (about a thousand files). More stay queued
 * here and go to whichever worker answers first, so a worker slowed by the machine's load
 * does not hold up the end; enough are handed out that a worker does not wait for this
 * thread, busy or descheduled, to send its next batch (4 made backups ~20% slower).
 */
const IN_FLIGHT = 16;

interface Queued {
  job: CopyJob;
  done: (r: CopyResult) => void;
}

interface Slot {
  w: Worker;
  inFlight: number;
}

export class CopyPool {
  private readonly slots: Slot[] = [];
  private readonly sent = new Map<number, { slot: Slot; batch: Queued[] }>();
  private nextId = 0;
  /** Jobs not yet in a full batch. */
  private open: Queued[] = [];
  /** Full batches waiting for a worker. */
  private readonly waiting: Queued[][] = [];

  /**
   * Starts the workers now: create the pool early and they boot while other work runs.
   * `nice` (0–19) lowers the workers' CPU priority, on Linux; 0 leaves it as the process's.
   */
  constructor(size = Math.max(1, Math.min(4, availableParallelism())), opts: { nice?: number } = {}) {
    for (let i = 0; i < size; i++) {
      const slot: Slot = { w: new Worker(WORKER_SOURCE, { eval: true, workerData: { nice: opts.nice ?? 0 } }), inFlight: 0 };
      slot.w.on('message', ({ id, results }: { id: number; results: CopyResult[] }) => {
        const s = this.sent.get(id);
        if (!s) return;
        this.sent.delete(id);
        slot.inFlight--;
        this.dispatch();
        if (slot.inFlight === 0) slot.w.unref();
        results.forEach((r, i) => s.batch[i]!.done(r));
      });
      slot.w.on('error', (e) => this.fail(slot, e));
      slot.w.on('exit', (code) => this.fail(slot, new Error(`a copy worker exited (code ${code})`)));
      slot.w.unref();
      this.slots.push(slot);
    }
  }

  /** Queues one job; it is sent when its batch is full or on `flush`. */
  submit(job: CopyJob): Promise<CopyResult> {
    return new Promise((done) => {
      this.open.push({ job, done });
      // A job of many files is a batch of its own, so the workers share them evenly.
      if (this.open.length >= BATCH || job.op.endsWith('Many')) this.seal();
    });
  }

  /** Runs jobs and returns their results in order; `onResult` hears each as it comes (for progress). */
  run(jobs: readonly CopyJob[], onResult?: (r: CopyResult, i: number) => void): Promise<CopyResult[]> {
    const all = Promise.all(jobs.map((j, i) => (onResult ? this.submit(j).then((r) => (onResult(r, i), r)) : this.submit(j))));
    this.flush();
    return all;
  }

  /** Sends what is queued. */
  flush(): void {
    if (this.open.length) this.seal();
  }

  private seal(): void {
    this.waiting.push(this.open);
    this.open = [];
    this.dispatch();
  }

  private dispatch(): void {
    if (this.slots.length === 0) {
      for (const q of this.waiting.splice(0).flat()) q.done({ error: { code: 'EWORKER', message: 'no copy worker is running (the pool was closed, or its workers died)' } });
      return;
    }
    while (this.waiting.length) {
      const slot = this.slots.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
      if (slot.inFlight >= IN_FLIGHT) return;
      const batch = this.waiting.shift()!;
      const id = this.nextId++;
      this.sent.set(id, { slot, batch });
      slot.inFlight++;
      slot.w.ref();
      slot.w.postMessage({ id, jobs: batch.map((b) => b.job) });
    }
  }

  /** A worker that died fails what it held; the others carry on with the rest. */
  private fail(slot: Slot, e: Error): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    for (const [id, s] of this.sent) {
      if (s.slot !== slot) continue;
      this.sent.delete(id);
      for (const q of s.batch) q.done({ error: { code: 'EWORKER', message: e.message } });
    }
    this.dispatch();
  }

  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.w.terminate()));
  }
}
