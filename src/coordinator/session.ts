// One requester session (IVssBackupComponents on the service side): the call order of spec
// §4.1, the events of §4 and §16, writer status of §7, Abort and BackupShutdown of §8; or,
// initialized for restore, the restore sequence of §5 with the selection rules of §13.3/§14.
import { randomUUID } from 'node:crypto';
import type { SnapshotManager, SnapshotSetCreation } from '../providers/index.js';
import { resolveVolume } from '../providers/index.js';
import type { TimelineEntryWire } from '../protocol/admin.js';
import { ConnectionClosed } from '../protocol/connection.js';
import type { WriterStatusWire, SnapshotPropertiesWire } from '../protocol/requester-calls.js';
import { BCD_EVENTS, EventResult, usualEventResult, type EventParams, type SessionContext, type WriterEventName } from '../protocol/writer-events.js';
import {
  BackupComponentsDocument,
  BackupSelection,
  BackupType,
  ComponentType,
  FileRestoreStatus,
  Guid,
  HRESULT,
  hresultName,
  isFailure,
  ObjectType,
  parseBackupComponents,
  parseRangeList,
  parseWriterMetadata,
  RestoreMethod,
  RestoreSelection,
  RestoreTarget,
  RestoreType,
  restoreWriters,
  RollForwardType,
  componentKey,
  fullPath,
  SnapshotContext,
  snapshotContextCodec,
  SubscribeMask,
  VolumeSnapshotAttributes,
  VssError,
  WriterComponents,
  WriterMetadata,
  WriterRestore,
  WriterState,
  writeBackupComponents,
  writeWriterMetadata,
  type Component,
  type ComponentRef,
  type HResultName,
  type VssErrorName,
} from '../vss/index.js';
import type { SnapshotProperties } from '../vss/snapshot.js';
import { attributesOfContext } from '../vss/snapshot.js';
import type { Clock, TimerHandle } from './clock.js';
import type { WriterEntry, WriterLink, WriterRegistry } from './registry.js';
import { Timeline } from './timeline.js';
import type { Timeouts } from './timeouts.js';

/** What a session needs from its coordinator. */
export interface SessionHost {
  readonly registry: WriterRegistry;
  readonly clock: Clock;
  readonly timeouts: Timeouts;
  snapshots(): SnapshotManager;
  /** Takes the one-creation-at-a-time slot (VSS_E_SNAPSHOT_SET_IN_PROGRESS when taken). */
  acquireCreation(s: BackupSession): void;
  releaseCreation(s: BackupSession): void;
  sessionEnded(s: BackupSession): Promise<void>;
  log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
}

/** The requester cancelled an asynchronous operation (IVssAsync::Cancel). */
export class OperationCancelled extends Error {
  constructor(what: string) {
    super(`${what} was cancelled`);
    this.name = 'OperationCancelled';
  }
}

type Answer = 'ok' | 'veto' | 'fail' | 'timeout' | 'gone' | 'error' | 'cancelled';

interface Outcome {
  answer: Answer;
  hr: number;
  hrApplication: number;
  applicationMessage: string;
}

/** A writer whose Identify succeeded in this session: its status record (spec §7.2). */
interface WriterRecord {
  entry: WriterEntry;
  metadata: WriterMetadata;
  state: WriterState;
  hr: number;
  hrApplication: number;
  applicationMessage: string;
  /** Received PrepareForBackup: takes part, gets BackupShutdown. */
  participant: boolean;
  /** Vetoed or did not answer: gets no further event of the sequence but Abort and BackupShutdown. */
  out: boolean;
  thawSent: boolean;
  postSnapshotDone: boolean;
  /** Restore: the backed-up writer (stored BCD entry) whose components this instance restores. */
  restoring?: WriterComponents;
}

const SUCCESS_STATE: Partial<Record<WriterEventName, WriterState>> = {
  PrepareForBackup: WriterState.STABLE,
  PrepareForSnapshot: WriterState.WAITING_FOR_FREEZE,
  Freeze: WriterState.WAITING_FOR_THAW,
  Thaw: WriterState.WAITING_FOR_POST_SNAPSHOT,
  PostSnapshot: WriterState.WAITING_FOR_BACKUP_COMPLETE,
  BackupComplete: WriterState.STABLE,
  Abort: WriterState.STABLE,
  PreRestore: WriterState.STABLE,
  PostRestore: WriterState.STABLE,
};

const FAILED_STATE: Partial<Record<WriterEventName, WriterState>> = {
  Identify: WriterState.FAILED_AT_IDENTIFY,
  PrepareForBackup: WriterState.FAILED_AT_PREPARE_BACKUP,
  PrepareForSnapshot: WriterState.FAILED_AT_PREPARE_SNAPSHOT,
  Freeze: WriterState.FAILED_AT_FREEZE,
  Thaw: WriterState.FAILED_AT_THAW,
  PostSnapshot: WriterState.FAILED_AT_POST_SNAPSHOT,
  BackupComplete: WriterState.FAILED_AT_BACKUP_COMPLETE,
  PreRestore: WriterState.FAILED_AT_PRE_RESTORE,
  PostRestore: WriterState.FAILED_AT_POST_RESTORE,
  BackupShutdown: WriterState.FAILED_AT_BACKUPSHUTDOWN,
};

export function isFailedState(s: WriterState): boolean {
  return s === WriterState.UNKNOWN || (s >= WriterState.FAILED_AT_IDENTIFY && s <= WriterState.FAILED_AT_BACKUPSHUTDOWN);
}

/**
 * One writer's Freeze→Thaw window (spec §6). When it closes, the writer's event in flight
 * (Freeze or Thaw) stops, and is recorded as a timeout.
 */
class FreezeWindow {
  closed = false;
  private stopInFlight: (() => void) | undefined;

  close(): void {
    this.closed = true;
    const stop = this.stopInFlight;
    this.stopInFlight = undefined;
    stop?.();
  }

  /** `stop` runs if the window closes while the writer's event is in flight; call the result when it ends. */
  watch(stop: () => void): () => void {
    this.stopInFlight = stop;
    return () => {
      if (this.stopInFlight === stop) this.stopInFlight = undefined;
    };
  }
}

/** How one event to one writer ended, before its answer is read. */
type Settled = { kind: 'answer'; r: unknown } | { kind: 'gone' } | { kind: 'stopped' };

/**
 * One event sent to many writers at once, under one deadline timer and one listener on each
 * cancellation signal for them all: when either fires, every event still unanswered is settled
 * as stopped and cancelled on its writer's side. (A timer and listeners per writer cost more
 * than the event itself; a promise reaction per event on the writer's connection kept each
 * event's state alive until the writer disconnected.)
 */
class FanOut {
  /** The deadline passed (as opposed to a cancellation or a freeze window). */
  expired = false;
  private stopped = false;
  private readonly inFlight = new Set<() => void>();
  private readonly timer: TimerHandle | undefined;
  private readonly onAbort = (): void => this.stop();

  constructor(
    clock: Clock,
    readonly deadlineMs: number | undefined,
    private readonly signals: readonly (AbortSignal | undefined)[],
  ) {
    if (deadlineMs !== undefined) {
      this.timer = clock.setTimer(deadlineMs, () => {
        this.expired = true;
        this.stop();
      });
    }
    for (const s of signals) {
      if (s?.aborted) this.stopped = true;
      else s?.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const stop of [...this.inFlight]) stop();
  }

  /** Ends the fan-out: its timer and listeners go. */
  end(): void {
    this.timer?.cancel();
    for (const s of this.signals) s?.removeEventListener('abort', this.onAbort);
  }

  /**
   * Sends one event and settles on the writer's answer, its connection going, the fan-out
   * stopping or the writer's own freeze window closing, whichever comes first.
   */
  send(link: WriterLink, params: EventParams, window: FreezeWindow | undefined): Promise<Settled> {
    return new Promise<Settled>((resolve, reject) => {
      const call = link.sendEvent(params);
      let done = false;
      let unwatch: (() => void) | undefined = undefined;
      const finish = (): boolean => {
        if (done) return false;
        done = true;
        this.inFlight.delete(stop);
        unwatch?.();
        return true;
      };
      const stop = (): void => {
        if (!finish()) return;
        call.cancel();
        resolve({ kind: 'stopped' });
      };
      call.answer.then(
        (r) => finish() && resolve({ kind: 'answer', r }),
        (e: unknown) => finish() && (e instanceof ConnectionClosed ? resolve({ kind: 'gone' }) : reject(e as Error)),
      );
      // Checked after sending: the event still goes to a writer already given up on.
      if (this.stopped || window?.closed) return stop();
      this.inFlight.add(stop);
      unwatch = window?.watch(stop);
    });
  }
}

