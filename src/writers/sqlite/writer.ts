// The SQLite writer on the writer SDK: a thin Writer over SqliteEngine. Usable as a library
// inside the application that owns the databases (subscribe it to the daemon or to an
// in-process coordinator) and as `shadowcopy writer sqlite --db PATH...`.
import { Writer, type HandlerResult } from '../../writer/index.js';
import { ApplicationLevel, type WriterComponents, type WriterMetadataBuilder } from '../../vss/index.js';
import { vetoOnFailure } from '../veto.js';
import { SqliteEngine, type FreezeReport, type SqliteEngineOptions } from './engine.js';

export interface SqliteWriterOptions extends SqliteEngineOptions {
  /** Needed when more than one SQLite writer runs against the same daemon. */
  instanceName?: string;
}

/**
 * Events (EventEmitter), for an embedding application and for tests:
 * `frozen(report)` once every lock is held, `thawed()` once released at Thaw,
 * `aborted()`, `verified(paths)` after PostRestore's integrity checks.
 */
export class SqliteWriter extends Writer {
  readonly engine: SqliteEngine;

  constructor(opts: SqliteWriterOptions) {
    const engine = new SqliteEngine(opts);
    const id = SqliteEngine.identity(opts.instanceName);
    super({
      writerId: id.writerId,
      writerName: id.writerName,
      instanceName: id.instanceName ?? '',
      usage: id.usage,
      sourceType: id.source,
      level: ApplicationLevel.BACK_END,
      // The coordinator's window is a little longer than the engine's own: the engine lets go
      // first (and reports TIMEOUT at Thaw), so the application is never held past its window.
      freezeTimeoutMs: engine.freezeWindowMs + 1000,
    });
    this.engine = engine;
  }

  override onIdentify(md: WriterMetadataBuilder): void {
    this.engine.describe(md);
  }

  override onPrepareSnapshot(): HandlerResult {
    return this.guard(() => this.engine.prepareSnapshot());
  }

  override onFreeze(): HandlerResult {
    return this.guard(async () => {
      const report: FreezeReport = await this.engine.freeze();
      this.emit('frozen', report);
    });
  }

  override onThaw(): HandlerResult {
    return this.guard(async () => {
      await this.engine.thaw();
      this.emit('thawed');
    });
  }

  override async onAbort(): Promise<boolean> {
    await this.engine.abort();
    this.emit('aborted');
    return true;
  }

  override async onBackupShutdown(): Promise<boolean> {
    // Not close(): the writer stays subscribed for the next backup; abort() releases
    // anything a session that died between Freeze and Thaw left held.
    await this.engine.abort();
    return true;
  }

  override onPreRestore(components: WriterComponents | undefined): HandlerResult {
    return this.guard(async () => {
      for (const db of this.restoredDatabases(components)) await this.engine.prepareRestore(db.path);
    });
  }

  override onPostRestore(components: WriterComponents | undefined): HandlerResult {
    return this.guard(async () => {
      const dbs = this.restoredDatabases(components);
      for (const db of dbs) await this.engine.verify(db.path);
      this.emit('verified', dbs.map((d) => d.path));
    });
  }

  /** Stops the lock thread and unsubscribes. */
  async close(): Promise<void> {
    await this.unsubscribe();
    await this.engine.close();
  }

  /** The databases a restore selected (all when the document names none of ours). */
  private restoredDatabases(components: WriterComponents | undefined): { path: string; component: string }[] {
    const selected = components?.components.filter((c) => c.selectedForRestore).map((c) => c.componentName);
    return this.engine.databases.filter((d) => !selected?.length || selected.includes(d.component));
  }

  /** Engine work; a rejected VssError becomes SetWriterFailure with its code plus a veto. */
  private guard(work: () => Promise<void>): Promise<boolean> {
    return vetoOnFailure(this, work);
  }
}
