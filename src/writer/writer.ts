// The writer SDK: CVssWriter for Node. Subclass Writer, override the handlers you need, call
// subscribe(). Each event runs its handler with the event's own context (a writer may be in
// several sessions at once), so the helpers of spec §18.2 answer for the right session.
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { ResponseError } from 'vscode-jsonrpc/node';
import { RpcClient, type Endpoint } from '../protocol/client.js';
import type { CancellationToken } from '../protocol/connection.js';
import { fromWireError, parseParams } from '../protocol/errors.js';
import { EVENT, EventParams, usualEventParams, SUBSCRIBE, SubscribeResult, UNSUBSCRIBE, type EventResult, type SessionContext, type WriterEventName, type WriterFailure } from '../protocol/writer-events.js';
import {
  ApplicationLevel,
  BackupComponentsDocument,
  BackupType,
  Guid,
  parseBackupComponents,
  RestoreType,
  SourceType,
  UsageType,
  VssError,
  WRITER_FAILURE_CODES,
  WriterComponents,
  WriterMetadataBuilder,
  writeBackupComponents,
  writeWriterMetadata,
  type WriterFailureCode,
} from '../vss/index.js';

/** CVssWriter::Initialize's arguments. */
export interface WriterOptions {
  writerId: Guid | string;
  writerName: string;
  usage: UsageType;
  sourceType: SourceType;
  /** Default FRONT_END. */
  level?: ApplicationLevel;
  /** Freeze→Thaw window, default 60000 ms (the daemon's default when absent). */
  freezeTimeoutMs?: number;
  /** Needed when more than one instance of this writer class runs. */
  instanceName?: string;
  /** VSS_SUBSCRIBE_MASK, default backup and restore events. */
  eventFlags?: number;
}

export interface SubscribeOptions {
  /** The daemon's socket directory (default $SHADOWCOPY_SOCKET_DIR or /run/shadowcopy). */
  socketDir?: string;
  /** Or a stream factory: e.g. `() => coordinator.connectWriter()` for an in-process coordinator. */
  stream?: () => Duplex | Promise<Duplex>;
  /** Reconnect after the daemon goes away (default true). */
  reconnect?: boolean;
  /** Delay between reconnection attempts, doubling from min to max (default 100 ms … 5 s). */
  reconnectDelayMs?: { min: number; max: number };
}

/** What a handler returns: false (or a throw) vetoes; true or nothing goes on. */
export type HandlerResult = boolean | void | Promise<boolean | void>;

/** The state of one event while its handler runs. */
export interface EventContext {
  readonly event: WriterEventName;
  readonly sessionId: string | undefined;
  readonly snapshotSetId: Guid | undefined;
  readonly context: SessionContext | undefined;
  /** Aborted when the daemon gives up on this event (deadline, freeze window, session ended). */
  readonly signal: AbortSignal;
  failure: WriterFailure | undefined;
  done: boolean;
}

/** One event's context, and the store of `eventStorage` while its handler runs. */
class EventState implements EventContext {
  failure: WriterFailure | undefined = undefined;
  done = false;
  private aborter: AbortController | undefined;

  constructor(
    readonly writer: Writer,
    readonly event: WriterEventName,
    readonly sessionId: string | undefined,
    readonly snapshotSetId: Guid | undefined,
    readonly context: SessionContext | undefined,
    private readonly token: CancellationToken,
  ) {}

  /** Made on first use: most handlers never look, and an AbortController per event is not free. */
  get signal(): AbortSignal {
    if (!this.aborter) {
      const ac = (this.aborter = new AbortController());
      if (this.token.isCancellationRequested) ac.abort();
      else this.token.onCancellationRequested(() => ac.abort());
    }
    return this.aborter.signal;
  }
}

