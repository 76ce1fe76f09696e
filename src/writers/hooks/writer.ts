// A script-hook writer on the writer SDK: one HookWriterEngine (a definition file) as a
// Writer. The daemon hosts one per file of <config-dir>/writers.d over in-process streams.
import { Writer, type HandlerResult } from '../../writer/index.js';
import type { Guid, WriterComponents, WriterMetadataBuilder } from '../../vss/index.js';
import { vetoOnFailure } from '../veto.js';
import { HookWriterEngine, loadHookWriters, type HookEvent, type HookWriterDefinition } from './engine.js';

export class HookWriter extends Writer {
  readonly engine: HookWriterEngine;

  constructor(def: HookWriterDefinition) {
    const id = def.identity;
    super({
      writerId: id.writerId,
      writerName: id.writerName,
      instanceName: id.instanceName ?? '',
      usage: id.usage,
      sourceType: id.source,
      // The coordinator's window a little past the engine's: the engine's own window timer
      // runs the owed thaw hook first, so the application is released on time either way.
      freezeTimeoutMs: def.freezeWindowMs + 1000,
    });
    this.engine = new HookWriterEngine(def);
  }

  override onIdentify(md: WriterMetadataBuilder): void {
    this.engine.describe(md);
  }

  /** What every hook learns about the event beyond SHADOWCOPY_EVENT. */
  private env(setId?: Guid): Record<string, string> {
    const e = this.currentEvent();
    const id = setId ?? e.snapshotSetId;
    return {
      ...(e.sessionId ? { SHADOWCOPY_SESSION_ID: e.sessionId } : {}),
      ...(id && !id.isNull ? { SHADOWCOPY_SNAPSHOT_SET_ID: id.toString() } : {}),
    };
  }

  private hook(event: Exclude<HookEvent, 'freeze' | 'thaw' | 'abort'>, setId?: Guid): Promise<boolean> {
    const env = this.env(setId);
    return vetoOnFailure(this, () => this.engine.run(event, env));
  }

  override onPrepareBackup(_c: WriterComponents | undefined): HandlerResult {
    return this.hook('prepareBackup');
  }
  override onPrepareSnapshot(): HandlerResult {
    return this.hook('prepareSnapshot');
  }
  override onFreeze(): HandlerResult {
    const env = this.env();
    // A failing freeze hook vetoes; the engine has already run the owed thaw hook by then.
    return vetoOnFailure(this, () => this.engine.freeze(env));
  }
  override onThaw(): HandlerResult {
    const env = this.env();
    return vetoOnFailure(this, () => this.engine.thaw(env));
  }
  override onPostSnapshot(_c: WriterComponents | undefined): HandlerResult {
    return this.hook('postSnapshot');
  }
  override async onAbort(): Promise<boolean> {
    // Never fails (Abort may come twice); what ran is in engine.history.
    await this.engine.abort(this.env());
    return true;
  }
  override onBackupComplete(_c: WriterComponents | undefined): HandlerResult {
    return this.hook('backupComplete');
  }
  override onBackupShutdown(setId: Guid): HandlerResult {
    return this.hook('backupShutdown', setId);
  }
  override onPreRestore(_c: WriterComponents | undefined): HandlerResult {
    return this.hook('preRestore');
  }
  override onPostRestore(_c: WriterComponents | undefined): HandlerResult {
    return this.hook('postRestore');
  }
}

/** The hook writers declared in `<configDir>/writers.d/*.json` (none when the directory is absent). */
export const HOOK_WRITERS_DIR = 'writers.d';

export function loadHookWritersFrom(dir: string): HookWriter[] {
  return loadHookWriters(dir).map((d) => new HookWriter(d));
}
