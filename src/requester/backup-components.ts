// The requester SDK: IVssBackupComponents in camelCase. One object per backup; release it
// (or `await using` it) so writers get BackupShutdown and auto-release snapshots go away.
import type { Duplex } from 'node:stream';
import { AdminMethods, type TimelineWire, type WriterInfoWire } from '../protocol/admin.js';
import { RpcClient, type Endpoint } from '../protocol/client.js';
import { RequesterMethods as M, type SnapshotPropertiesWire, type WriterStatusWire } from '../protocol/requester-calls.js';
import {
  BackupType,
  ComponentType,
  FileRestoreStatus,
  Guid,
  ObjectType,
  parseBackupComponents,
  parseWriterMetadata,
  RestoreType,
  RollForwardType,
  VssError,
  WriterMetadata,
  WriterState,
  writeWriterMetadata,
  type BackupComponentsDocument,
  type SnapshotContext,
  type WriterComponents,
} from '../vss/index.js';
import type { ProviderName, SnapshotProperties } from '../vss/snapshot.js';
import { VssAsync } from './async.js';

// Node 20 has the symbol; older runtimes get one so `await using` still works.
(Symbol as { asyncDispose?: symbol }).asyncDispose ??= Symbol('Symbol.asyncDispose');

export interface ConnectOptions {
  /** The daemon's socket directory (default $SHADOWCOPY_SOCKET_DIR or /run/shadowcopy). */
  socketDir?: string;
  /** Or a stream factory: `() => coordinator.connectRequester()` for an in-process coordinator. */
  stream?: () => Duplex | Promise<Duplex>;
  /** For the daemon's logs. */
  client?: string;
}

function endpointOf(o: ConnectOptions): Endpoint {
  return o.stream ? { stream: o.stream } : { socketDir: o.socketDir ?? '' };
}

/** A writer status record (spec §7.2), with the application's message (GetWriterStatusEx). */
export interface WriterStatus {
  instanceId: Guid;
  writerId: Guid;
  writerName: string;
  instanceName: string;
  state: WriterState;
  hrWriterFailure: number;
  hrApplication: number;
  applicationMessage: string;
}

export interface ComponentKey {
  writerId: Guid | string;
  componentType: ComponentType;
  logicalPath?: string;
  componentName: string;
}

function toProps(w: SnapshotPropertiesWire): SnapshotProperties {
  return { ...w, snapshotId: Guid.parse(w.snapshotId), snapshotSetId: Guid.parse(w.snapshotSetId), providerId: Guid.parse(w.providerId), creationTimestamp: new Date(w.creationTimestamp), status: w.status as SnapshotProperties['status'] };
}

function key(k: ComponentKey): { writerId: string; componentType: number; logicalPath: string; componentName: string } {
  return { writerId: k.writerId.toString(), componentType: k.componentType, logicalPath: k.logicalPath ?? '', componentName: k.componentName };
}

export class BackupComponents implements AsyncDisposable {
  private metadata: { instanceId: Guid; metadata: WriterMetadata }[] = [];
  private statuses: WriterStatus[] | undefined;
  private reliable = false;
  private released = false;
  /** Restore: the writer metadata saved with the backup (the source of file sets). */
  private stored: WriterMetadata[] = [];
  /** PreRestore or PostRestore in flight: release must wait for it. */
  private restoreOp: VssAsync<void> | undefined;

  private constructor(
    private readonly client: RpcClient,
    readonly sessionId: string,
  ) {}

  /** CreateVssBackupComponents: connects to the daemon (or an in-process coordinator) and opens a session. */
  static async create(opts: ConnectOptions = {}): Promise<BackupComponents> {
    const client = await RpcClient.connect(endpointOf(opts), 'requester', opts.client ?? `requester (pid ${process.pid})`);
    try {
      const { sessionId } = await client.call(M.open, {});
      return new BackupComponents(client, sessionId);
    } catch (e) {
      client.close();
      throw e;
    }
  }

  private s(): { sessionId: string } {
    if (this.released) throw new VssError('VSS_E_BAD_STATE', 'this BackupComponents was released; create a new one (they are never reused)');
    return { sessionId: this.sessionId };
  }