/** `p`, or the signal's reason if it aborts first; the listener goes when `p` settles (the signal outlives many races). */
function race<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}

export function propertiesToWire(p: SnapshotProperties): SnapshotPropertiesWire {
  return {
    ...p,
    snapshotId: p.snapshotId.toString(),
    snapshotSetId: p.snapshotSetId.toString(),
    providerId: p.providerId.toString(),
    creationTimestamp: p.creationTimestamp.toISOString(),
  };
}

const WRITERLESS_CONTEXT = VolumeSnapshotAttributes.NO_WRITERS;

/** The calls of IVssBackupComponents that a restore session accepts besides the restore calls. */
const CALLS_IN_RESTORE: ReadonlySet<string> = new Set(['gatherWriterMetadata', 'gatherWriterStatus', 'saveAsXml', 'enableWriterClasses', 'disableWriterClasses', 'disableWriterInstances']);

/** A restore-call's component: the class writer id (instance only for the Ex form) and the component's identity. */
export interface RestoreComponentParams {
  writerId: string;
  componentType: number;
  logicalPath: string;
  componentName: string;
}

/** Restore-time properties a saved document may carry: cleared, so every selection goes through the checked calls. */
function clearRestoreState(c: Component): void {
  c.setSelectedForRestore(false);
  c.restoreSubcomponents.length = 0;
  c.restoreOptions = '';
  c.additionalRestores = false;
  c.newTargets.length = 0;
  c.alternateLocationMappings.length = 0;
  c.restoreTarget = RestoreTarget.ORIGINAL;
  c.directedTargets.length = 0;
  c.restoreMetadata = '';
  c.preRestoreFailureMsg = '';
  c.postRestoreFailureMsg = '';
  c.fileRestoreStatus = FileRestoreStatus.UNDEFINED;
  c.authoritativeRestore = false;
  c.rollForwardType = RollForwardType.UNDEFINED;
  c.rollForwardPoint = '';
  c.restoreName = '';
}

export class BackupSession {
  readonly id = randomUUID();
  readonly timeline: Timeline;
  readonly bcd = new BackupComponentsDocument();
  private initialized = false;
  private context: number = SnapshotContext.BACKUP;
  private backupStateSet = false;
  private enabledClasses: Guid[] | undefined;
  private readonly disabledClasses: Guid[] = [];
  private readonly disabledInstances: Guid[] = [];
  private records: WriterRecord[] | undefined;
  /** The records by canonical instance id, made on first lookup. */
  private recordById: Map<string, WriterRecord> | undefined;
  private selection: BackupSelection | undefined;
  private set: SnapshotSetCreation | undefined;
  private readonly volumes: string[] = [];
  private preparedForBackup = false;
  private prepareForBackupSent = false;
  private snapshotStarted = false;
  private snapshotDone = false;
  private snapshotsCreated = false;
  private postSnapshotStarted = false;
  private backupCompleted = false;
  private aborted = false;
  private released = false;
  /** The operation after which a status gather is meaningful (spec §7.2); cleared by other calls. */
  private lastCompletedOp: string | undefined;
  private abortPromise: Promise<void> | undefined;
  private releasePromise: Promise<void> | undefined;
  private sequence: Promise<void> | undefined;
  /** Aborts every event in flight when the session ends. */
  private readonly stop = new AbortController();
  /** Set by initializeForBackup / initializeForRestore: which sequence this session follows. */
  private mode: 'backup' | 'restore' | undefined;
  /** Restore: the writer metadata saved with the backup, the only source of file sets (spec §5 #2). */
  private storedMetadata: WriterMetadata[] = [];
  private restoreSelection: RestoreSelection | undefined;
  private preRestoreState: 'not-sent' | 'running' | 'done' = 'not-sent';
  private postRestoreState: 'not-sent' | 'running' | 'done' = 'not-sent';
  /** PreRestore or PostRestore in flight: release waits for it (writers read the BCD until they answer). */
  private restoreEvent: Promise<void> | undefined;
  private seqAbort: AbortController | undefined;
  private providerInFlight: Promise<unknown> | undefined;

  constructor(private readonly host: SessionHost) {
    this.timeline = new Timeline(this.id, new Date(host.clock.now()).toISOString());
  }

  get isReleased(): boolean {
    return this.released;
  }

  get snapshotSetId(): Guid | undefined {
    return this.set?.snapshotSetId;
  }

  /** Whether this session's set holds the creation slot: from StartSnapshotSet until DoSnapshotSet returns. */
  get creating(): boolean {
    return this.snapshotStarted && !this.snapshotDone && !this.aborted;
  }

  private get writerless(): boolean {
    return (this.context & WRITERLESS_CONTEXT) !== 0;
  }

  // ---- call-order checks ------------------------------------------------------------------

  private badState(message: string): never {
    throw new VssError('VSS_E_BAD_STATE', message);
  }

  /** Every call but release: the session must be live and initialized. */
  private live(call: string): void {
    if (this.released) this.badState(`${call}: this session was released; open a new one (sessions are never reused)`);
    if (!this.initialized) this.badState(`${call} before initializeForBackup; call initializeForBackup first`);
    if (this.mode === 'restore' && !CALLS_IN_RESTORE.has(call)) {
      this.badState(`${call} is not part of a restore; this session was initialized with initializeForRestore — open another session to back up`);
    }
    this.lastCompletedOp = undefined;
  }

  private writerCall(call: string): void {
    if (this.writerless) {
      this.badState(`${call} is not available in ${snapshotContextCodec.nameOf(this.context & ~0xffffff00) ?? `context 0x${this.context.toString(16)}`}, which has no writers; use a writer context such as VSS_CTX_BACKUP`);
    }
  }

  private note(name: string, at: number, answer: string, message?: string): void {
    this.timeline.add({ kind: 'call', name, at: new Date(at).toISOString(), durationMs: this.host.clock.now() - at, answer, ...(message ? { message } : {}) });
  }

  // ---- requester calls --------------------------------------------------------------------

  initializeForBackup(bcdXml?: string): void {
    if (this.released) this.badState('initializeForBackup: this session was released; open a new one');
    if (this.initialized) this.badState(`initializeForBackup after ${this.mode === 'restore' ? 'initializeForRestore' : 'initializeForBackup'}; a session is initialized once`);
    if (bcdXml !== undefined) {
      // Transportable import: the saved document's backup state comes back (spec §4.1 #1).
      const saved = parseBackupComponents(bcdXml, 'the saved Backup Components Document');
      this.bcd.setBackupState({
        selectComponents: saved.selectComponents,
        bootableSystemStateBackup: saved.bootableSystemStateBackup,
        backupType: saved.backupType === BackupType.UNDEFINED ? BackupType.FULL : saved.backupType,
        partialFileSupport: saved.partialFileSupport,
      });
    }
    this.initialized = true;
    this.mode = 'backup';
    this.note('InitializeForBackup', this.host.clock.now(), 'ok');
  }

  setContext(context: number): void {
    this.live('setContext');
    if (this.snapshotStarted) this.badState('setContext after startSnapshotSet; the context must be set before the snapshot set is started');
    if ((context >>> 0) === SnapshotContext.ALL) {
      // VSS_CTX_ALL is for query and deletion only.
      this.context = SnapshotContext.ALL;
      return;
    }
    this.context = attributesOfContext(context).attributes;
  }

  setBackupState(s: { selectComponents: boolean; bootableSystemStateBackup: boolean; backupType: number; partialFileSupport: boolean }): void {
    this.live('setBackupState');
    if (this.prepareForBackupSent) this.badState('setBackupState after prepareForBackup; the backup state is fixed once writers were told');
    this.bcd.setBackupState({ ...s, backupType: s.backupType as BackupType });
    this.backupStateSet = true;
  }

  private beforeGather(call: string): void {
    this.live(call);
    if (this.records) this.badState(`${call} after gatherWriterMetadata has no effect; call it before gatherWriterMetadata`);
  }

  enableWriterClasses(ids: string[]): void {
    this.beforeGather('enableWriterClasses');
    this.enabledClasses = [...(this.enabledClasses ?? []), ...ids.map((i) => Guid.parse(i))];
  }

  disableWriterClasses(ids: string[]): void {
    this.beforeGather('disableWriterClasses');
    this.disabledClasses.push(...ids.map((i) => Guid.parse(i)));
  }

  disableWriterInstances(ids: string[]): void {
    this.beforeGather('disableWriterInstances');
    this.disabledInstances.push(...ids.map((i) => Guid.parse(i)));
  }

