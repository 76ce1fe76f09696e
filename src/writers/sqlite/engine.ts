// What the SQLite writer does at each event, as plain async methods (the Writer subclass is a
// thin layer over this). Freeze takes every database's write lock (BEGIN IMMEDIATE) after a
// TRUNCATE checkpoint and holds it in a child process until Thaw, Abort or the end of the
// freeze window, so a snapshot taken meanwhile holds only committed transactions.
//
// A child process, not a worker thread: SQLite's locks are POSIX record locks, which belong
// to the process and are all released when any descriptor of the file in that process is
// closed. The host process may copy those very files (a copy provider of an in-process
// coordinator does, at commit), and that would let the application commit mid-freeze.
import { existsSync, rmSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import {
  ComponentType,
  RestoreMethod,
  SourceType,
  UsageType,
  VssError,
  WriterMetadataBuilder,
  WriterRestore,
  type WriterIdentityInput,
  type WriterMetadata,
} from '../../vss/index.js';
import type { FrozenDatabase, LockReply, LockRequest } from './lock-worker.js';

export type { FrozenDatabase } from './lock-worker.js';

// Omit<> over a union would merge its members; distribute it instead.
type LockRequestBody = LockRequest extends infer R ? (R extends LockRequest ? Omit<R, 'id'> : never) : never;

/** The SQLite writer's class id: the same on every host, as VSS writer ids are. */
export const SQLITE_WRITER_ID = '6f1b8a52-3c1e-4d8e-9a57-2f0c5d7e41a3';

export interface SqliteDatabase {
  /** Absolute path of the main database file. */
  path: string;
  /** Component name; the file name unless given. Must be unique within the writer. */
  component: string;
}

export interface SqliteEngineOptions {
  /** Paths of the main database files (their -wal, -shm, -journal come along). */
  databases: string[];
  /** Longest time to wait for another connection's write lock at Freeze (default 10 s). */
  busyTimeoutMs?: number;
  /** Freeze window: locks are released by themselves after this long (default 60 s, as VSS). */
  freezeWindowMs?: number;
  /** Logical path under which the components are published (default "sqlite"). */
  logicalPath?: string;
}

export interface FreezeReport {
  databases: FrozenDatabase[];
  /** From freeze() being called to every lock being held. */
  elapsedMs: number;
}

/** File specs of one database: its main file, and its side files when they exist. */
function sideFiles(name: string): { data: string[]; log: string[]; exclude: string[] } {
  // A trailing "*" lets a side file be absent (a "*" may match nothing), while the exact
  // name would fail the backup when, say, the last connection closed and removed the -wal.
  // The -shm wal-index is left out: it is a cache of the WAL that SQLite rebuilds when it
  // opens the database, and a copy of it can disagree with the WAL copied beside it (SQLite
  // would then trust the stale index and not see the newest frames).
  return { data: [name], log: [`${name}-wal*`, `${name}-journal*`], exclude: [`${name}-shm*`] };
}

export class SqliteEngine {
  readonly databases: SqliteDatabase[];
  readonly busyTimeoutMs: number;
  readonly freezeWindowMs: number;
  readonly logicalPath: string;
  private worker: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: LockReply) => void; reject: (e: Error) => void }>();
  private frozen = false;
  private windowTimer: NodeJS.Timeout | undefined;
  private expired = false;
  /** Bumped by abort(): a freeze that completes after an abort must let go at once. */
  private generation = 0;

  constructor(opts: SqliteEngineOptions) {
    if (!opts.databases.length) throw new VssError('E_INVALIDARG', 'the SQLite writer needs at least one database path (--db PATH)');
    const seen = new Set<string>();
    this.databases = opts.databases.map((p) => {
      const path = resolve(p);
      const component = basename(path);
      if (seen.has(component)) {
        throw new VssError('E_INVALIDARG', `two databases are named "${component}"; component names must be unique, so give the files distinct names`);
      }
      seen.add(component);
      return { path, component };
    });
    this.busyTimeoutMs = opts.busyTimeoutMs ?? 10_000;
    this.freezeWindowMs = opts.freezeWindowMs ?? 60_000;
    this.logicalPath = opts.logicalPath ?? 'sqlite';
  }

  /** True between a successful freeze() and thaw()/abort()/window expiry. */
  get isFrozen(): boolean {
    return this.frozen;
  }

  static identity(instanceName = ''): WriterIdentityInput {
    return { writerId: SQLITE_WRITER_ID, writerName: 'SQLite Writer', instanceName, usage: UsageType.USERDATA, source: SourceType.TRANSACTEDDB, versionMajor: 1, versionMinor: 0 };
  }

  /** Identify: one DATABASE component per database, its side files as log files; restore by replacing. */
  describe(builder: WriterMetadataBuilder): WriterMetadataBuilder {
    // ALWAYS: PostRestore verifies every restored database with PRAGMA integrity_check.
    builder.setRestoreMethod(RestoreMethod.RESTORE_IF_CAN_REPLACE, undefined, undefined, WriterRestore.ALWAYS, false);
    for (const db of this.databases) {
      builder.addComponent({
        type: ComponentType.DATABASE,
        logicalPath: this.logicalPath,
        componentName: db.component,
        caption: `SQLite database ${db.path}`,
        selectable: true,
        selectableForRestore: true,
      });
      const dir = dirname(db.path);
      const files = sideFiles(basename(db.path));
      for (const f of files.data) builder.addDatabaseFiles(this.logicalPath, db.component, dir, f);
      for (const f of files.log) builder.addDatabaseLogFiles(this.logicalPath, db.component, dir, f);
      for (const f of files.exclude) {
        builder.addExcludeFiles(dir, f, false);
        // Also out of the snapshot: a copy provider then never opens it, and opening and
        // closing the -shm from another thread of the process holding the WAL locks would
        // release those (POSIX record locks belong to the process, not the descriptor).
        builder.addExcludeFilesFromSnapshot(dir, f, false);
      }
    }
    return builder;
  }

  /** The whole writer metadata document, for callers without a Writer around them. */
  metadata(instanceName = ''): WriterMetadata {
    return this.describe(new WriterMetadataBuilder(SqliteEngine.identity(instanceName))).build();
  }

  /** PrepareForSnapshot: fail early (before anything is frozen) when a database is gone. */
  async prepareSnapshot(): Promise<void> {
    for (const db of this.databases) {
      if (!existsSync(db.path)) {
        throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `database ${db.path} does not exist; remove it from the writer's --db list or restore it`);
      }
    }
    // Start the lock process now, so Freeze does not wait for it to boot.
    this.ensureWorker();
  }

  /**
   * Freeze: checkpoint and take every database's write lock, and keep them until thaw(),
   * abort() or the freeze window ends. Rejects (holding nothing) when a lock cannot be had.
   */
  async freeze(): Promise<FreezeReport> {
    if (this.frozen) throw new VssError('VSS_E_BAD_STATE', 'the SQLite writer is already frozen; thaw or abort first');
    const t0 = performance.now();
    this.expired = false;
    const gen = this.generation;
    const reply = await this.call({ op: 'freeze', paths: this.databases.map((d) => d.path), busyTimeoutMs: this.busyTimeoutMs });
    if (!reply.ok) throw this.freezeError(reply.error);
    this.frozen = true;
    if (gen !== this.generation) {
      await this.release();
      throw new VssError('VSS_E_WRITERERROR_RETRYABLE', 'the backup was aborted while the SQLite writer was taking its locks; the locks are released, retry the backup');
    }
    // The window protects the application: a backup that never thaws must not stop it forever.
    this.windowTimer = setTimeout(() => {
      this.expired = true;
      void this.release();
    }, this.freezeWindowMs);
    this.windowTimer.unref();
    return { databases: reply.frozen ?? [], elapsedMs: performance.now() - t0 };
  }

  /**
   * Thaw: release the locks. Rejects with VSS_E_WRITERERROR_TIMEOUT when the freeze window
   * expired first: the snapshot may then hold writes made after Freeze, so it must not be used.
   */
  async thaw(): Promise<void> {
    const expired = this.expired;
    await this.release();
    this.expired = false;
    if (expired) {
      throw new VssError('VSS_E_WRITERERROR_TIMEOUT', `the freeze window of ${this.freezeWindowMs} ms ended before Thaw, so the SQLite locks were released early; retry the backup, or raise the freeze window if the snapshot is slow`);
    }
  }

  /** Abort: release whatever is held. Idempotent, never throws: Abort may come more than once. */
  async abort(): Promise<void> {
    this.expired = false;
    this.generation++;
    await this.release().catch(() => undefined);
    // A freeze still waiting for a lock has not set `frozen` yet; the worker handles messages
    // in order, so this release runs right after that freeze whatever it got.
    if (this.worker) await this.call({ op: 'release' }).catch(() => undefined);
  }

  /** BackupShutdown: release anything still held and stop the lock process. */
  async close(): Promise<void> {
    await this.abort();
    const w = this.worker;
    this.worker = undefined;
    if (w && w.exitCode === null && w.signalCode === null) {
      const exited = new Promise<void>((r) => w.once('exit', () => r()));
      this.setRef(w, true); // an unref'd child would not keep the host alive until it exits
      w.kill();
      await exited;
    }
  }

  /** PostRestore: PRAGMA integrity_check on a (restored) database; rejects with what it found. */
  async verify(path: string): Promise<void> {
    const reply = await this.call({ op: 'verify', path: resolve(path) });
    if (!reply.ok) {
      throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `cannot check ${path}: ${reply.error.message}; restore the database again from a good backup`);
    }
    const rows = reply.integrity ?? [];
    if (rows.length !== 1 || rows[0] !== 'ok') {
      throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `integrity_check of ${path} found problems: ${rows.slice(0, 5).join('; ')}; restore the database again from a good backup`);
    }
  }

  /** PostRestore for every database of the writer (or the given components). */
  async verifyAll(components?: string[]): Promise<void> {
    for (const db of this.databases) {
      if (!components || components.includes(db.component)) await this.verify(db.path);
    }
  }

  /**
   * PreRestore: remove the live side files of a database about to be replaced. A live -wal
   * left beside a restored main file would be replayed into it and corrupt it; the backup's
   * own side files (if it had any) are restored after this.
   */
  async prepareRestore(path: string): Promise<void> {
    const p = resolve(path);
    for (const suffix of ['-wal', '-shm', '-journal']) rmSync(`${p}${suffix}`, { force: true });
  }

  private async release(): Promise<void> {
    if (this.windowTimer) clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
    if (!this.frozen) return;
    this.frozen = false;
    const reply = await this.call({ op: 'release' });
    if (!reply.ok) {
      throw new VssError('VSS_E_WRITERERROR_RETRYABLE', `releasing the SQLite locks failed: ${reply.error.message}`);
    }
  }

  private freezeError(e: { message: string; sqliteCode?: string; path?: string }): VssError {
    const where = e.path ? ` on ${e.path}` : '';
    if (e.sqliteCode === 'SQLITE_BUSY' || e.sqliteCode === 'SQLITE_LOCKED') {
      return new VssError('VSS_E_WRITERERROR_RETRYABLE', `could not take the write lock${where} within ${this.busyTimeoutMs} ms (another connection held it): ${e.message}; retry the backup, or raise the busy timeout`);
    }
    return new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `freeze failed${where}: ${e.message}${e.sqliteCode ? ` (${e.sqliteCode})` : ''}; check that the file is a readable, writable SQLite database`);
  }

  private ensureWorker(): ChildProcess {
    if (this.worker) return this.worker;
    // Built, the lock process runs lock-worker.js beside this file; under tsx (tests,
    // `npm run shadowcopy`) it is lock-worker.ts, loaded through tsx.
    const ts = import.meta.url.endsWith('.ts');
    const w = fork(new URL(ts ? './lock-worker.ts' : './lock-worker.js', import.meta.url), [], {
      execArgv: ts ? ['--import', import.meta.resolve('tsx')] : [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    w.on('message', (r: LockReply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      p?.resolve(r);
    });
    const fail = (err: Error): void => {
      // A dead lock process holds no locks (the kernel dropped them with it).
      if (this.worker === w) {
        this.worker = undefined;
        this.frozen = false;
      }
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code, signal) => fail(new Error(`the SQLite lock process exited (${signal ?? `code ${code}`})`)));
    // The process must not keep the host alive on its own; pending calls hold a ref.
    this.setRef(w, false);
    this.worker = w;
    return w;
  }

  private setRef(w: ChildProcess, on: boolean): void {
    if (on) {
      w.ref();
      w.channel?.ref();
    } else {
      w.unref();
      w.channel?.unref();
    }
  }

  private call(req: LockRequestBody): Promise<LockReply> {
    const w = this.ensureWorker();
    const id = this.nextId++;
    this.setRef(w, true);
    return new Promise<LockReply>((resolveP, rejectP) => {
      this.pending.set(id, { resolve: resolveP, reject: rejectP });
      w.send({ ...req, id } as LockRequest, (err) => {
        if (err && this.pending.delete(id)) rejectP(new Error(`the SQLite lock process cannot be reached: ${err.message}`));
      });
    }).finally(() => {
      if (this.pending.size === 0 && this.worker === w) this.setRef(w, false);
    });
  }
}
