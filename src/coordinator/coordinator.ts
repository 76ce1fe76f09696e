// The coordinator: writer registry, sessions, the one-creation-at-a-time slot, timelines.
// Transport-free: server.ts binds it to JSON-RPC peers (Unix sockets in the daemon, in-memory
// streams in-process), so both SDKs see the same API either way.
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { SnapshotManager } from '../providers/index.js';
import { memoryDuplexPair } from '../protocol/framing.js';
import type { WriterInfoWire, TimelineWire } from '../protocol/admin.js';
import type { SnapshotPropertiesWire } from '../protocol/requester-calls.js';
import { Guid, ObjectType, SnapshotContext, VssError } from '../vss/index.js';
import { systemClock, type Clock } from './clock.js';
import { WriterRegistry, type WriterEntry, type WriterLink, type WriterSubscription } from './registry.js';
import { BackupSession, propertiesToWire, type SessionHost } from './session.js';
import { TimelineStore, type Timeline } from './timeline.js';
import { resolveTimeouts, type Timeouts, type TimeoutsInput } from './timeouts.js';
import { attachRequester, attachWriter, type AttachOptions } from './server.js';

export type LogFn = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface CoordinatorOptions {
  /** Makes, finds and deletes snapshots; opened on the state directory. */
  snapshots: SnapshotManager;
  /** Where timelines are kept (`<stateDir>/timelines`); none kept when absent. */
  stateDir?: string;
  timeouts?: TimeoutsInput;
  clock?: Clock;
  log?: LogFn;
  maxMessageBytes?: number;
}

export class Coordinator {
  readonly registry = new WriterRegistry();
  readonly clock: Clock;
  readonly timeouts: Timeouts;
  readonly snapshotManager: SnapshotManager;
  readonly timelines: TimelineStore;
  readonly log: LogFn;
  readonly maxMessageBytes: number | undefined;
  private readonly sessions = new Map<string, BackupSession>();
  /** Recently ended sessions' timelines, until they are looked up on disk. */
  private readonly recent: Timeline[] = [];
  private creating: BackupSession | undefined;
  private readonly host: SessionHost;

  constructor(opts: CoordinatorOptions) {
    this.clock = opts.clock ?? systemClock;
    this.timeouts = resolveTimeouts(opts.timeouts);
    this.snapshotManager = opts.snapshots;
    this.timelines = new TimelineStore(opts.stateDir ? join(opts.stateDir, 'timelines') : undefined);
    this.log = opts.log ?? (() => undefined);
    this.maxMessageBytes = opts.maxMessageBytes;
    this.host = {
      registry: this.registry,
      clock: this.clock,
      timeouts: this.timeouts,
      snapshots: () => this.snapshotManager,
      acquireCreation: (s) => {
        if (this.creating && this.creating !== s && this.creating.creating) {
          throw new VssError('VSS_E_SNAPSHOT_SET_IN_PROGRESS', `another session is creating snapshot set ${this.creating.snapshotSetId?.toString() ?? ''}; wait until its doSnapshotSet returns, then retry`);
        }
        this.creating = s;
      },
      releaseCreation: (s) => {
        if (this.creating === s) this.creating = undefined;
      },
      sessionEnded: async (s) => {
        this.sessions.delete(s.id);
        this.recent.push(s.timeline);
        if (this.recent.length > 50) this.recent.shift();
        try {
          this.timelines.save(s.timeline);
        } catch (e) {
          this.log('error', 'could not save the session timeline', { sessionId: s.id, error: (e as Error).message });
        }
      },
      log: (level, msg, fields) => this.log(level, msg, fields),
    };
  }

  // ---- writers ------------------------------------------------------------------------------

  subscribe(sub: WriterSubscription, link: WriterLink): WriterEntry {
    const e = this.registry.add(sub, link, this.clock.now());
    this.log('info', 'writer subscribed', { writerId: sub.writerId.toString(), instanceId: e.instanceId.toString(), name: sub.writerName, instanceName: sub.instanceName });
    return e;
  }

  unsubscribe(e: WriterEntry): void {
    if (e.gone) return;
    this.registry.remove(e);
    this.log('info', 'writer gone', { writerId: e.writerId.toString(), instanceId: e.instanceId.toString(), name: e.sub.writerName });
  }

  listWriters(): WriterInfoWire[] {
    return this.registry.list().map((e) => ({
      writerId: e.writerId.toString(),
      instanceId: e.instanceId.toString(),
      writerName: e.sub.writerName,
      instanceName: e.sub.instanceName,
      level: e.sub.level,
      freezeTimeoutMs: e.sub.freezeTimeoutMs ?? this.timeouts.freezeWindowMs,
      state: e.lastState,
      lastError: e.lastError >>> 0,
      applicationMessage: e.lastApplicationMessage,
      connectedAt: e.connectedAt.toISOString(),
    }));
  }

  // ---- sessions -----------------------------------------------------------------------------

  openSession(): BackupSession {
    const s = new BackupSession(this.host);
    this.sessions.set(s.id, s);
    this.log('info', 'session opened', { sessionId: s.id });
    return s;
  }

  session(id: string): BackupSession | undefined {
    return this.sessions.get(id);
  }

  /** Session ids still live: their auto-release snapshots survive recovery. */
  liveSessionIds(): Set<string> {
    return new Set(this.sessions.keys());
  }

  // ---- admin --------------------------------------------------------------------------------

  query(filter: { context?: number; snapshotSetId?: string }): SnapshotPropertiesWire[] {
    return this.snapshotManager.query({ context: filter.context ?? SnapshotContext.ALL, ...(filter.snapshotSetId ? { snapshotSetId: Guid.parse(filter.snapshotSetId) } : {}) }).map(propertiesToWire);
  }

  async deleteSnapshots(id: string, objectType: number): Promise<number> {
    if (objectType !== ObjectType.SNAPSHOT && objectType !== ObjectType.SNAPSHOT_SET) throw new VssError('E_INVALIDARG', 'objectType must be VSS_OBJECT_SNAPSHOT (3) or VSS_OBJECT_SNAPSHOT_SET (2)');
    return (await this.snapshotManager.deleteSnapshots(id, objectType)).deletedCount;
  }

  exposeSnapshot(snapshotId: string, path: string): Promise<string> {
    return this.snapshotManager.exposeSnapshot(snapshotId, path);
  }

  unexposeSnapshot(snapshotId: string): Promise<void> {
    return this.snapshotManager.unexposeSnapshot(snapshotId);
  }

  trace(id: string): Promise<TimelineWire> {
    return this.timelines.load(id, [...[...this.sessions.values()].map((s) => s.timeline), ...this.recent]);
  }

  // ---- transports ---------------------------------------------------------------------------

  /** Serves a requester over a stream (a socket connection or one end of a memory pair). */
  serveRequester(stream: Duplex, opts: AttachOptions = {}): void {
    attachRequester(this, stream, opts);
  }

  serveWriter(stream: Duplex, opts: AttachOptions = {}): void {
    attachWriter(this, stream, opts);
  }

  /** An in-process requester connection: hand the returned stream to the requester SDK. */
  connectRequester(): Duplex {
    const [a, b] = memoryDuplexPair();
    this.serveRequester(a, { peerLabel: 'in-process requester' });
    return b;
  }

  /** An in-process writer connection: hand the returned stream to the writer SDK. */
  connectWriter(): Duplex {
    const [a, b] = memoryDuplexPair();
    this.serveWriter(a, { peerLabel: 'in-process writer' });
    return b;
  }

  /** Releases every session (BackupShutdown, cleanup): daemon shutdown. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => s.release('the daemon is shutting down')));
  }
}