  private async(operation: string, run: (token: Parameters<RpcClient['call']>[2]) => Promise<void>): VssAsync<void> {
    return new VssAsync(operation, (token) => run(token));
  }

  // ---- initialization -----------------------------------------------------------------------

  async initializeForBackup(bcdXml?: string): Promise<void> {
    await this.client.call(M.initializeForBackup, { ...this.s(), ...(bcdXml !== undefined ? { bcdXml } : {}) });
  }
  /** A VSS_SNAPSHOT_CONTEXT value, optionally OR-ed with attribute modifiers. Before startSnapshotSet. */
  async setContext(context: SnapshotContext | number): Promise<void> {
    await this.client.call(M.setContext, { ...this.s(), context });
  }
  async setBackupState(selectComponents: boolean, bootableSystemStateBackup: boolean, backupType: BackupType, partialFileSupport = false): Promise<void> {
    await this.client.call(M.setBackupState, { ...this.s(), selectComponents, bootableSystemStateBackup, backupType, partialFileSupport });
  }
  async enableWriterClasses(writerIds: (Guid | string)[]): Promise<void> {
    await this.client.call(M.enableWriterClasses, { ...this.s(), writerIds: writerIds.map(String) });
  }
  async disableWriterClasses(writerIds: (Guid | string)[]): Promise<void> {
    await this.client.call(M.disableWriterClasses, { ...this.s(), writerIds: writerIds.map(String) });
  }
  async disableWriterInstances(instanceIds: (Guid | string)[]): Promise<void> {
    await this.client.call(M.disableWriterInstances, { ...this.s(), instanceIds: instanceIds.map(String) });
  }

  // ---- discovery ----------------------------------------------------------------------------

