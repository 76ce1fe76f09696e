// The process that holds SQLite write locks for SqliteEngine (forked with an IPC channel).
// better-sqlite3 is synchronous and SQLite's busy handler sleeps in the calling thread, so
// waiting for a lock (or running a checkpoint or integrity_check) in the host would stall
// its event loop; and POSIX record locks belong to a process, so only a process of its own
// keeps them safe from the host closing a descriptor of the same file (see engine.ts).
// Holding an open transaction costs nothing here; the process just waits for the next message.
import Database from 'better-sqlite3';

export type LockRequest =
  | { id: number; op: 'freeze'; paths: string[]; busyTimeoutMs: number }
  | { id: number; op: 'release' }
  | { id: number; op: 'verify'; path: string };

export interface FrozenDatabase {
  path: string;
  journalMode: string;
  /** WAL frames still in the -wal file after the checkpoints (0 when the main file is complete). */
  walFramesLeft: number;
  lockWaitMs: number;
}

export type LockReply =
  | { id: number; ok: true; frozen?: FrozenDatabase[]; integrity?: string[] }
  | { id: number; ok: false; error: { message: string; sqliteCode?: string; path?: string } };

interface Held {
  path: string;
  conn: Database.Database;
}

let held: Held[] = [];

function releaseAll(): void {
  // Roll back and close in reverse order; a close failure must not keep other locks held.
  for (const h of held.reverse()) {
    try {
      if (h.conn.inTransaction) h.conn.exec('ROLLBACK');
    } catch {
      /* closing below drops the lock anyway */
    }
    try {
      h.conn.close();
    } catch {
      /* already closed */
    }
  }
  held = [];
}

function freezeOne(path: string, busyTimeoutMs: number): FrozenDatabase {
  const conn = new Database(path, { fileMustExist: true, timeout: busyTimeoutMs });
  try {
    const journalMode = String(conn.pragma('journal_mode', { simple: true })).toLowerCase();
    const t0 = performance.now();
    if (journalMode === 'wal') {
      // TRUNCATE first so the snapshot carries an (almost) empty -wal and a complete main file.
      conn.pragma('wal_checkpoint(TRUNCATE)');
    }
    conn.exec('BEGIN IMMEDIATE');
    const lockWaitMs = performance.now() - t0;
    let walFramesLeft = 0;
    if (journalMode === 'wal') {
      // Commits that slipped in between the checkpoint and BEGIN IMMEDIATE are in the -wal
      // (part of the component, so the snapshot is consistent either way). A passive
      // checkpoint from a second connection copies them into the main file while we hold the
      // write lock (it needs no writer lock); frames a reader still pins stay in the -wal.
      //
      // busy = 1 means another connection's checkpoint holds the checkpointer lock: an
      // application's auto-checkpoint, begun after its last commit, may still be writing WAL
      // pages into the main file (checkpoints need no writer lock). The snapshot must not
      // start until ours gets the lock: then no checkpoint is running, and none can start,
      // since nothing can commit while we hold the write lock.
      const side = new Database(path, { fileMustExist: true, timeout: busyTimeoutMs });
      try {
        const deadline = performance.now() + busyTimeoutMs;
        const nap = new Int32Array(new SharedArrayBuffer(4));
        for (;;) {
          const r = side.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
          const row = r[0];
          if (!row || row.busy === 0) {
            walFramesLeft = row && row.log >= 0 ? row.log - row.checkpointed : 0;
            break;
          }
          if (performance.now() > deadline) {
            throw Object.assign(new Error(`another connection kept checkpointing ${path} for ${busyTimeoutMs} ms`), { code: 'SQLITE_BUSY' });
          }
          Atomics.wait(nap, 0, 0, 2); // this is the lock process's only work: sleeping blocks nothing else
        }
      } finally {
        side.close();
      }
    }
    held.push({ path, conn });
    return { path, journalMode, walFramesLeft, lockWaitMs };
  } catch (e) {
    try {
      conn.close();
    } catch {
      /* nothing held */
    }
    throw Object.assign(e as Error, { path });
  }
}

function handle(msg: LockRequest): LockReply {
  try {
    switch (msg.op) {
      case 'freeze': {
        if (held.length) throw new Error('already frozen: release the held locks first');
        const frozen: FrozenDatabase[] = [];
        try {
          for (const p of msg.paths) frozen.push(freezeOne(p, msg.busyTimeoutMs));
        } catch (e) {
          releaseAll();
          throw e;
        }
        return { id: msg.id, ok: true, frozen };
      }
      case 'release':
        releaseAll();
        return { id: msg.id, ok: true };
      case 'verify': {
        const conn = new Database(msg.path, { readonly: true, fileMustExist: true });
        try {
          const rows = conn.prepare('PRAGMA integrity_check').pluck().all() as string[];
          return { id: msg.id, ok: true, integrity: rows };
        } finally {
          conn.close();
        }
      }
    }
  } catch (e) {
    const err = e as Error & { code?: string; path?: string };
    return { id: msg.id, ok: false, error: { message: err.message, ...(err.code ? { sqliteCode: err.code } : {}), ...(err.path ? { path: err.path } : {}) } };
  }
}

if (!process.send) throw new Error('lock-worker runs as a child process of SqliteEngine (forked with an IPC channel)');
process.on('message', (msg: LockRequest) => {
  process.send!(handle(msg));
});
// The host is gone (exited or killed): let go of everything at once. Exiting drops the
// locks anyway; the rollback first is only tidier.
process.on('disconnect', () => {
  releaseAll();
  process.exit(0);
});
