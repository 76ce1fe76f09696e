// The requester SDK: IVssBackupComponents in camelCase. One object per backup; release it
// (or `await using` it) so writers get BackupShutdown and auto-release snapshots go away.
import type { Duplex } from 'node:stream';
import { AdminMethods, type TimelineWire, type WriterInfoWire } from '../protocol/admin.js';
import { RpcClient, type Endpoint } from '../protocol/client.js';
import { RequesterMethods as M, type SnapshotPropertiesWire, type WriterStatusWire } from '../protocol/requester-calls.js';
import {
  BackupType,
  ComponentType,
  Guid,
  ObjectType,
  parseWriterMetadata,
  VssError,
  WriterMetadata,
  WriterState,
  type SnapshotContext,
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

  /** Ends the session: BackupShutdown to the writers, auto-release snapshots deleted. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await this.client.call(M.release, { sessionId: this.sessionId });
    } finally {
      this.client.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
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