  /** Identify to every enabled writer; then getWriterMetadataCount / getWriterMetadata. */
  gatherWriterMetadata(): VssAsync<void> {
    return this.async('gatherWriterMetadata', async (token) => {
      const r = await this.client.call(M.gatherWriterMetadata, this.s(), token);
      this.metadata = r.writers.map((w) => ({ instanceId: Guid.parse(w.instanceId), metadata: parseWriterMetadata(w.metadataXml, `metadata of writer ${w.writerId}`) }));
    });
  }
  getWriterMetadataCount(): number {
    return this.metadata.length;
  }
  getWriterMetadata(index: number): { instanceId: Guid; metadata: WriterMetadata } {
    const m = this.metadata[index];
    if (!m) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `no writer metadata at index ${index}; there are ${this.metadata.length}`);
    return m;
  }
  freeWriterMetadata(): void {
    this.metadata = [];
  }

  // ---- selection ----------------------------------------------------------------------------

  async addComponent(instanceId: Guid | string, writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string): Promise<void> {
    await this.client.call(M.addComponent, { ...this.s(), instanceId: instanceId.toString(), ...key({ writerId, componentType, logicalPath, componentName }) });
  }
  async setBackupOptions(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, options: string): Promise<void> {
    await this.client.call(M.setBackupOptions, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), options });
  }
  async setPreviousBackupStamp(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, stamp: string): Promise<void> {
    await this.client.call(M.setPreviousBackupStamp, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), stamp });
  }
  async setBackupSucceeded(instanceId: Guid | string, writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, succeeded: boolean): Promise<void> {
    await this.client.call(M.setBackupSucceeded, { ...this.s(), instanceId: instanceId.toString(), ...key({ writerId, componentType, logicalPath, componentName }), succeeded });
  }

  // ---- snapshot set -------------------------------------------------------------------------

  async startSnapshotSet(): Promise<Guid> {
    return Guid.parse((await this.client.call(M.startSnapshotSet, this.s())).snapshotSetId);
  }
  async isVolumeSupported(volume: string, provider?: ProviderName): Promise<{ supported: boolean; reason: string; provider?: string }> {
    return this.client.call(M.isVolumeSupported, { ...this.s(), volume, ...(provider ? { provider } : {}) });
  }
  /** The volume holding `volume` (any path on it); the provider is chosen unless given. */
  async addToSnapshotSet(volume: string, provider?: ProviderName): Promise<Guid> {
    return Guid.parse((await this.client.call(M.addToSnapshotSet, { ...this.s(), volume, ...(provider ? { provider } : {}) })).snapshotId);
  }
  prepareForBackup(): VssAsync<void> {
    return this.async('prepareForBackup', async (token) => void (await this.client.call(M.prepareForBackup, this.s(), token)));
  }
  /** PrepareForSnapshot, Freeze, commit, Thaw, PostSnapshot. Cancelling aborts the set. */
  doSnapshotSet(): VssAsync<void> {
    return this.async('doSnapshotSet', async (token) => void (await this.client.call(M.doSnapshotSet, this.s(), token)));
  }
  async getSnapshotProperties(snapshotId: Guid | string): Promise<SnapshotProperties> {
    return toProps(await this.client.call(M.getSnapshotProperties, { ...this.s(), snapshotId: snapshotId.toString() }));
  }

  // ---- status -------------------------------------------------------------------------------

  /**
   * Collects the writers' status records. Reliable only right after prepareForBackup,
   * doSnapshotSet or backupComplete (spec §7.2): `isWriterStatusReliable()` says which.
   */
  gatherWriterStatus(): VssAsync<void> {
    return this.async('gatherWriterStatus', async (token) => {
      const r = await this.client.call(M.gatherWriterStatus, this.s(), token);
      this.reliable = r.reliable;
      this.statuses = r.statuses.map((w: WriterStatusWire) => ({ ...w, instanceId: Guid.parse(w.instanceId), writerId: Guid.parse(w.writerId), state: w.state as WriterState }));
    });
  }
  /** False when the last gather came outside a sequence point: the records may be stale. */
  isWriterStatusReliable(): boolean {
    return this.reliable;
  }
  getWriterStatusCount(): number {
    return this.gatheredStatus().length;
  }
  getWriterStatus(index: number): WriterStatus {
    const s = this.gatheredStatus()[index];
    if (!s) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `no writer status at index ${index}; there are ${this.gatheredStatus().length}`);
    return s;
  }
  /** Every record at once. */
  getWriterStatuses(): WriterStatus[] {
    return [...this.gatheredStatus()];
  }
  freeWriterStatus(): void {
    this.statuses = undefined;
  }
  private gatheredStatus(): WriterStatus[] {
    if (!this.statuses) throw new VssError('VSS_E_BAD_STATE', 'no writer status gathered; await gatherWriterStatus() first');
    return this.statuses;
  }

  // ---- completion ---------------------------------------------------------------------------

  backupComplete(): VssAsync<void> {
    return this.async('backupComplete', async (token) => void (await this.client.call(M.backupComplete, this.s(), token)));
  }
  async abortBackup(): Promise<void> {
    await this.client.call(M.abortBackup, this.s());
  }
  /** The Backup Components Document, genuine XML. Save it after doSnapshotSet completes. */
  async saveAsXml(): Promise<string> {
    return (await this.client.call(M.saveAsXml, this.s())).bcdXml;
  }
  async query(): Promise<SnapshotProperties[]> {
    return (await this.client.call(M.query, this.s())).snapshots.map(toProps);
  }
  async deleteSnapshots(id: Guid | string, objectType: ObjectType = ObjectType.SNAPSHOT, force = false): Promise<{ deletedCount: number; nonDeletedSnapshotId: Guid }> {
    const r = await this.client.call(M.deleteSnapshots, { ...this.s(), id: id.toString(), objectType, force });
    return { deletedCount: r.deletedCount, nonDeletedSnapshotId: Guid.parse(r.nonDeletedSnapshotId) };
  }

  // ---- restore (spec §5) ---------------------------------------------------------------------

  /**
   * InitializeForRestore: the Backup Components Document saved with the backup and the writer
   * metadata saved with it. The stored documents — never the live writers' — supply file sets,
   * restore methods and mappings; the coordinator checks every selection against them, and
   * refuses documents that do not belong together (VSS_E_OBJECT_NOT_FOUND). Restore-time
   * properties a saved document carries are cleared: make selections with the calls below.
   */
  async initializeForRestore(bcdXml: string, storedWriterMetadata: readonly (string | WriterMetadata)[]): Promise<void> {
    const stored = storedWriterMetadata.map((m, i) => (typeof m === 'string' ? parseWriterMetadata(m, `stored writer metadata #${i + 1}`) : m));
    await this.client.call(M.initializeForRestore, { ...this.s(), bcdXml, writerMetadataXml: stored.map((m) => writeWriterMetadata(m)) });
    this.stored = stored;
  }
  /** The stored writer metadata given to initializeForRestore (CreateVssExamineWriterMetadata on each). */
  getStoredWriterMetadata(): readonly WriterMetadata[] {
    return this.stored;
  }
  /** SetRestoreState (default VSS_RTYPE_BY_COPY). Before preRestore. */
  async setRestoreState(restoreType: RestoreType): Promise<void> {
    await this.client.call(M.setRestoreState, { ...this.s(), restoreType });
  }
  /** The document as the session holds it now (after preRestore: with the writers' edits). A copy. */
  async getBackupComponentsDocument(): Promise<BackupComponentsDocument> {
    return parseBackupComponents(await this.saveAsXml(), 'the session\'s Backup Components Document');
  }
  /** GetWriterComponentsCount: the number of writers (not components) in the document (spec §19.5). */
  async getWriterComponentsCount(): Promise<number> {
    return (await this.getBackupComponentsDocument()).getWriterComponentsCount();
  }
  /** GetWriterComponents: read again after preRestore to see restore targets, directed targets and messages writers set. */
  async getWriterComponents(index: number): Promise<WriterComponents> {
    return (await this.getBackupComponentsDocument()).getWriterComponents(index);
  }
  /** Any component explicit at backup (spec §13.3). Only before preRestore, after gatherWriterMetadata. */
  async setSelectedForRestore(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, selected: boolean): Promise<void> {
    await this.client.call(M.setSelectedForRestore, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), selected });
  }
  /**
   * SetSelectedForRestoreEx: `instanceId` names the backed-up instance when the document holds
   * several of the class, or a running instance (from gatherWriterMetadata) to restore to.
   */
  async setSelectedForRestoreEx(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, selected: boolean, instanceId: Guid | string): Promise<void> {
    await this.client.call(M.setSelectedForRestore, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), selected, instanceId: instanceId.toString() });
  }
  /** Restore only this selectable-for-restore member of the selected component's set (and its descendants). */
  async addRestoreSubcomponent(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, subLogicalPath: string, subComponentName: string, repair = false): Promise<void> {
    await this.client.call(M.addRestoreSubcomponent, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), subLogicalPath, subComponentName, repair });
  }
  /** `"Name"="Value"` pairs, comma-separated, each optionally `"Sub\Path":`-scoped (spec §14.6). Once per component. */
  async setRestoreOptions(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, options: string): Promise<void> {
    await this.client.call(M.setRestoreOptions, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), options });
  }
  /** True: more restores of this component follow (incremental chain); the writer must not recover yet. */
  async setAdditionalRestores(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, additionalRestores: boolean): Promise<void> {
    await this.client.call(M.setAdditionalRestores, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), additionalRestores });
  }
  /** A new destination for one declared file set; needs VSS_BS_WRITER_SUPPORTS_NEW_TARGET (spec §14.4). */
  async addNewTarget(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, path: string, filespec: string, recursive: boolean, alternatePath: string): Promise<void> {
    await this.client.call(M.addNewTarget, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), path, filespec, recursive, alternatePath });
  }
  /** Needs VSS_BS_ROLLFORWARD_RESTORE in the writer's schema. */
  async setRollForward(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, rollForwardType: RollForwardType, point = ''): Promise<void> {
    await this.client.call(M.setRollForward, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), rollForwardType, point });
  }
  /** Needs VSS_BS_AUTHORITATIVE_RESTORE. */
  async setAuthoritativeRestore(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, authoritative: boolean): Promise<void> {
    await this.client.call(M.setAuthoritativeRestore, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), authoritative });
  }
  /** Needs VSS_BS_RESTORE_RENAME. */
  async setRestoreName(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, restoreName: string): Promise<void> {
    await this.client.call(M.setRestoreName, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), restoreName });
  }
  /**
   * PreRestore to the writers with something selected (per their writerRestore). Writer
   * failures show in gatherWriterStatus, as for the backup events. Cannot be cancelled:
   * restores cannot be aborted (spec §19.8), so cancel() answers once it finished.
   */
  preRestore(): VssAsync<void> {
    return this.restoreEvent('preRestore', () => this.client.call(M.preRestore, this.s()));
  }
  /** Between preRestore and postRestore: files of a set went to the writer's alternate location. */
  async addAlternativeLocationMapping(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, path: string, filespec: string, recursive: boolean, destination: string): Promise<void> {
    await this.client.call(M.addAlternativeLocationMapping, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), path, filespec, recursive, destination });
  }
  /** Between preRestore and postRestore: partial file `partialFileIndex`'s ranges file was restored elsewhere. */
  async setRangesFilePath(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, partialFileIndex: number, rangesFilePath: string): Promise<void> {
    await this.client.call(M.setRangesFilePath, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), partialFileIndex, rangesFilePath });
  }
  /** Between preRestore and postRestore: ALL, FAILED (some) or NONE of the component set's files were restored. */
  async setFileRestoreStatus(writerId: Guid | string, componentType: ComponentType, logicalPath: string, componentName: string, status: FileRestoreStatus): Promise<void> {
    await this.client.call(M.setFileRestoreStatus, { ...this.s(), ...key({ writerId, componentType, logicalPath, componentName }), status });
  }
  /** PostRestore to the writers that take part. Not cancellable; release() refuses until it completes. */
  postRestore(): VssAsync<void> {
    return this.restoreEvent('postRestore', () => this.client.call(M.postRestore, this.s()));
  }
  private restoreEvent(operation: string, call: () => Promise<unknown>): VssAsync<void> {
    // No cancellation token goes to the daemon: a restore event runs to its end.
    const op = new VssAsync(operation, async () => void (await call()));
    this.restoreOp = op;
    return op;
  }

  /**
   * Ends the session: BackupShutdown to the writers of a backup, auto-release snapshots deleted.
   * Idempotent. Refused (VSS_E_BAD_STATE) while preRestore or postRestore is running: writers
   * read the document until they answer — await it first (`await using` does).
   */
  async release(): Promise<void> {
    if (this.released) return;
    if (this.restoreOp?.queryStatus().state === 'pending') {
      throw new VssError('VSS_E_BAD_STATE', `release while ${this.restoreOp.operation} is running: writers read the document until they answer; await ${this.restoreOp.operation}() first`);
    }
    this.released = true;
    try {
      await this.client.call(M.release, { sessionId: this.sessionId });
    } finally {
      this.client.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    // Disposal cannot refuse: it waits for a restore event in flight, then releases.
    await this.restoreOp?.wait().catch(() => undefined);
    await this.release();
  }
}