  private enabled(e: WriterEntry): boolean {
    // A restore identifies writers subscribed to either family (to learn who runs); only those
    // subscribed to restore events receive PreRestore/PostRestore.
    const family = this.mode === 'restore' ? SubscribeMask.BACKUP_EVENTS_FLAG | SubscribeMask.RESTORE_EVENTS_FLAG : SubscribeMask.BACKUP_EVENTS_FLAG;
    if ((e.sub.eventFlags & family) === 0) return false;
    if (this.enabledClasses && !this.enabledClasses.some((g) => g.equals(e.writerId))) return false;
    if (this.disabledClasses.some((g) => g.equals(e.writerId))) return false;
    return !this.disabledInstances.some((g) => g.equals(e.instanceId));
  }

  /** GatherWriterMetadata: Identify to every enabled writer; those that answer in time with a valid document have status. */
  async gatherWriterMetadata(signal?: AbortSignal): Promise<{ instanceId: string; writerId: string; metadataXml: string }[]> {
    this.live('gatherWriterMetadata');
    if (this.prepareForBackupSent) this.badState('gatherWriterMetadata after prepareForBackup; gather metadata before preparing');
    if (this.preRestoreState !== 'not-sent') this.badState('gatherWriterMetadata after preRestore; gather metadata before preRestore');
    const writers = this.host.registry.list().filter((e) => !e.gone && this.enabled(e));
    const results = await this.fanOut(writers, this.host.timeouts.eventMs.Identify, [signal], async (entry, fan) => {
      let metadata: WriterMetadata | undefined;
      const outcome = await this.dispatch(entry, 'Identify', { fan }, (r) => {
        metadata = this.acceptMetadata(entry, r.metadataXml);
      });
      if (outcome.answer !== 'ok' || !metadata) {
        // No status record for a writer whose Identify failed (spec §7.2).
        entry.lastState = WriterState.FAILED_AT_IDENTIFY;
        entry.lastError = outcome.hr;
        entry.lastApplicationMessage = outcome.applicationMessage;
        return undefined;
      }
      return { entry, metadata };
    });
    if (signal?.aborted) throw new OperationCancelled('gatherWriterMetadata');
    this.recordById = undefined;
    this.records = results
      .filter((r) => r !== undefined)
      .map(({ entry, metadata }) => ({ entry, metadata, state: WriterState.STABLE, hr: 0, hrApplication: 0, applicationMessage: '', participant: false, out: false, thawSent: false, postSnapshotDone: false }));
    if (this.mode === 'restore') {
      // The selection checks against the stored documents; the live ones only say who runs now.
      this.restoreSelection = new RestoreSelection(this.bcd, this.storedMetadata, this.records.map((r) => ({ writerId: r.entry.writerId, instanceName: r.entry.sub.instanceName, instanceId: r.entry.instanceId })));
    } else this.selection = new BackupSelection(this.records.map((r) => r.metadata));
    return this.records.map((r) => ({ instanceId: r.entry.instanceId.toString(), writerId: r.entry.writerId.toString(), metadataXml: writeWriterMetadata(r.metadata) }));
  }

  /** The writer's WMD, checked, with the instance id the coordinator minted. */
  private acceptMetadata(entry: WriterEntry, xml: string | undefined): WriterMetadata {
    if (!xml) throw new VssError('VSS_E_INVALID_XML_DOCUMENT', 'Identify answered without metadataXml');
    const wmd = parseWriterMetadata(xml, `metadata of ${entry.label()}`);
    if (!wmd.identity.writerId.equals(entry.writerId)) {
      throw new VssError('VSS_E_INVALID_XML_DOCUMENT', `the metadata names writer class ${wmd.identity.writerId.toString()}, but the writer subscribed as ${entry.writerId.toString()}`);
    }
    return new WriterMetadata({
      version: wmd.version,
      identity: { ...wmd.identity, instanceId: entry.instanceId, instanceName: entry.sub.instanceName, writerName: entry.sub.writerName },
      restoreMethod: wmd.restoreMethod,
      alternateLocationMappings: [...wmd.alternateLocationMappings],
      backupSchema: wmd.backupSchema,
      components: [...wmd.components],
      excludeFiles: [...wmd.excludeFiles],
      excludeFilesFromSnapshot: [...wmd.excludeFilesFromSnapshot],
    });
  }

  private gathered(call: string): WriterRecord[] {
    if (!this.records) this.badState(`${call} before gatherWriterMetadata; call gatherWriterMetadata first`);
    return this.records;
  }

