// One requester session (IVssBackupComponents on the service side): the call order of spec
// §4.1, the events of §4 and §16, writer status of §7, Abort and BackupShutdown of §8.
import { randomUUID } from 'node:crypto';
import type { SnapshotManager, SnapshotSetCreation } from '../providers/index.js';
import { resolveVolume } from '../providers/index.js';
import type { TimelineEntryWire } from '../protocol/admin.js';
import type { WriterStatusWire, SnapshotPropertiesWire } from '../protocol/requester-calls.js';
import { BCD_EVENTS, EventResult, type EventParams, type SessionContext, type WriterEventName } from '../protocol/writer-events.js';
import {
  BackupComponentsDocument,
  BackupSelection,
  BackupType,
  ComponentType,
  Guid,
  HRESULT,
  hresultName,
  isFailure,
  ObjectType,
  parseBackupComponents,
  parseWriterMetadata,
  SnapshotContext,
  snapshotContextCodec,
  SubscribeMask,
  VolumeSnapshotAttributes,
  VssError,
  WriterMetadata,
  WriterState,
  writeBackupComponents,
  writeWriterMetadata,
  type HResultName,
  type VssErrorName,
} from '../vss/index.js';
import type { SnapshotProperties } from '../vss/snapshot.js';
import { attributesOfContext } from '../vss/snapshot.js';
import type { Clock } from './clock.js';
import type { WriterEntry, WriterRegistry } from './registry.js';
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

/** Marks a freeze window that ran out, so the writer's pending event is a timeout. */
class WindowExpired extends Error {}

function abortedPromise(signal: AbortSignal): Promise<void> {
  return signal.aborted ? Promise.resolve() : new Promise((r) => signal.addEventListener('abort', () => r(), { once: true }));
}