/** Admin calls: writers, snapshots, timelines, without a backup session. */
export class AdminClient implements AsyncDisposable {
  private constructor(private readonly client: RpcClient) {}

  static async connect(opts: ConnectOptions = {}): Promise<AdminClient> {
    return new AdminClient(await RpcClient.connect(endpointOf(opts), 'requester', opts.client ?? `admin (pid ${process.pid})`));
  }
  async listWriters(): Promise<WriterInfoWire[]> {
    return (await this.client.call(AdminMethods.listWriters, {})).writers;
  }
  async query(filter: { context?: number; snapshotSetId?: Guid | string } = {}): Promise<SnapshotProperties[]> {
    return (await this.client.call(AdminMethods.query, { ...(filter.context !== undefined ? { context: filter.context } : {}), ...(filter.snapshotSetId ? { snapshotSetId: filter.snapshotSetId.toString() } : {}) })).snapshots.map(toProps);
  }
  async deleteSnapshots(id: Guid | string, objectType: ObjectType = ObjectType.SNAPSHOT): Promise<number> {
    return (await this.client.call(AdminMethods.deleteSnapshots, { id: id.toString(), objectType })).deletedCount;
  }
  async exposeSnapshot(snapshotId: Guid | string, path: string): Promise<string> {
    return (await this.client.call(AdminMethods.exposeSnapshot, { snapshotId: snapshotId.toString(), path })).exposedName;
  }
  async unexposeSnapshot(snapshotId: Guid | string): Promise<void> {
    await this.client.call(AdminMethods.unexposeSnapshot, { snapshotId: snapshotId.toString() });
  }
  /** A session's timeline by snapshot set id or session id. */
  async trace(id: Guid | string): Promise<TimelineWire> {
    return this.client.call(AdminMethods.trace, { id: id.toString() });
  }
  close(): void {
    this.client.close();
  }
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