  private record(instanceId: string, call: string): WriterRecord {
    const records = this.gathered(call);
    // By canonical id: one GUID parse per call, not one per writer.
    const id = Guid.tryParse(instanceId)?.value;
    this.recordById ??= new Map(records.map((x) => [x.entry.instanceId.value, x]));
    const r = id === undefined ? undefined : this.recordById.get(id);
    if (!r) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `${call}: no writer instance ${instanceId} answered gatherWriterMetadata in this session`);
    return r;
  }

  addComponent(p: { instanceId: string; writerId: string; componentType: number; logicalPath: string; componentName: string }): void {
    this.live('addComponent');
    this.writerCall('addComponent');
    const r = this.record(p.instanceId, 'addComponent');
    if (this.prepareForBackupSent) this.badState('addComponent after prepareForBackup; add components before prepareForBackup');
    if (!r.entry.writerId.equals(p.writerId)) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `writer instance ${p.instanceId} is of class ${r.entry.writerId.toString()}, not ${p.writerId}`);
    this.selection!.addComponent({ writerId: p.writerId, instanceId: p.instanceId, componentType: p.componentType as ComponentType, logicalPath: p.logicalPath, componentName: p.componentName });
    const id = r.metadata.identity;
    this.bcd.writer(id.writerId, id.instanceId, id.instanceName, r.metadata.backupSchema).addComponent(p.componentType as ComponentType, p.logicalPath, p.componentName);
  }

  private component(p: { writerId: string; componentType: number; logicalPath: string; componentName: string; instanceId?: string }, call: string) {
    this.live(call);
    this.writerCall(call);
    const c = this.bcd.getComponent(Guid.parse(p.writerId), p.instanceId ? Guid.parse(p.instanceId) : undefined, p.logicalPath, p.componentName);
    if (c.componentType !== p.componentType) throw new VssError('E_INVALIDARG', `${call}: component "${c.fullPath}" is not of type ${p.componentType}`);
    return c;
  }

  setBackupOptions(p: { writerId: string; componentType: number; logicalPath: string; componentName: string; options: string }): void {
    const c = this.component(p, 'setBackupOptions');
    if (this.prepareForBackupSent) this.badState('setBackupOptions after prepareForBackup; set options before prepareForBackup');
    c.setBackupOptions(p.options);
  }

  setPreviousBackupStamp(p: { writerId: string; componentType: number; logicalPath: string; componentName: string; stamp: string }): void {
    const c = this.component(p, 'setPreviousBackupStamp');
    if (this.prepareForBackupSent) this.badState('setPreviousBackupStamp after prepareForBackup; set it before prepareForBackup');
    c.setPreviousBackupStamp(p.stamp);
  }

  setBackupSucceeded(p: { instanceId: string; writerId: string; componentType: number; logicalPath: string; componentName: string; succeeded: boolean }): void {
    const c = this.component(p, 'setBackupSucceeded');
    if (!this.snapshotDone) this.badState('setBackupSucceeded before doSnapshotSet completed; call doSnapshotSet first');
    if (this.backupCompleted) this.badState('setBackupSucceeded after backupComplete; it must precede backupComplete');
    c.setBackupSucceeded(p.succeeded);
  }

  startSnapshotSet(): string {
    this.live('startSnapshotSet');
    if (this.context === SnapshotContext.ALL) this.badState('startSnapshotSet in VSS_CTX_ALL; that context is for query and deletion only — call setContext with a creation context');
    if (this.snapshotStarted) this.badState('startSnapshotSet was already called; a session creates one snapshot set');
    if (!this.writerless && !this.records) this.badState('startSnapshotSet before gatherWriterMetadata; in a writer context call gatherWriterMetadata first');
    this.host.acquireCreation(this);
    try {
      this.set = this.host.snapshots().startSnapshotSet({ sessionId: this.id, context: this.context });
    } catch (e) {
      this.host.releaseCreation(this);
      throw e;
    }
    this.snapshotStarted = true;
    this.bcd.snapshotSetId = this.set.snapshotSetId;
    this.timeline.snapshotSetId = this.set.snapshotSetId.toString();
    return this.set.snapshotSetId.toString();
  }

  async isVolumeSupported(volume: string, provider?: string): Promise<{ supported: boolean; reason: string; provider?: string }> {
    this.live('isVolumeSupported');
    const r = await this.host.snapshots().isVolumeSupported(volume, provider as never);
    return { supported: r.supported, reason: r.reason, ...(r.provider ? { provider: r.provider } : {}) };
  }

  async addToSnapshotSet(volume: string, provider?: 'btrfs' | 'reflink' | 'copy'): Promise<string> {
    this.live('addToSnapshotSet');
    if (!this.set || !this.snapshotStarted) this.badState('addToSnapshotSet before startSnapshotSet; call startSnapshotSet first');
    if (this.sequence || this.snapshotDone || this.aborted) this.badState('addToSnapshotSet after doSnapshotSet; the set is fixed once creation begins');
    const id = await this.set.addToSnapshotSet(volume, provider ? { provider } : {});
    this.volumes.push((await resolveVolume(volume)).root);
    return id.toString();
  }

  private eventContext(): SessionContext {
    return {
      backupType: this.bcd.backupType,
      restoreType: this.bcd.restoreType,
      selectComponents: this.bcd.selectComponents,
      bootableSystemStateBackup: this.bcd.bootableSystemStateBackup,
      partialFileSupport: this.bcd.partialFileSupport,
      snapshotContext: this.context,
      volumes: [...this.volumes],
    };
  }

  /** Participation (spec §4.2): explicit components; in non-component mode, writers with files on the set's volumes (INFERRED). */
  private participates(r: WriterRecord): boolean {
    if (this.bcd.selectComponents) return this.bcd.findWriter(r.entry.writerId, r.entry.instanceId)?.components.length ? true : false;
    const within = (p: string): boolean => this.volumes.some((v) => p === v || p.startsWith(v.endsWith('/') ? v : `${v}/`));
    return r.metadata.components.some((c) => [...c.files, ...c.databaseFiles, ...c.logFiles].some((f) => within(f.path)));
  }

  async prepareForBackup(signal?: AbortSignal): Promise<void> {
    this.live('prepareForBackup');
    this.writerCall('prepareForBackup');
    if (!this.backupStateSet) this.badState('prepareForBackup before setBackupState; call setBackupState first');
    const records = this.gathered('prepareForBackup');
    if (!this.snapshotStarted) this.badState('prepareForBackup before startSnapshotSet; call startSnapshotSet first');
    if (this.prepareForBackupSent) this.badState('prepareForBackup was already called');
    if (this.aborted) this.badState('prepareForBackup after abortBackup; release this session and start again');
    this.prepareForBackupSent = true;
    for (const r of records) r.participant = this.participates(r);
    await this.broadcast(records.filter((r) => r.participant), 'PrepareForBackup', this.host.timeouts.eventMs.PrepareForBackup, [signal]);
    if (signal?.aborted) throw new OperationCancelled('prepareForBackup');
    this.preparedForBackup = true;
    this.lastCompletedOp = 'prepareForBackup';
  }

  /** DoSnapshotSet: PrepareForSnapshot, Freeze by level, provider commit, Thaw in reverse, PostSnapshot (spec §16). */
  async doSnapshotSet(signal?: AbortSignal): Promise<void> {
    this.live('doSnapshotSet');
    if (!this.set || !this.snapshotStarted) this.badState('doSnapshotSet before startSnapshotSet; call startSnapshotSet first');
    if (!this.writerless && !this.preparedForBackup) this.badState('doSnapshotSet before prepareForBackup completed; call prepareForBackup first');
    if (this.sequence || this.snapshotDone) this.badState('doSnapshotSet was already called; a session creates one snapshot set');
    if (this.aborted) this.badState('doSnapshotSet after the backup was aborted; release this session and start again');
    this.sequence = this.runSnapshotSequence(this.set, signal);
    try {
      await this.sequence;
      this.lastCompletedOp = 'doSnapshotSet';
    } finally {
      this.snapshotDone = true;
      this.host.releaseCreation(this);
    }
  }

  private async runSnapshotSequence(set: SnapshotSetCreation, signal: AbortSignal | undefined): Promise<void> {
    const seq = new AbortController();
    this.seqAbort = seq;
    const onStop = (): void => seq.abort(new VssError('VSS_E_BAD_STATE', 'the session was released while the snapshot set was being created'));
    this.stop.signal.addEventListener('abort', onStop, { once: true });
    const onCancel = (): void => seq.abort(new OperationCancelled('doSnapshotSet'));
    signal?.addEventListener('abort', onCancel, { once: true });
    const windows = new Map<WriterRecord, FreezeWindow>();
    /** The window timers of each freeze level. */
    const windowTimers: TimerHandle[][] = [[], [], []];
    const provider = <T>(name: string, p: Promise<T>): Promise<T> => {
      const at = this.host.clock.now();
      this.providerInFlight = p;
      p.then(
        () => this.timeline.add({ kind: 'provider', name, at: new Date(at).toISOString(), durationMs: this.host.clock.now() - at, answer: 'ok' }),
        (e: unknown) => this.timeline.add({ kind: 'provider', name, at: new Date(at).toISOString(), durationMs: this.host.clock.now() - at, answer: 'error', message: (e as Error).message }),
      );
      return race(p, seq.signal);
    };
    try {
      // A writer that went away is still sent its next event: dispatch records it as not responding.
      const active = (): WriterRecord[] => (this.records ?? []).filter((r) => r.participant && !r.out);
      await race(this.broadcast(active(), 'PrepareForSnapshot', this.host.timeouts.eventMs.PrepareForSnapshot, [seq.signal]), seq.signal);
      set.setExcludeFromSnapshot((this.records ?? []).filter((r) => r.participant).flatMap((r) => [...r.metadata.excludeFilesFromSnapshot]));
      if (set.snapshotIds.length) await provider('PrepareSnapshots', set.prepare());
      // Freeze: FRONT_END, then BACK_END, then SYSTEM; one level's writers in parallel.
      const frozen: WriterRecord[] = [];
      for (const rank of [0, 1, 2]) {
        const level = active().filter((r) => r.entry.freezeRank === rank);
        // One timer per window length: the writers of a level are frozen together, and those
        // with the same window expire together (in order, as with a timer each).
        const byLength = new Map<number, WriterRecord[]>();
        for (const r of level) {
          windows.set(r, new FreezeWindow());
          const ms = r.entry.sub.freezeTimeoutMs ?? this.host.timeouts.freezeWindowMs;
          const group = byLength.get(ms);
          if (group) group.push(r);
          else byLength.set(ms, [r]);
        }
        for (const [ms, group] of byLength) {
          windowTimers[rank]!.push(this.host.clock.setTimer(ms, () => group.forEach((r) => this.windowExpired(r, windows.get(r)!, seq, ms))));
        }
        frozen.push(...level);
        await race(this.broadcast(level, 'Freeze', undefined, [seq.signal], (r) => windows.get(r)!), seq.signal);
        this.throwIfSequenceFailed(level, 'Freeze');
      }
      if (set.snapshotIds.length) {
        await provider('PreCommitSnapshots', set.preCommit());
        await provider('CommitSnapshots', set.commit());
        await provider('PostCommitSnapshots', set.postCommit());
        this.snapshotsCreated = true;
      } else {
        // An empty set (no component named a volume): nothing to commit; the provider side is closed.
        await set.abort();
      }
      // Thaw in reverse order of Freeze.
      for (const rank of [2, 1, 0]) {
        const level = frozen.filter((r) => r.entry.freezeRank === rank && !r.out);
        for (const r of level) r.thawSent = true;
        await race(this.broadcast(level, 'Thaw', undefined, [seq.signal], (r) => windows.get(r)!), seq.signal);
        for (const t of windowTimers[rank]!) t.cancel();
        this.throwIfSequenceFailed(level, 'Thaw');
      }
      if (seq.signal.aborted) throw seq.signal.reason as Error;
      // From here on no Abort is ever sent (spec §8): PostSnapshot failures are reported in the status.
      this.postSnapshotStarted = true;
      const post = active();
      await this.broadcast(post, 'PostSnapshot', this.host.timeouts.eventMs.PostSnapshot, [this.stop.signal]);
      for (const r of post) r.postSnapshotDone = true;
    } catch (e) {
      await this.abortSequence(e instanceof Error ? e.message : String(e));
      if (e instanceof OperationCancelled || VssError.is(e)) throw e;
      throw new VssError('VSS_E_UNEXPECTED', (e as Error).message, { cause: e });
    } finally {
      for (const t of windowTimers.flat()) t.cancel();
      this.stop.signal.removeEventListener('abort', onStop);
      signal?.removeEventListener('abort', onCancel);
    }
  }

  /** The Freeze→Thaw window of one writer ran out: it fails with VSS_E_WRITERERROR_TIMEOUT and the set is aborted. */
  private windowExpired(r: WriterRecord, window: FreezeWindow, seq: AbortController, ms: number): void {
    if (r.out || this.postSnapshotStarted) return;
    this.fail(r, r.thawSent ? 'Thaw' : 'Freeze', { answer: 'timeout', hr: HRESULT.VSS_E_WRITERERROR_TIMEOUT, hrApplication: 0, applicationMessage: `no Thaw within the ${ms} ms freeze window` });
    window.close();
    seq.abort(new VssError('VSS_E_WRITERERROR_TIMEOUT', `${r.entry.label()} was frozen longer than its ${ms} ms window; the snapshot set was aborted. Retry when the system is less busy, or give the writer a longer freeze timeout`));
  }

  private throwIfSequenceFailed(level: WriterRecord[], event: 'Freeze' | 'Thaw'): void {
    const culprit = level.find((r) => r.out);
    if (!culprit) return;
    const name = (isFailure(culprit.hr) ? hresultName(culprit.hr) : 'VSS_E_WRITERERROR_NONRETRYABLE') as VssErrorName;
    throw new VssError(name in HRESULT ? name : 'VSS_E_UNEXPECTED_WRITER_ERROR', `${culprit.entry.label()} failed at ${event}${culprit.applicationMessage ? ` (${culprit.applicationMessage})` : ''}; the snapshot set was aborted. Read the writer status for details`);
  }

  /** Abort to the writers (spec §8), the set undone. Idempotent; never after PostSnapshot began. */
  abortSequence(reason: string): Promise<void> {
    if (this.postSnapshotStarted) return Promise.resolve();
    this.abortPromise ??= (async () => {
      this.aborted = true;
      this.host.log('info', 'aborting the backup', { sessionId: this.id, reason });
      this.seqAbort?.abort(new VssError('VSS_E_BAD_STATE', `the backup was aborted: ${reason}`));
      await this.providerInFlight?.catch(() => undefined);
      if (this.prepareForBackupSent) {
        const targets = (this.records ?? []).filter((r) => r.participant && !r.entry.gone && !r.postSnapshotDone);
        await this.broadcast(targets, 'Abort', this.host.timeouts.eventMs.Abort, []);
      }
      if (this.set) {
        try {
          if (!this.set.finished) await this.set.abort();
          else if (this.snapshotsCreated) await this.host.snapshots().deleteSnapshots(this.set.snapshotSetId, ObjectType.SNAPSHOT_SET);
        } catch (e) {
          this.host.log('error', 'could not remove the aborted snapshot set', { sessionId: this.id, error: (e as Error).message });
        }
        this.snapshotsCreated = false;
      }
      this.host.releaseCreation(this);
    })();
    return this.abortPromise;
  }

  /** AbortBackup: legal any time after initialization; a no-op when nothing is in progress or after PostSnapshot. */
  async abortBackup(): Promise<void> {
    if (this.mode === 'restore') this.badState('abortBackup in a restore session: restores cannot be aborted (spec §19.8); finish with postRestore, then release');
    this.live('abortBackup');
    if (!this.snapshotStarted || this.postSnapshotStarted) return;
    await this.abortSequence('the requester called abortBackup');
    await this.sequence?.catch(() => undefined);
  }

  async backupComplete(signal?: AbortSignal): Promise<void> {
    this.live('backupComplete');
    this.writerCall('backupComplete');
    if (!this.snapshotDone || this.aborted || !this.postSnapshotStarted) this.badState('backupComplete before a successful doSnapshotSet; call doSnapshotSet first (after a failed one, call abortBackup)');
    if (this.backupCompleted) this.badState('backupComplete was already called');
    this.backupCompleted = true;
    const targets = (this.records ?? []).filter((r) => r.participant && !r.out);
    await this.broadcast(targets, 'BackupComplete', this.host.timeouts.eventMs.BackupComplete, [this.stop.signal, signal]);
    if (signal?.aborted) {
      // Cancelling BackupComplete after the snapshot is a way to abort (spec §9); no Abort event after PostSnapshot.
      throw new OperationCancelled('backupComplete');
    }
    this.lastCompletedOp = 'backupComplete';
  }

  /** GatherWriterStatus: the status records of the writers that answered Identify in this session. */
  gatherWriterStatus(): { statuses: WriterStatusWire[]; reliable: boolean } {
    const reliable = this.lastCompletedOp !== undefined;
    this.live('gatherWriterStatus');
    this.lastCompletedOp = reliable ? 'gatherWriterStatus' : undefined;
    const records = this.gathered('gatherWriterStatus');
    return {
      reliable,
      statuses: records.map((r) => ({
        instanceId: r.entry.instanceId.toString(),
        writerId: r.entry.writerId.toString(),
        writerName: r.entry.sub.writerName,
        instanceName: r.entry.sub.instanceName,
        state: r.state,
        hrWriterFailure: r.hr >>> 0,
        hrApplication: r.hrApplication >>> 0,
        applicationMessage: r.applicationMessage,
      })),
    };
  }

  async getSnapshotProperties(snapshotId: string): Promise<SnapshotPropertiesWire> {
    this.live('getSnapshotProperties');
    return propertiesToWire(await this.host.snapshots().getSnapshotProperties(snapshotId));
  }

  saveAsXml(): string {
    this.live('saveAsXml');
    return writeBackupComponents(this.bcd);
  }

  query(): SnapshotPropertiesWire[] {
    this.live('query');
    return this.host.snapshots().query({ context: this.context === SnapshotContext.ALL ? SnapshotContext.ALL : this.context & 0x1d }).map(propertiesToWire);
  }

  async deleteSnapshots(id: string, objectType: number): Promise<{ deletedCount: number; nonDeletedSnapshotId: string }> {
    this.live('deleteSnapshots');
    if (objectType !== ObjectType.SNAPSHOT && objectType !== ObjectType.SNAPSHOT_SET) throw new VssError('E_INVALIDARG', 'deleteSnapshots takes VSS_OBJECT_SNAPSHOT (3) or VSS_OBJECT_SNAPSHOT_SET (2)');
    try {
      const r = await this.host.snapshots().deleteSnapshots(id, objectType);
      return { deletedCount: r.deletedCount, nonDeletedSnapshotId: Guid.NULL.toString() };
    } catch (e) {
      if (VssError.is(e)) throw e;
      throw new VssError('VSS_E_UNEXPECTED_PROVIDER_ERROR', (e as Error).message);
    }
  }

  /**
   * Release (also when the requester's connection drops): an unfinished set is aborted,
   * the auto-release snapshots are deleted, every writer that took part gets BackupShutdown.
   */
  /**
   * The requester's own release: refused while writers handle PreRestore or PostRestore — they
   * read the document until they answer (spec §5 step 12); the requester awaits the call first.
   */
  async requestRelease(): Promise<void> {
    if (!this.released && (this.preRestoreState === 'running' || this.postRestoreState === 'running')) {
      this.badState(`release while writers are handling ${this.postRestoreState === 'running' ? 'PostRestore' : 'PreRestore'}; wait for ${this.postRestoreState === 'running' ? 'postRestore' : 'preRestore'} to complete, then release`);
    }
    return this.release();
  }

  release(reason = 'released by the requester'): Promise<void> {
    this.releasePromise ??= (async () => {
      const at = this.host.clock.now();
      // A requester gone during PostRestore: the writers still finish their recovery and read
      // the document until then (bounded by the PostRestore deadline). PreRestore is given up.
      if (this.postRestoreState === 'running') await this.restoreEvent?.catch(() => undefined);
      this.released = true;
      if (this.snapshotStarted && !this.postSnapshotStarted) await this.abortSequence(reason);
      // Events still in flight (a writer hanging in PostSnapshot or BackupComplete) are given up.
      this.stop.abort(new VssError('VSS_E_BAD_STATE', reason));
      await this.sequence?.catch(() => undefined);
      this.host.releaseCreation(this);
      try {
        await this.host.snapshots().releaseSession(this.id);
      } catch (e) {
        this.host.log('error', 'could not delete the session\'s auto-release snapshots', { sessionId: this.id, error: (e as Error).message });
      }
      const setId = this.snapshotsCreated && this.set ? this.set.snapshotSetId : Guid.NULL;
      const targets = (this.records ?? []).filter((r) => r.participant && !r.entry.gone);
      await this.broadcast(targets, 'BackupShutdown', this.host.timeouts.eventMs.BackupShutdown, [], undefined, setId);
      this.note('Release', at, 'ok', reason);
      this.timeline.endedAt = new Date(this.host.clock.now()).toISOString();
      await this.host.sessionEnded(this);
    })();
    return this.releasePromise;
  }

  // ---- restore (spec §5, §13.3, §14) ----------------------------------------------------------

  private restoreCall(call: string): void {
    if (this.released) this.badState(`${call}: this session was released; open a new one (sessions are never reused)`);
    if (this.mode !== 'restore') {
      this.badState(`${call} is a restore call; ${this.mode === 'backup' ? 'this session was initialized for backup — open another session and call initializeForRestore' : 'call initializeForRestore first'}`);
    }
    this.lastCompletedOp = undefined;
  }

  private selectionFor(call: string): RestoreSelection {
    if (!this.restoreSelection) this.badState(`${call} before gatherWriterMetadata; call gatherWriterMetadata first (it learns which writers run now)`);
    return this.restoreSelection;
  }

  /** Selections and restore options: after gatherWriterMetadata, before preRestore (spec §13.3 rule 5). */
  private selecting(call: string): RestoreSelection {
    this.restoreCall(call);
    if (this.preRestoreState !== 'not-sent') this.badState(`${call} after preRestore; make every selection and restore option before preRestore`);
    return this.selectionFor(call);
  }

  /** What the requester records while putting files back: between preRestore and postRestore (spec §5 step 10). */
  private restoring(call: string): void {
    this.restoreCall(call);
    if (this.preRestoreState !== 'done') this.badState(`${call} before preRestore completed; call preRestore first (files are put back between preRestore and postRestore)`);
    if (this.postRestoreState !== 'not-sent') this.badState(`${call} after postRestore; record what was restored before calling postRestore`);
  }

  private ref(p: RestoreComponentParams, instanceId?: Guid): ComponentRef {
    return { writerId: p.writerId, componentType: p.componentType as ComponentType, logicalPath: p.logicalPath, componentName: p.componentName, ...(instanceId ? { instanceId } : {}) };
  }

  /** A component explicit in the stored document, by class writer id (spec §18.1: only SetSelectedForRestoreEx names an instance). */
  private storedComponent(p: RestoreComponentParams, call: string): Component {
    const wid = Guid.parse(p.writerId);
    const writers = this.bcd.writers.filter((w) => w.writerId.equals(wid));
    if (!writers.length) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `${call}: writer ${wid.toString()} is not in the backup components document`);
    const key = componentKey(p.logicalPath, p.componentName, {});
    const found = writers.flatMap((w) => w.components.filter((c) => componentKey(c.logicalPath, c.componentName, {}) === key));
    const path = fullPath(p.logicalPath, p.componentName);
    if (!found.length) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `${call}: component "${path}" of writer ${wid.toString()} is not in the backup components document; only components explicit at backup have an entry (address a subcomponent through its defining component)`);
    }
    const selected = found.filter((c) => c.isSelectedForRestore());
    if (!selected.length) throw new VssError('E_INVALIDARG', `${call}: component "${path}" is not selected for restore`);
    if (selected.length > 1) throw new VssError('E_INVALIDARG', `${call}: component "${path}" is selected in ${selected.length} instances of writer ${wid.toString()}; restore them in separate sessions`);
    const c = selected[0]!;
    if (c.componentType !== p.componentType) throw new VssError('E_INVALIDARG', `${call}: component "${c.fullPath}" is not of type ${p.componentType}`);
    return c;
  }

  /**
   * InitializeForRestore with the saved BCD and the writer metadata saved with it. The two
   * are untrusted input and must belong together: every writer of the BCD has its stored WMD,
   * every component of the BCD is declared there.
   */
  initializeForRestore(bcdXml: string, writerMetadataXml: readonly string[]): void {
    if (this.released) this.badState('initializeForRestore: this session was released; open a new one');
    if (this.initialized) this.badState(`initializeForRestore after ${this.mode === 'restore' ? 'initializeForRestore' : 'initializeForBackup'}; a session is initialized once`);
    const saved = parseBackupComponents(bcdXml, 'the saved Backup Components Document');
    const stored = writerMetadataXml.map((x, i) => parseWriterMetadata(x, `stored writer metadata #${i + 1}`));
    for (const w of restoreWriters(saved, stored)) {
      for (const c of w.components.components) {
        if (!w.tree.find(c.logicalPath, c.componentName)) {
          throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the backup components document names component "${c.fullPath}" of writer "${w.metadata.identity.writerName}", which its stored metadata does not declare; the documents are not from the same backup`);
        }
      }
    }
    this.bcd.setBackupState({
      selectComponents: saved.selectComponents,
      bootableSystemStateBackup: saved.bootableSystemStateBackup,
      backupType: saved.backupType === BackupType.UNDEFINED ? BackupType.FULL : saved.backupType,
      partialFileSupport: saved.partialFileSupport,
    });
    this.bcd.snapshotSetId = saved.snapshotSetId;
    // The natural default (spec §5 #3); setRestoreState changes it.
    this.bcd.restoreType = RestoreType.BY_COPY;
    for (const w of saved.writers) {
      for (const c of w.components) clearRestoreState(c);
      this.bcd.writers.push(w);
    }
    this.storedMetadata = stored;
    this.initialized = true;
    this.mode = 'restore';
    this.note('InitializeForRestore', this.host.clock.now(), 'ok');
  }

  setRestoreState(restoreType: number): void {
    this.restoreCall('setRestoreState');
    if (this.preRestoreState !== 'not-sent') this.badState('setRestoreState after preRestore; writers were already told');
    if (restoreType === RestoreType.UNDEFINED) throw new VssError('E_INVALIDARG', 'setRestoreState takes VSS_RTYPE_BY_COPY (1), VSS_RTYPE_IMPORT (2) or VSS_RTYPE_OTHER (3)');
    this.bcd.setRestoreState(restoreType as RestoreType);
  }

  /**
   * SetSelectedForRestore, or SetSelectedForRestoreEx with `instanceId`: a backed-up instance
   * of the class in the document (when there are several), or a running instance to restore to.
   */
  setSelectedForRestore(p: RestoreComponentParams & { selected: boolean; instanceId?: string | undefined }): void {
    const sel = this.selecting('setSelectedForRestore');
    if (p.instanceId === undefined) return sel.setSelectedForRestore(this.ref(p), p.selected);
    const iid = Guid.parse(p.instanceId);
    if (this.bcd.findWriter(Guid.parse(p.writerId), iid)) return sel.setSelectedForRestore(this.ref(p, iid), p.selected);
    const live = this.records!.find((r) => r.entry.instanceId.equals(iid));
    if (!live) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `setSelectedForRestoreEx: instance ${iid.toString()} is neither a backed-up instance of writer ${p.writerId} in the document nor a writer that answered gatherWriterMetadata`);
    }
    if (!live.entry.writerId.equals(p.writerId)) throw new VssError('E_INVALIDARG', `setSelectedForRestoreEx: instance ${iid.toString()} is of writer class ${live.entry.writerId.toString()}, not ${p.writerId}`);
    sel.setSelectedForRestore(this.ref(p), p.selected, iid);
  }

  addRestoreSubcomponent(p: RestoreComponentParams & { subLogicalPath: string; subComponentName: string; repair: boolean }): void {
    this.selecting('addRestoreSubcomponent').addRestoreSubcomponent(this.ref(p), p.subLogicalPath, p.subComponentName, p.repair);
  }

  setRestoreOptions(p: RestoreComponentParams & { options: string }): void {
    this.selecting('setRestoreOptions').setRestoreOptions(this.ref(p), p.options);
  }

  setAdditionalRestores(p: RestoreComponentParams & { additionalRestores: boolean }): void {
    this.selecting('setAdditionalRestores').setAdditionalRestores(this.ref(p), p.additionalRestores);
  }

  addNewTarget(p: RestoreComponentParams & { path: string; filespec: string; recursive: boolean; alternatePath: string }): void {
    this.selecting('addNewTarget').addNewTarget(this.ref(p), p.path, p.filespec, p.recursive, p.alternatePath);
  }

  setRollForward(p: RestoreComponentParams & { rollForwardType: number; point: string }): void {
    this.selecting('setRollForward').setRollForward(this.ref(p), p.rollForwardType as RollForwardType, p.point);
  }

  setAuthoritativeRestore(p: RestoreComponentParams & { authoritative: boolean }): void {
    this.selecting('setAuthoritativeRestore').setAuthoritativeRestore(this.ref(p), p.authoritative);
  }

  setRestoreName(p: RestoreComponentParams & { restoreName: string }): void {
    this.selecting('setRestoreName').setRestoreName(this.ref(p), p.restoreName);
  }

  addAlternativeLocationMapping(p: RestoreComponentParams & { path: string; filespec: string; recursive: boolean; destination: string }): void {
    this.restoring('addAlternativeLocationMapping');
    this.storedComponent(p, 'addAlternativeLocationMapping');
    this.selectionFor('addAlternativeLocationMapping').addAlternativeLocationMapping(this.ref(p), p.path, p.filespec, p.recursive, p.destination);
  }

  setRangesFilePath(p: RestoreComponentParams & { partialFileIndex: number; rangesFilePath: string }): void {
    this.restoring('setRangesFilePath');
    this.storedComponent(p, 'setRangesFilePath').setRangesFilePath(p.partialFileIndex, p.rangesFilePath);
  }

  setFileRestoreStatus(p: RestoreComponentParams & { status: number }): void {
    this.restoring('setFileRestoreStatus');
    this.storedComponent(p, 'setFileRestoreStatus').setFileRestoreStatus(p.status as FileRestoreStatus);
  }

  private storedMetadataOf(w: WriterComponents): WriterMetadata {
    // restoreWriters checked at initializeForRestore that every writer of the document has one.
    return this.storedMetadata.find((m) => m.identity.writerId.equals(w.writerId) && m.identity.instanceId.equals(w.instanceId))!;
  }

  /**
   * Which running instance restores each backed-up writer with something selected: the
   * instance named by SetSelectedForRestoreEx, else the one with the backed-up instance name.
   */
  private assignRestoreInstances(records: WriterRecord[]): void {
    const pairs: [WriterRecord, WriterComponents][] = [];
    for (const w of this.bcd.writers) {
      const selected = w.components.filter((c) => c.isSelectedForRestore());
      if (!selected.length) continue;
      const targets = new Set(selected.map((c) => c.restoreInstanceId?.value ?? ''));
      if (targets.size > 1) {
        throw new VssError('E_INVALIDARG', `components of writer ${w.writerId.toString()} instance ${w.instanceId.toString()} are selected for restore to different running instances; restore them in separate sessions`);
      }
      const to = selected[0]!.restoreInstanceId;
      const same = records.filter((r) => r.entry.writerId.equals(w.writerId) && (!w.instanceName || r.entry.sub.instanceName === w.instanceName));
      const r = to ? records.find((x) => x.entry.instanceId.equals(to)) : (same.find((x) => x.entry.sub.instanceName === '') ?? same[0]);
      if (!r) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `writer ${w.writerId.toString()}${w.instanceName ? ` instance "${w.instanceName}"` : ''} is not running; its components cannot be restored with writer participation`);
      const clash = pairs.find(([x]) => x === r);
      if (clash) throw new VssError('E_INVALIDARG', `two backed-up instances of writer ${w.writerId.toString()} would be restored to the same running instance ${r.entry.instanceId.toString()}; restore them in separate sessions`);
      pairs.push([r, w]);
    }
    for (const [r, w] of pairs) r.restoring = w;
  }

  /** writerRestore (spec §14.7) and the subscription decide who hears PreRestore and PostRestore. */
  private wantsRestoreEvent(r: WriterRecord, event: 'PreRestore' | 'PostRestore'): boolean {
    const w = r.restoring;
    if (!w || (r.entry.sub.eventFlags & SubscribeMask.RESTORE_EVENTS_FLAG) === 0) return false;
    const rm = this.storedMetadataOf(w).getRestoreMethod();
    if (event === 'PostRestore' && r.out) return false; // vetoed PreRestore or stopped answering
    switch (rm.writerRestore) {
      case WriterRestore.ALWAYS:
        return true;
      case WriterRestore.IF_REPLACE_FAILS:
        if (event === 'PreRestore') return true;
        if (rm.method !== RestoreMethod.RESTORE_IF_NOT_THERE && rm.method !== RestoreMethod.RESTORE_IF_CAN_REPLACE) return false;
        return w.components.some((c) => c.isSelectedForRestore() && (c.fileRestoreStatus === FileRestoreStatus.NONE || c.fileRestoreStatus === FileRestoreStatus.FAILED));
      default:
        // NEVER, and a writer that gave no restore method: it expects no restore events.
        return false;
    }
  }

  /** PreRestore to the writers with something selected; their edits come back into the document. Not cancellable. */
  async preRestore(): Promise<void> {
    this.restoreCall('preRestore');
    const sel = this.selectionFor('preRestore');
    if (this.preRestoreState !== 'not-sent') this.badState('preRestore was already called; a restore session prepares once');
    const records = this.gathered('preRestore');
    this.assignRestoreInstances(records);
    sel.close();
    this.preRestoreState = 'running';
    const run = this.broadcast(records.filter((r) => this.wantsRestoreEvent(r, 'PreRestore')), 'PreRestore', this.host.timeouts.eventMs.PreRestore, [this.stop.signal]);
    this.restoreEvent = run;
    try {
      await run;
    } finally {
      this.preRestoreState = 'done';
    }
    this.lastCompletedOp = 'preRestore';
  }

  /** PostRestore to the writers that take part (spec §14.7). Not cancellable; release waits for it. */
  async postRestore(): Promise<void> {
    this.restoreCall('postRestore');
    if (this.preRestoreState !== 'done') this.badState('postRestore before preRestore completed; call preRestore first');
    if (this.postRestoreState !== 'not-sent') this.badState('postRestore was already called; a restore session finishes once');
    this.postRestoreState = 'running';
    const targets = (this.records ?? []).filter((r) => this.wantsRestoreEvent(r, 'PostRestore'));
    // No stop signal: a requester that disconnects now still lets the writers finish (release waits).
    const run = this.broadcast(targets, 'PostRestore', this.host.timeouts.eventMs.PostRestore, []);
    this.restoreEvent = run;
    try {
      await run;
    } finally {
      this.postRestoreState = 'done';
    }
    this.lastCompletedOp = 'postRestore';
  }

  /** Takes from a writer's answer what it may change in a restore: PreRestore targets, metadata and messages; PostRestore messages. */
  private mergeRestoreEdits(r: WriterRecord, event: WriterEventName, xml: string): void {
    const mine = r.restoring;
    const back = parseBackupComponents(xml, `the document ${r.entry.label()} returned`).writers[0];
    if (!mine || !back) return;
    if (!back.writerId.equals(mine.writerId)) throw new VssError('VSS_E_INVALID_XML_DOCUMENT', `the writer returned the components of writer ${back.writerId.toString()}, not its own`);
    const edits: [Component, Component][] = [];
    for (const c of back.components) {
      const t = mine.findComponent(c.logicalPath, c.componentName);
      if (!t) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the writer returned component "${c.fullPath}", which is not in the document; writers cannot add components`);
      if (event === 'PreRestore') {
        for (const d of c.directedTargets) {
          parseRangeList(d.sourceRangeList);
          parseRangeList(d.destinationRangeList);
        }
        if (c.directedTargets.length && c.restoreTarget !== RestoreTarget.DIRECTED) {
          throw new VssError('E_INVALIDARG', `the writer added directed targets to "${c.fullPath}" but left its restore target at ${c.restoreTarget}; directed targets need VSS_RT_DIRECTED (spec §14.5)`);
        }
      }
      edits.push([t, c]);
    }
    // All checked first: an answer is taken whole or not at all.
    for (const [t, c] of edits) {
      if (event === 'PreRestore') {
        t.restoreTarget = c.restoreTarget;
        t.directedTargets.splice(0, t.directedTargets.length, ...c.directedTargets);
        t.restoreMetadata = c.restoreMetadata;
        t.preRestoreFailureMsg = c.preRestoreFailureMsg;
      } else if (event === 'PostRestore') {
        t.postRestoreFailureMsg = c.postRestoreFailureMsg;
      }
      t.failure = c.failure;
    }
  }

  // ---- events ---------------------------------------------------------------------------

  /**
   * Sends `event` to every writer of `records` at once and records each outcome. It stops
   * waiting at the deadline or when a signal aborts; `perWriter` gives a writer its own
   * stop (the freeze window).
   */
  private async broadcast(
    records: WriterRecord[],
    event: WriterEventName,
    deadlineMs: number | undefined,
    signals: readonly (AbortSignal | undefined)[],
    perWriter?: (r: WriterRecord) => FreezeWindow,
    snapshotSetId?: Guid,
  ): Promise<void> {
    const session = { context: this.eventContext(), snapshotSetId: (snapshotSetId ?? this.set?.snapshotSetId ?? Guid.NULL).toString() };
    await this.fanOut(records, deadlineMs, signals, async (r, fan) => {
      const outcome = await this.dispatch(r.entry, event, { fan, window: perWriter?.(r), session, record: r }, (res) => this.mergeBcd(r, event, res.bcdXml));
      this.apply(r, event, outcome);
    });
  }

  /** Runs `each` for every item at once, under one FanOut. */
  private async fanOut<T, R>(items: readonly T[], deadlineMs: number | undefined, signals: readonly (AbortSignal | undefined)[], each: (item: T, fan: FanOut) => Promise<R>): Promise<R[]> {
    if (!items.length) return [];
    const fan = new FanOut(this.host.clock, deadlineMs, signals);
    try {
      return await Promise.all(items.map((item) => each(item, fan)));
    } finally {
      fan.end();
    }
  }

  private apply(r: WriterRecord, event: WriterEventName, o: Outcome): void {
    if (o.answer === 'cancelled') return;
    if (o.answer === 'ok') {
      const next = SUCCESS_STATE[event];
      if (next !== undefined && !isFailedState(r.state)) r.state = next;
    } else this.fail(r, event, o);
    r.entry.lastState = r.state;
    r.entry.lastError = r.hr;
    r.entry.lastApplicationMessage = r.applicationMessage;
  }

  private fail(r: WriterRecord, event: WriterEventName, o: Outcome): void {
    // A writer that failed but did not veto goes on with the sequence (spec §4.3); the others stop here.
    if (o.answer !== 'fail') r.out = true;
    if (event === 'Abort') return;
    if (isFailedState(r.state) && r.hr !== 0) return;
    r.state = FAILED_STATE[event] ?? WriterState.UNKNOWN;
    r.hr = o.hr;
    r.hrApplication = o.hrApplication;
    r.applicationMessage = o.applicationMessage;
    r.entry.lastState = r.state;
    r.entry.lastError = r.hr;
    r.entry.lastApplicationMessage = r.applicationMessage;
  }

  /** The writer's own entry in the document: its backed-up entry in a restore, where instance ids changed since. */
  private ownPart(r: WriterRecord): WriterComponents | undefined {
    return this.mode === 'restore' ? r.restoring : this.bcd.findWriter(r.entry.writerId, r.entry.instanceId);
  }

  /** The document a writer is sent: the session's backup state with only the writer's own part. */
  private writerBcd(mine: WriterComponents): string {
    const doc = new BackupComponentsDocument();
    doc.setBackupState({ selectComponents: this.bcd.selectComponents, bootableSystemStateBackup: this.bcd.bootableSystemStateBackup, backupType: this.bcd.backupType, partialFileSupport: this.bcd.partialFileSupport });
    doc.snapshotSetId = this.bcd.snapshotSetId;
    doc.restoreType = this.bcd.restoreType;
    doc.writers.push(mine);
    return writeBackupComponents(doc);
  }

  /** Takes what a writer may change in its components (spec §4.3, §4.4) from its answer. */
  private mergeBcd(r: WriterRecord, event: WriterEventName, xml: string | undefined): void {
    if (!xml || !BCD_EVENTS.includes(event)) return;
    if (this.mode === 'restore') return this.mergeRestoreEdits(r, event, xml);
    const back = parseBackupComponents(xml, `the document ${r.entry.label()} returned`).findWriter(r.entry.writerId);
    const mine = this.bcd.findWriter(r.entry.writerId, r.entry.instanceId);
    if (!back || !mine) return;
    for (const c of back.components) {
      const t = mine.findComponent(c.logicalPath, c.componentName);
      if (!t) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the writer returned component "${c.fullPath}", which the requester did not add; writers cannot add components to the document`);
      t.backupMetadata = c.backupMetadata;
      t.backupStamp = c.backupStamp;
      t.partialFiles.splice(0, t.partialFiles.length, ...c.partialFiles);
      t.differencedFiles.splice(0, t.differencedFiles.length, ...c.differencedFiles);
      t.prepareForBackupFailureMsg = c.prepareForBackupFailureMsg;
      t.postSnapshotFailureMsg = c.postSnapshotFailureMsg;
      t.failure = c.failure;
      t.restoreTarget = c.restoreTarget;
      t.directedTargets.splice(0, t.directedTargets.length, ...c.directedTargets);
      t.restoreMetadata = c.restoreMetadata;
      t.preRestoreFailureMsg = c.preRestoreFailureMsg;
      t.postRestoreFailureMsg = c.postRestoreFailureMsg;
    }
  }

  /**
   * Sends one event and waits for the answer, the deadline, the writer's disconnection or
   * cancellation, whichever comes first; records it in the timeline.
   */
  private async dispatch(
    entry: WriterEntry,
    event: WriterEventName,
    opts: {
      fan: FanOut;
      /** The writer's freeze window (Freeze, Thaw). */
      window?: FreezeWindow | undefined;
      /** The session's context and snapshot set, the same for every writer of a fan-out; none for Identify. */
      session?: { context: SessionContext; snapshotSetId: string } | undefined;
      record?: WriterRecord;
    },
    accept: (r: EventResult) => void,
  ): Promise<Outcome> {
    const started = this.host.clock.now();
    let outcome: Outcome;
    try {
      if (entry.gone) throw new Gone();
      const params: EventParams = { event, instanceId: entry.instanceId.toString() };
      if (opts.session) {
        params.sessionId = this.id;
        params.context = opts.session.context;
        params.snapshotSetId = opts.session.snapshotSetId;
      }
      const own = opts.record && BCD_EVENTS.includes(event) ? this.ownPart(opts.record) : undefined;
      if (own) params.bcdXml = this.writerBcd(own);
      const settled = await opts.fan.send(entry.link, params, opts.window);
      if (settled.kind === 'gone') throw new Gone();
      if (settled.kind === 'stopped') {
        if (opts.window?.closed) outcome = { answer: 'timeout', hr: HRESULT.VSS_E_WRITERERROR_TIMEOUT, hrApplication: 0, applicationMessage: '' };
        else if (opts.fan.expired) outcome = { answer: 'timeout', hr: HRESULT.VSS_E_WRITER_NOT_RESPONDING, hrApplication: 0, applicationMessage: `no answer to ${event} within ${opts.fan.deadlineMs} ms` };
        else outcome = { answer: 'cancelled', hr: 0, hrApplication: 0, applicationMessage: '' };
      } else {
        const res = usualEventResult(settled.r) ?? EventResult.safeParse(settled.r).data;
        if (!res) throw new VssError('VSS_E_UNEXPECTED_WRITER_ERROR', `the writer's answer to ${event} is not an EventResult (see docs/protocol.md)`);
        const f = res.failure;
        const failHr = f && f.hr !== 'S_OK' ? HRESULT[f.hr as HResultName] : 0;
        if (!res.ok) outcome = { answer: 'veto', hr: failHr || HRESULT.VSS_E_WRITERERROR_NONRETRYABLE, hrApplication: f?.hrApplication ?? 0, applicationMessage: f?.applicationMessage ?? '' };
        else if (failHr) outcome = { answer: 'fail', hr: failHr, hrApplication: f?.hrApplication ?? 0, applicationMessage: f?.applicationMessage ?? '' };
        else outcome = { answer: 'ok', hr: 0, hrApplication: 0, applicationMessage: '' };
        if (res.ok) accept(res);
      }
    } catch (e) {
      if (e instanceof Gone) outcome = { answer: 'gone', hr: HRESULT.VSS_E_WRITER_NOT_RESPONDING, hrApplication: 0, applicationMessage: 'the writer disconnected' };
      else {
        const err = VssError.is(e) ? e : new VssError('VSS_E_UNEXPECTED_WRITER_ERROR', (e as Error).message);
        outcome = { answer: 'error', hr: HRESULT.VSS_E_UNEXPECTED_WRITER_ERROR, hrApplication: 0, applicationMessage: err.message };
      }
    }
    const entryLine: TimelineEntryWire = {
      kind: 'event',
      name: event,
      at: new Date(started).toISOString(),
      durationMs: this.host.clock.now() - started,
      answer: outcome.answer,
      writerId: entry.writerId.toString(),
      instanceId: entry.instanceId.toString(),
      writerName: entry.sub.writerName,
    };
    if (outcome.hr) entryLine.hr = outcome.hr >>> 0;
    if (outcome.applicationMessage) entryLine.message = outcome.applicationMessage;
    this.timeline.add(entryLine);
    if (outcome.answer !== 'ok') this.host.log('warn', `${event} to ${entry.label()}: ${outcome.answer}`, { sessionId: this.id, hr: hresultName(outcome.hr), message: outcome.applicationMessage });
    return outcome;
  }
}

class Gone extends Error {}