/** Rejects as soon as `signal` aborts, with its reason; otherwise as `p`. */
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
    if (this.initialized) this.badState('initializeForBackup was already called; a session is initialized once');
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
    if ((e.sub.eventFlags & SubscribeMask.BACKUP_EVENTS_FLAG) === 0) return false;
    if (this.enabledClasses && !this.enabledClasses.some((g) => g.equals(e.writerId))) return false;
    if (this.disabledClasses.some((g) => g.equals(e.writerId))) return false;
    return !this.disabledInstances.some((g) => g.equals(e.instanceId));
  }

  /** GatherWriterMetadata: Identify to every enabled writer; those that answer in time with a valid document have status. */
  async gatherWriterMetadata(signal?: AbortSignal): Promise<{ instanceId: string; writerId: string; metadataXml: string }[]> {
    this.live('gatherWriterMetadata');
    if (this.prepareForBackupSent) this.badState('gatherWriterMetadata after prepareForBackup; gather metadata before preparing');
    const writers = this.host.registry.list().filter((e) => !e.gone && this.enabled(e));
    const results = await Promise.all(
      writers.map(async (entry) => {
        let metadata: WriterMetadata | undefined;
        const outcome = await this.dispatch(entry, 'Identify', { deadlineMs: this.host.timeouts.eventMs.Identify, signal }, (r) => {
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
      }),
    );
    if (signal?.aborted) throw new OperationCancelled('gatherWriterMetadata');
    this.records = results
      .filter((r) => r !== undefined)
      .map(({ entry, metadata }) => ({ entry, metadata, state: WriterState.STABLE, hr: 0, hrApplication: 0, applicationMessage: '', participant: false, out: false, thawSent: false, postSnapshotDone: false }));
    this.selection = new BackupSelection(this.records.map((r) => r.metadata));
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
    const r = this.gathered(call).find((x) => x.entry.instanceId.equals(instanceId));
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
    await this.broadcast(records.filter((r) => r.participant), 'PrepareForBackup', this.host.timeouts.eventMs.PrepareForBackup, signal);
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
    const windows = new Map<WriterRecord, { ac: AbortController; cancel: () => void }>();
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
      await race(this.broadcast(active(), 'PrepareForSnapshot', this.host.timeouts.eventMs.PrepareForSnapshot, seq.signal), seq.signal);
      set.setExcludeFromSnapshot((this.records ?? []).filter((r) => r.participant).flatMap((r) => [...r.metadata.excludeFilesFromSnapshot]));
      if (set.snapshotIds.length) await provider('PrepareSnapshots', set.prepare());
      // Freeze: FRONT_END, then BACK_END, then SYSTEM; one level's writers in parallel.
      const frozen: WriterRecord[] = [];
      for (const rank of [0, 1, 2]) {
        const level = active().filter((r) => r.entry.freezeRank === rank);
        for (const r of level) {
          const ac = new AbortController();
          const ms = r.entry.sub.freezeTimeoutMs ?? this.host.timeouts.freezeWindowMs;
          const t = this.host.clock.setTimer(ms, () => this.windowExpired(r, ac, seq, ms));
          windows.set(r, { ac, cancel: () => t.cancel() });
        }
        frozen.push(...level);
        await race(this.broadcast(level, 'Freeze', undefined, seq.signal, (r) => windows.get(r)!.ac.signal), seq.signal);
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
        await race(this.broadcast(level, 'Thaw', undefined, seq.signal, (r) => windows.get(r)!.ac.signal), seq.signal);
        for (const r of level) windows.get(r)?.cancel();
        this.throwIfSequenceFailed(level, 'Thaw');
      }
      if (seq.signal.aborted) throw seq.signal.reason as Error;
      // From here on no Abort is ever sent (spec §8): PostSnapshot failures are reported in the status.
      this.postSnapshotStarted = true;
      const post = active();
      await this.broadcast(post, 'PostSnapshot', this.host.timeouts.eventMs.PostSnapshot, this.stop.signal);
      for (const r of post) r.postSnapshotDone = true;
    } catch (e) {
      await this.abortSequence(e instanceof Error ? e.message : String(e));
      if (e instanceof OperationCancelled || VssError.is(e)) throw e;
      throw new VssError('VSS_E_UNEXPECTED', (e as Error).message, { cause: e });
    } finally {
      for (const w of windows.values()) w.cancel();
      this.stop.signal.removeEventListener('abort', onStop);
      signal?.removeEventListener('abort', onCancel);
    }
  }

  /** The Freeze→Thaw window of one writer ran out: it fails with VSS_E_WRITERERROR_TIMEOUT and the set is aborted. */
  private windowExpired(r: WriterRecord, ac: AbortController, seq: AbortController, ms: number): void {
    if (r.out || this.postSnapshotStarted) return;
    this.fail(r, r.thawSent ? 'Thaw' : 'Freeze', { answer: 'timeout', hr: HRESULT.VSS_E_WRITERERROR_TIMEOUT, hrApplication: 0, applicationMessage: `no Thaw within the ${ms} ms freeze window` });
    ac.abort(new WindowExpired());
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
        await this.broadcast(targets, 'Abort', this.host.timeouts.eventMs.Abort, undefined);
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
    await this.broadcast(targets, 'BackupComplete', this.host.timeouts.eventMs.BackupComplete, AbortSignal.any([this.stop.signal, ...(signal ? [signal] : [])]));
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
  release(reason = 'released by the requester'): Promise<void> {
    this.releasePromise ??= (async () => {
      this.released = true;
      const at = this.host.clock.now();
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
      await this.broadcast(targets, 'BackupShutdown', this.host.timeouts.eventMs.BackupShutdown, undefined, undefined, setId);
      this.note('Release', at, 'ok', reason);
      this.timeline.endedAt = new Date(this.host.clock.now()).toISOString();
      await this.host.sessionEnded(this);
    })();
    return this.releasePromise;
  }

  // ---- events ---------------------------------------------------------------------------

  private async broadcast(
    records: WriterRecord[],
    event: WriterEventName,
    deadlineMs: number | undefined,
    signal: AbortSignal | undefined,
    perWriter?: (r: WriterRecord) => AbortSignal,
    snapshotSetId?: Guid,
  ): Promise<void> {
    await Promise.all(
      records.map(async (r) => {
        const own = perWriter?.(r);
        const signals = [signal, own].filter((s): s is AbortSignal => s !== undefined);
        const outcome = await this.dispatch(r.entry, event, { deadlineMs, signal: signals.length ? AbortSignal.any(signals) : undefined, windowSignal: own, snapshotSetId, record: r }, (res) =>
          this.mergeBcd(r, event, res.bcdXml),
        );
        this.apply(r, event, outcome);
      }),
    );
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

  private writerBcd(r: WriterRecord): string {
    const doc = new BackupComponentsDocument();
    doc.setBackupState({ selectComponents: this.bcd.selectComponents, bootableSystemStateBackup: this.bcd.bootableSystemStateBackup, backupType: this.bcd.backupType, partialFileSupport: this.bcd.partialFileSupport });
    doc.snapshotSetId = this.bcd.snapshotSetId;
    doc.restoreType = this.bcd.restoreType;
    const mine = this.bcd.findWriter(r.entry.writerId, r.entry.instanceId);
    if (mine) doc.writers.push(mine);
    return writeBackupComponents(doc);
  }

  /** Takes what a writer may change in its components (spec §4.3, §4.4) from its answer. */
  private mergeBcd(r: WriterRecord, event: WriterEventName, xml: string | undefined): void {
    if (!xml || !BCD_EVENTS.includes(event)) return;
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
    opts: { deadlineMs?: number | undefined; signal?: AbortSignal | undefined; windowSignal?: AbortSignal | undefined; snapshotSetId?: Guid | undefined; record?: WriterRecord },
    accept: (r: EventResult) => void,
  ): Promise<Outcome> {
    const started = this.host.clock.now();
    const ac = new AbortController();
    let timedOut = false;
    const timer = opts.deadlineMs !== undefined ? this.host.clock.setTimer(opts.deadlineMs, () => ((timedOut = true), ac.abort())) : undefined;
    const onAbort = (): void => ac.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) ac.abort();
    let outcome: Outcome;
    try {
      if (entry.gone) throw new Gone();
      const params: EventParams = {
        event,
        instanceId: entry.instanceId.toString(),
        ...(event === 'Identify' ? {} : { sessionId: this.id, context: this.eventContext() }),
        ...(event === 'Identify' ? {} : { snapshotSetId: (opts.snapshotSetId ?? this.set?.snapshotSetId ?? Guid.NULL).toString() }),
        ...(opts.record && BCD_EVENTS.includes(event) && this.bcd.findWriter(entry.writerId, entry.instanceId) ? { bcdXml: this.writerBcd(opts.record) } : {}),
      };
      const raced = await Promise.race([
        entry.link.sendEvent(params, ac.signal).then((r) => ({ kind: 'answer' as const, r })),
        entry.link.closed.then(() => ({ kind: 'gone' as const })),
        abortedPromise(ac.signal).then(() => ({ kind: 'stopped' as const })),
      ]);
      if (raced.kind === 'gone') throw new Gone();
      if (raced.kind === 'stopped') {
        if (opts.windowSignal?.aborted) outcome = { answer: 'timeout', hr: HRESULT.VSS_E_WRITERERROR_TIMEOUT, hrApplication: 0, applicationMessage: '' };
        else if (timedOut) outcome = { answer: 'timeout', hr: HRESULT.VSS_E_WRITER_NOT_RESPONDING, hrApplication: 0, applicationMessage: `no answer to ${event} within ${opts.deadlineMs} ms` };
        else outcome = { answer: 'cancelled', hr: 0, hrApplication: 0, applicationMessage: '' };
      } else {
        const parsed = EventResult.safeParse(raced.r);
        if (!parsed.success) throw new VssError('VSS_E_UNEXPECTED_WRITER_ERROR', `the writer's answer to ${event} is not an EventResult (see docs/protocol.md)`);
        const res = parsed.data;
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
    } finally {
      timer?.cancel();
      opts.signal?.removeEventListener('abort', onAbort);
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
      ...(outcome.hr ? { hr: outcome.hr >>> 0 } : {}),
      ...(outcome.applicationMessage ? { message: outcome.applicationMessage } : {}),
    };
    this.timeline.add(entryLine);
    if (outcome.answer !== 'ok') this.host.log('warn', `${event} to ${entry.label()}: ${outcome.answer}`, { sessionId: this.id, hr: hresultName(outcome.hr), message: outcome.applicationMessage });
    return outcome;
  }
}

class Gone extends Error {}