const SNAPSHOT_SET_ID_EVENTS: readonly WriterEventName[] = ['PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot', 'Abort'];

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * One AsyncLocalStorage for every Writer of the process, each store naming its writer: Node 20
 * walks every live AsyncLocalStorage on each promise it creates, so one per Writer made a
 * process hosting many writers (the daemon's built-in writers, a benchmark) quadratic.
 */
const eventStorage = new AsyncLocalStorage<EventState>();

export class Writer extends EventEmitter {
  readonly options: Required<Pick<WriterOptions, 'writerName' | 'usage' | 'sourceType' | 'level' | 'instanceName' | 'eventFlags'>> & { writerId: Guid; freezeTimeoutMs: number | undefined };
  private client: RpcClient | undefined;
  private subscribed = false;
  private current: Guid | undefined;

  constructor(options: WriterOptions) {
    super();
    this.options = {
      writerId: typeof options.writerId === 'string' ? Guid.parse(options.writerId) : options.writerId,
      writerName: options.writerName,
      usage: options.usage,
      sourceType: options.sourceType,
      level: options.level ?? ApplicationLevel.FRONT_END,
      freezeTimeoutMs: options.freezeTimeoutMs,
      instanceName: options.instanceName ?? '',
      eventFlags: options.eventFlags ?? 0x6,
    };
  }

  /** The instance id the daemon minted for the current connection. */
  get instanceId(): Guid | undefined {
    return this.current;
  }

  // ---- handlers: override these ---------------------------------------------------------------

  /** Describe the writer: restore method and at least one component. Must be stateless. */
  onIdentify(_metadata: WriterMetadataBuilder): void | Promise<void> {
    throw new VssError('E_NOTIMPL', `${this.options.writerName} does not override onIdentify; a writer must describe its components`);
  }
  onPrepareBackup(_components: WriterComponents | undefined): HandlerResult {
    return true;
  }
  onPrepareSnapshot(): HandlerResult {
    return true;
  }
  onFreeze(): HandlerResult {
    return true;
  }
  onThaw(): HandlerResult {
    return true;
  }
  onPostSnapshot(_components: WriterComponents | undefined): HandlerResult {
    return true;
  }
  /** May arrive more than once and at any point before PostSnapshot: must be idempotent. */
  onAbort(): HandlerResult {
    return true;
  }
  onBackupComplete(_components: WriterComponents | undefined): HandlerResult {
    return true;
  }
  /** Final cleanup; the set id is the null GUID when no snapshot was made. May come without BackupComplete. */
  onBackupShutdown(_snapshotSetId: Guid): HandlerResult {
    return true;
  }
  onPreRestore(_components: WriterComponents | undefined): HandlerResult {
    return true;
  }
  onPostRestore(_components: WriterComponents | undefined): HandlerResult {
    return true;
  }

  // ---- helpers (spec §18.2): valid inside a handler ----------------------------------------------

  private ctx(call: string): EventContext {
    const stored = eventStorage.getStore();
    const c = stored?.writer === this ? stored : undefined;
    if (!c) throw new VssError('VSS_E_BAD_STATE', `${call} outside an event handler; call it from a handler (or code it awaits)`);
    if (c.done) throw new VssError('VSS_E_BAD_STATE', `${call} after the ${c.event} handler returned`);
    return c;
  }

  private session(call: string): SessionContext {
    const c = this.ctx(call);
    if (!c.context) throw new VssError('VSS_E_BAD_STATE', `${call} during ${c.event}, which belongs to no backup or restore`);
    return c.context;
  }

  /** The event being handled, with its session. */
  currentEvent(): EventContext {
    return this.ctx('currentEvent');
  }
  getBackupType(): BackupType {
    return this.session('getBackupType').backupType as BackupType;
  }
  getRestoreType(): RestoreType {
    return this.session('getRestoreType').restoreType as RestoreType;
  }
  isBootableSystemStateBackedUp(): boolean {
    return this.session('isBootableSystemStateBackedUp').bootableSystemStateBackup;
  }
  areComponentsSelected(): boolean {
    return this.session('areComponentsSelected').selectComponents;
  }
  isPartialFileSupportEnabled(): boolean {
    return this.session('isPartialFileSupportEnabled').partialFileSupport;
  }
  /** The snapshot context (VSS_SNAPSHOT_CONTEXT with attribute bits). */
  getContext(): number {
    return this.session('getContext').snapshotContext;
  }
  /** Whether a path lies on a volume of the snapshot set. */
  isPathAffected(path: string): boolean {
    return this.session('isPathAffected').volumes.some((v) => path === v || path.startsWith(v.endsWith('/') ? v : `${v}/`));
  }
  getSessionId(): string {
    return this.ctx('getSessionId').sessionId ?? '';
  }
  getCurrentLevel(): ApplicationLevel {
    this.ctx('getCurrentLevel');
    return this.options.level;
  }
  /**
   * The snapshot set of the event being handled. Not in Identify, BackupComplete or
   * BackupShutdown (use the id onBackupShutdown receives), nor after onPostSnapshot returned (spec §8).
   */
  getCurrentSnapshotSetId(): Guid {
    const c = this.ctx('getCurrentSnapshotSetId');
    if (!SNAPSHOT_SET_ID_EVENTS.includes(c.event) || !c.snapshotSetId) {
      throw new VssError('VSS_E_BAD_STATE', `getCurrentSnapshotSetId is not available during ${c.event}; cache the id during the sequence (Freeze, Thaw, PostSnapshot)`);
    }
    return c.snapshotSetId;
  }
  /** SetWriterFailure: one of the VSS_E_WRITERERROR_* codes. Return false as well to veto. */
  setWriterFailure(code: WriterFailureCode): void {
    this.setWriterFailureEx(code, 0, '');
  }
  /** SetWriterFailureEx: also S_OK or PARTIAL_FAILURE, with the application's HRESULT and message. */
  setWriterFailureEx(code: WriterFailureCode | 'VSS_E_WRITERERROR_PARTIAL_FAILURE' | 'S_OK', hrApplication: number, applicationMessage: string): void {
    const c = this.ctx('setWriterFailure');
    if (c.event === 'Identify') throw new VssError('VSS_E_BAD_STATE', 'setWriterFailure cannot be called during Identify; throw to fail Identify');
    if (code !== 'S_OK' && code !== 'VSS_E_WRITERERROR_PARTIAL_FAILURE' && !WRITER_FAILURE_CODES.includes(code)) {
      throw new VssError('E_INVALIDARG', `${String(code)} is not a writer failure code; use one of ${WRITER_FAILURE_CODES.join(', ')}`);
    }
    c.failure = { hr: code, hrApplication: hrApplication >>> 0, applicationMessage };
  }

  // ---- connection -----------------------------------------------------------------------------

  /** Connects, subscribes, and (by default) reconnects whenever the daemon goes away. */
  async subscribe(opts: SubscribeOptions = {}): Promise<Guid> {
    if (this.subscribed) throw new VssError('VSS_E_WRITER_ALREADY_SUBSCRIBED', `${this.options.writerName} is already subscribed`);
    const endpoint: Endpoint = opts.stream ? { stream: opts.stream } : { socketDir: opts.socketDir ?? '' };
    this.subscribed = true;
    try {
      await this.connect(endpoint);
    } catch (e) {
      this.subscribed = false;
      throw e;
    }
    void this.watch(endpoint, opts);
    return this.current!;
  }

  /** Stops receiving events and closes the connection. */
  async unsubscribe(): Promise<void> {
    this.subscribed = false;
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    try {
      await c.connection.sendRequest(UNSUBSCRIBE, {});
    } catch {
      // Closing is enough.
    }
    c.close();
  }

  private async connect(endpoint: Endpoint): Promise<void> {
    const o = this.options;
    const client = await RpcClient.connect(endpoint, 'writer', `${o.writerName} (pid ${process.pid})`);
    client.connection.onRequest(EVENT, (raw: unknown, token: CancellationToken) => this.handleEvent(raw, token));
    try {
      const r = SubscribeResult.parse(
        await client.connection.sendRequest(SUBSCRIBE, {
          writerId: o.writerId.toString(),
          writerName: o.writerName,
          instanceName: o.instanceName,
          usage: o.usage,
          sourceType: o.sourceType,
          level: o.level,
          ...(o.freezeTimeoutMs !== undefined ? { freezeTimeoutMs: o.freezeTimeoutMs } : {}),
          eventFlags: o.eventFlags,
        }),
      );
      this.current = Guid.parse(r.instanceId);
    } catch (e) {
      client.close();
      throw fromWireError(e, 'subscribe');
    }
    this.client = client;
    this.emit('subscribed', this.current);
  }

  private async watch(endpoint: Endpoint, opts: SubscribeOptions): Promise<void> {
    const min = opts.reconnectDelayMs?.min ?? 100;
    const max = opts.reconnectDelayMs?.max ?? 5000;
    while (this.subscribed) {
      const c = this.client;
      if (c) await c.peer.closed;
      if (!this.subscribed) return;
      this.client = undefined;
      this.emit('disconnected');
      if (opts.reconnect === false) {
        this.subscribed = false;
        return;
      }
      for (let wait = min; this.subscribed; wait = Math.min(max, wait * 2)) {
        await delay(wait);
        if (!this.subscribed) return;
        try {
          await this.connect(endpoint);
          break;
        } catch (e) {
          this.emit('reconnectError', e);
        }
      }
    }
  }

  private async handleEvent(raw: unknown, token: CancellationToken): Promise<EventResult> {
    const p = usualEventParams(raw) ?? parseParams(EventParams, raw, EVENT);
    const ctx = new EventState(this, p.event, p.sessionId, p.snapshotSetId ? Guid.parse(p.snapshotSetId) : undefined, p.context, token);
    if (p.event === 'Identify') return eventStorage.run(ctx, () => this.identify(ctx));
    let doc: BackupComponentsDocument | undefined;
    let mine: WriterComponents | undefined;
    if (p.bcdXml) {
      doc = parseBackupComponents(p.bcdXml, 'the document sent with the event');
      mine = doc.writers[0];
    }
    let ok: boolean;
    try {
      const r = await eventStorage.run(ctx, () => this.dispatch(p.event, ctx, mine));
      ok = r !== false;
    } catch (e) {
      ok = false;
      const code = VssError.is(e) && (WRITER_FAILURE_CODES as readonly string[]).includes(e.code) ? (e.code as WriterFailureCode) : 'VSS_E_WRITERERROR_NONRETRYABLE';
      ctx.failure ??= { hr: code, hrApplication: 0, applicationMessage: e instanceof Error ? e.message : String(e) };
    } finally {
      ctx.done = true;
    }
    // The document goes back only when the handler changed it: the codec writes what it read
    // byte for byte, so an unchanged document is the same string (and the coordinator then
    // has nothing to parse and merge).
    const back = doc && mine ? writeBackupComponents(doc) : undefined;
    return {
      ok,
      ...(ctx.failure ? { failure: ctx.failure } : {}),
      ...(back !== undefined && back !== p.bcdXml ? { bcdXml: back } : {}),
    };
  }

  private async identify(ctx: EventContext): Promise<EventResult> {
    const o = this.options;
    const b = new WriterMetadataBuilder({
      writerId: o.writerId,
      instanceId: this.current ?? Guid.NULL,
      writerName: o.writerName,
      instanceName: o.instanceName,
      usage: o.usage,
      source: o.sourceType,
    });
    try {
      await this.onIdentify(b);
      return { ok: true, metadataXml: writeWriterMetadata(b.build()) };
    } catch (e) {
      return { ok: false, failure: { hr: 'VSS_E_WRITERERROR_NONRETRYABLE', hrApplication: 0, applicationMessage: e instanceof Error ? e.message : String(e) } };
    } finally {
      ctx.done = true;
    }
  }

  private dispatch(event: WriterEventName, ctx: EventContext, mine: WriterComponents | undefined): HandlerResult {
    switch (event) {
      case 'PrepareForBackup':
        return this.onPrepareBackup(mine);
      case 'PrepareForSnapshot':
        return this.onPrepareSnapshot();
      case 'Freeze':
        return this.onFreeze();
      case 'Thaw':
        return this.onThaw();
      case 'PostSnapshot':
        return this.onPostSnapshot(mine);
      case 'Abort':
        return this.onAbort();
      case 'BackupComplete':
        return this.onBackupComplete(mine);
      case 'BackupShutdown':
        return this.onBackupShutdown(ctx.snapshotSetId ?? Guid.NULL);
      case 'PreRestore':
        return this.onPreRestore(mine);
      case 'PostRestore':
        return this.onPostRestore(mine);
      default:
        throw new ResponseError(-32602, `unknown event ${event as string}`);
    }
  }
}

