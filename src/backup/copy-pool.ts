// Copying and hashing files on every core. Backups and restores move many small files; in
// one thread the per-file system calls, not the bytes, bound the speed (the bytes hash at
// over 1 GB/s with SHA extensions). Jobs go to worker threads in batches, so the message
// cost is paid per batch, not per file.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

export interface CopyJob {
  /** Read from here. */
  from: string;
  /** Write a copy here (mode 0600, parent directories made); absent: only hash. */
  to?: string;
  /** fsync the copy before answering. */
  fsync?: boolean;
}

export interface CopyResult {
  sha256?: string;
  size?: number;
  /** errno code and message when the job failed. */
  error?: { code: string; message: string };
}

// Plain JavaScript run with `eval`: the same code serves the build and tsx, which does not
// hand its loader to workers on Node 20.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { createHash } = require('node:crypto');
const buf = Buffer.allocUnsafe(1 << 20);
const made = new Set();
function one(job) {
  const hash = createHash('sha256');
  const src = fs.openSync(job.from, 'r');
  let dst;
  let size = 0;
  try {
    if (job.to) {
      const dir = path.dirname(job.to);
      if (!made.has(dir)) { fs.mkdirSync(dir, { recursive: true, mode: 0o700 }); made.add(dir); }
      dst = fs.openSync(job.to, 'w', 0o600);
    }
    for (;;) {
      const n = fs.readSync(src, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      size += n;
      if (dst !== undefined) { let off = 0; while (off < n) off += fs.writeSync(dst, buf, off, n - off); }
      if (n < buf.length) break;
    }
    if (dst !== undefined && job.fsync) fs.fsyncSync(dst);
  } finally {
    fs.closeSync(src);
    if (dst !== undefined) fs.closeSync(dst);
  }
  return { sha256: hash.digest('hex'), size };
}
parentPort.on('message', ({ id, jobs }) => {
  const results = jobs.map((job) => {
    try { return one(job); } catch (e) { return { error: { code: e.code || 'EIO', message: e.message } }; }
  });
  parentPort.postMessage({ id, results });
});
`;

const BATCH = 64;

interface Pending {
  resolve: (r: CopyResult[]) => void;
  reject: (e: Error) => void;
}

export class CopyPool {
  private readonly workers: { w: Worker; inFlight: number }[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private batch: { job: CopyJob; done: (r: CopyResult) => void }[] = [];

  constructor(size = Math.max(1, Math.min(4, availableParallelism()))) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.on('message', ({ id, results }: { id: number; results: CopyResult[] }) => {
        const slot = this.workers.find((x) => x.w === w);
        if (slot) slot.inFlight--;
        const p = this.pending.get(id);
        this.pending.delete(id);
        p?.resolve(results);
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      w.unref();
      this.workers.push({ w, inFlight: 0 });
    }
  }

  /** Queues one job; it runs when its batch is full or on `flush`. */
  submit(job: CopyJob): Promise<CopyResult> {
    return new Promise((resolve) => {
      this.batch.push({ job, done: resolve });
      if (this.batch.length >= BATCH) this.send();
    });
  }

  /** Sends what is queued. */
  flush(): void {
    if (this.batch.length) this.send();
  }

  private send(): void {
    const batch = this.batch;
    this.batch = [];
    const slot = this.workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    slot.inFlight++;
    const id = this.nextId++;
    const p = new Promise<CopyResult[]>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    slot.w.ref();
    p.then(
      (results) => {
        if (slot.inFlight === 0) slot.w.unref();
        results.forEach((r, i) => batch[i]!.done(r));
      },
      (e: Error) => batch.forEach((b) => b.done({ error: { code: 'EWORKER', message: e.message } })),
    );
    slot.w.postMessage({ id, jobs: batch.map((b) => b.job) });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((x) => x.w.terminate()));
  }
}
