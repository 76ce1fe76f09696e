// SnapshotManager: what the coordinator uses to make, find, expose and delete snapshots.
// It owns the registry and the providers; one snapshot set is created at a time, from
// startSnapshotSet until the set is post-committed or aborted (spec §6). See docs/providers.md.
import { hostname } from 'node:os';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { VssError } from '../vss/errors.js';
import { Guid } from '../vss/guid.js';
import { ObjectType, SnapshotContext, SnapshotState, VolumeSnapshotAttributes } from '../vss/enums.js';
import {
  attributesOfContext,
  DEFAULT_COMMIT_WINDOW_MS,
  isAutoRelease,
  MAX_VOLUMES_PER_SNAPSHOT_SET,
  PROVIDER_IDS,
  snapshotInContext,
  type ProviderName,
  type SnapshotProperties,
} from '../vss/snapshot.js';
import type { FileSpec } from '../vss/writer-metadata.js';
import { exposeReadOnly, unmount } from './expose.js';
import { chooseProvider, createProviders } from './providers.js';
import { REGISTRY_FILE, SnapshotRegistry, type SnapshotRecord } from './registry.js';
import { DEFAULT_STORE_NAME, ensureStore, removeSnapshotPath, removeStoreIfEmpty, storeFor, storeInsideVolume, type SnapshotStore } from './store.js';
import { isMountPoint, isWithin, resolveVolume, type VolumeInfo } from './system.js';
import type { SnapshotJob, SnapshotProvider, VolumeSupport } from './types.js';

export interface SnapshotManagerOptions {
  /** Where the registry lives (the daemon's state directory, e.g. /var/lib/shadowcopy). */
  stateDir: string;
  /** How long commitSnapshots may take, writers frozen, before the set fails (default 10 s). */
  commitWindowMs?: number;
  /** Name of the snapshot store directory at each filesystem's mount point (default `.shadowcopy`). */
  storeName?: string;
  /** Machine name reported as originating and service machine (default: this host). */
  machine?: string;
}

export interface RecoveryReport {
  /** Completed snapshots kept (persistent ones, and auto-release ones of live sessions). */
  kept: string[];
  /** Auto-release snapshots of sessions that no longer exist, deleted. */
  released: string[];
  /** Snapshots a crash left half-made, removed. */
  halfMade: string[];
  /** Records whose snapshot directory had vanished, forgotten. */
  vanished: string[];
  /** Exposed snapshots mounted again (bind mounts do not survive a reboot). */
  reexposed: string[];
  /** What could not be cleaned, to report; those records stay for the next attempt. */
  failures: { snapshotId: string; error: VssError }[];
}

export interface DeleteResult {
  deletedCount: number;
}

type SetPhase = 'adding' | 'prepared' | 'precommitted' | 'committed' | 'created' | 'aborted';

interface Member {
  job: SnapshotJob;
  provider: SnapshotProvider;
  store: SnapshotStore;
  record: SnapshotRecord;
}

function toVssError(e: unknown): VssError {
  return VssError.is(e) ? e : new VssError('VSS_E_UNEXPECTED_PROVIDER_ERROR', e instanceof Error ? e.message : String(e), { cause: e });
}

export class SnapshotManager {
  readonly commitWindowMs: number;
  readonly storeName: string;
  readonly machine: string;
  readonly providers: Record<ProviderName, SnapshotProvider>;
  private creating: SnapshotSetCreation | undefined;

  private constructor(
    readonly registry: SnapshotRegistry,
    opts: SnapshotManagerOptions,
  ) {
    this.commitWindowMs = opts.commitWindowMs ?? DEFAULT_COMMIT_WINDOW_MS;
    this.storeName = opts.storeName ?? DEFAULT_STORE_NAME;
    this.machine = opts.machine ?? hostname();
    this.providers = createProviders();
  }

  static async open(opts: SnapshotManagerOptions): Promise<SnapshotManager> {
    return new SnapshotManager(await SnapshotRegistry.open(opts.stateDir), opts);
  }

  /** Which provider would snapshot the volume holding `path`, or why none can. */
  async isVolumeSupported(path: string, provider?: ProviderName): Promise<VolumeSupport & { provider?: ProviderName; volume?: VolumeInfo }> {
    let volume: VolumeInfo;
    try {
      volume = await resolveVolume(path);
    } catch (e) {
      return { supported: false, reason: toVssError(e).message };
    }
    try {
      const p = await chooseProvider(this.providers, volume, provider);
      return { supported: true, reason: '', provider: p.name, volume };
    } catch (e) {
      return { supported: false, reason: toVssError(e).message, volume };
    }
  }

  /**
   * StartSnapshotSet: a new set for `sessionId` in `context` (a VSS_CTX_* value, optionally
   * OR-ed with modifier attributes). Only one set is created at a time.
   */
  startSnapshotSet(opts: { sessionId: string; context?: number }): SnapshotSetCreation {
    if (this.creating && !this.creating.finished) {
      throw new VssError('VSS_E_SNAPSHOT_SET_IN_PROGRESS', `snapshot set ${this.creating.snapshotSetId.toString()} is being created; wait until it is done or aborted`);
    }
    const { context, attributes } = attributesOfContext(opts.context ?? SnapshotContext.BACKUP);
    this.creating = new SnapshotSetCreation(this, opts.sessionId, context, attributes);
    return this.creating;
  }

  /** Completed snapshots, as Query reports them: of one context (default all), set or session. */
  query(filter: { context?: number; snapshotSetId?: Guid | string; sessionId?: string } = {}): SnapshotProperties[] {
    const context = filter.context ?? SnapshotContext.ALL;
    return this.registry
      .list()
      .filter((r) => r.state === SnapshotState.CREATED)
      .filter((r) => snapshotInContext(r.attributes, context))
      .filter((r) => filter.snapshotSetId === undefined || Guid.parse(r.snapshotSetId).equals(filter.snapshotSetId))
      .filter((r) => filter.sessionId === undefined || r.sessionId === filter.sessionId)
      .map((r) => this.propertiesOf(r));
  }

  /** GetSnapshotProperties. VSS_E_OBJECT_NOT_FOUND when unknown or its directory vanished. */
  async getSnapshotProperties(snapshotId: Guid | string): Promise<SnapshotProperties> {
    const r = this.completed(snapshotId);
    if (!(await this.providers[r.provider].querySnapshot(r.snapshotPath))) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `snapshot ${r.snapshotId}'s directory ${r.snapshotPath} has vanished; delete the snapshot to forget it`);
    }
    return this.propertiesOf(r);
  }

  /** The session ids of snapshots that end with their session. */
  autoReleaseSessions(): Set<string> {
    return new Set(this.registry.list().filter((r) => isAutoRelease(r.attributes)).map((r) => r.sessionId));
  }

  /**
   * DeleteSnapshots: one snapshot (ObjectType.SNAPSHOT) or every snapshot of a set
   * (ObjectType.SNAPSHOT_SET), in order; stops at the first failure, whose error names the
   * snapshot not deleted and how many were.
   */
  async deleteSnapshots(id: Guid | string, type: ObjectType = ObjectType.SNAPSHOT): Promise<DeleteResult> {
    const gid = typeof id === 'string' ? Guid.parse(id) : id;
    let victims: SnapshotRecord[];
    if (type === ObjectType.SNAPSHOT) victims = [this.completed(gid)];
    else if (type === ObjectType.SNAPSHOT_SET) {
      victims = this.registry.list().filter((r) => r.state === SnapshotState.CREATED && gid.equals(r.snapshotSetId));
      if (!victims.length) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `no completed snapshot belongs to the set ${gid.toString()}`);
    } else throw new VssError('E_INVALIDARG', 'deleteSnapshots takes ObjectType.SNAPSHOT or ObjectType.SNAPSHOT_SET');
    let deletedCount = 0;
    for (const r of victims) {
      try {
        await this.removeRecord(r);
      } catch (e) {
        const err = toVssError(e);
        throw new VssError(err.code, `deleted ${deletedCount} snapshot(s); snapshot ${r.snapshotId} was not deleted: ${err.message}`, { cause: e });
      }
      deletedCount++;
    }
    return { deletedCount };
  }

  /** Deletes the auto-release snapshots of a session that ended (BackupShutdown). */
  async releaseSession(sessionId: string): Promise<number> {
    let n = 0;
    for (const r of this.registry.list()) {
      if (r.sessionId !== sessionId || !isAutoRelease(r.attributes) || r.state !== SnapshotState.CREATED) continue;
      await this.removeRecord(r);
      n++;
    }
    return n;
  }

  /** ExposeSnapshot locally: a read-only bind mount at an empty directory. Returns the mount path. */
  async exposeSnapshot(snapshotId: Guid | string, target: string): Promise<string> {
    const r = this.completed(snapshotId);
    if (r.exposedName) throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `snapshot ${r.snapshotId} is already exposed at ${r.exposedName}; unexpose it first`);
    const real = await this.providers[r.provider].exposeSnapshot(r.snapshotPath, target);
    try {
      await this.registry.put([{ ...r, exposedName: real, attributes: r.attributes | VolumeSnapshotAttributes.EXPOSED_LOCALLY }]);
    } catch (e) {
      await unmount(real);
      throw e;
    }
    return real;
  }

  async unexposeSnapshot(snapshotId: Guid | string): Promise<void> {
    const r = this.completed(snapshotId);
    if (!r.exposedName) throw new VssError('VSS_E_BAD_STATE', `snapshot ${r.snapshotId} is not exposed`);
    await this.providers[r.provider].unexposeSnapshot(r.exposedName);
    await this.registry.put([{ ...r, exposedName: '', attributes: r.attributes & ~VolumeSnapshotAttributes.EXPOSED_LOCALLY }]);
  }

  /**
   * At daemon start: removes half-made snapshots and auto-release snapshots of sessions not
   * in `liveSessionIds`, keeps the rest (persistent ones above all), forgets vanished ones and
   * mounts exposed snapshots again. Never throws for one snapshot: failures are reported.
   */
  async recover(liveSessionIds: ReadonlySet<string> = new Set()): Promise<RecoveryReport> {
    if (this.creating && !this.creating.finished) throw new VssError('VSS_E_SNAPSHOT_SET_IN_PROGRESS', 'recover runs at start, before any snapshot set is created');
    const report: RecoveryReport = { kept: [], released: [], halfMade: [], vanished: [], reexposed: [], failures: [] };
    // Temporary files of a registry write the crash interrupted.
    for (const name of await fsp.readdir(this.registry.stateDir)) {
      if (name.startsWith(`.${REGISTRY_FILE}.`) && name.endsWith('.tmp')) await fsp.rm(join(this.registry.stateDir, name), { force: true });
    }
    for (const r of this.registry.list()) {
      try {
        if (r.state !== SnapshotState.CREATED) {
          await this.removeRecord(r);
          report.halfMade.push(r.snapshotId);
        } else if (isAutoRelease(r.attributes) && !liveSessionIds.has(r.sessionId)) {
          await this.removeRecord(r);
          report.released.push(r.snapshotId);
        } else if (!(await this.providers[r.provider].querySnapshot(r.snapshotPath))) {
          await this.removeRecord(r);
          report.vanished.push(r.snapshotId);
        } else {
          if (r.exposedName && !isMountPoint(r.exposedName)) {
            try {
              await exposeReadOnly(r.snapshotPath, r.exposedName);
              report.reexposed.push(r.snapshotId);
            } catch {
              // The target is gone or taken: the snapshot stays, unexposed.
              await this.registry.put([{ ...r, exposedName: '', attributes: r.attributes & ~VolumeSnapshotAttributes.EXPOSED_LOCALLY }]);
            }
          }
          report.kept.push(r.snapshotId);
        }
      } catch (e) {
        report.failures.push({ snapshotId: r.snapshotId, error: toVssError(e) });
      }
    }
    return report;
  }

  /** @internal the set being created finished (created or aborted). */
  setFinished(set: SnapshotSetCreation): void {
    if (this.creating === set) this.creating = undefined;
  }

  private completed(snapshotId: Guid | string): SnapshotRecord {
    const id = (typeof snapshotId === 'string' ? Guid.parse(snapshotId) : snapshotId).toString();
    const r = this.registry.get(id);
    if (!r) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `no snapshot ${id}; list snapshots with query()`);
    if (r.state !== SnapshotState.CREATED) throw new VssError('VSS_E_BAD_STATE', `snapshot ${id} is still being created; wait for its set or abort it`);
    return r;
  }

  /** Unexposes, deletes the content, forgets the record, drops an empty store. */
  async removeRecord(r: SnapshotRecord): Promise<void> {
    if (r.exposedName) await unmount(r.exposedName);
    await removeSnapshotPath(r.snapshotPath);
    await this.registry.remove([r.snapshotId]);
    if (!this.creating || this.creating.finished) await removeStoreIfEmpty({ top: r.storeTop, dir: join(r.storeTop, 'snapshots') });
  }

  propertiesOf(r: SnapshotRecord): SnapshotProperties {
    return {
      snapshotId: Guid.parse(r.snapshotId),
      snapshotSetId: Guid.parse(r.snapshotSetId),
      snapshotsCount: r.snapshotsCount,
      snapshotDeviceObject: r.snapshotPath,
      originalVolumeName: r.volumeRoot,
      originatingMachine: r.originatingMachine,
      serviceMachine: this.machine,
      exposedName: r.exposedName,
      exposedPath: '',
      providerId: PROVIDER_IDS[r.provider],
      snapshotAttributes: r.attributes,
      creationTimestamp: new Date(r.creationTimestamp),
      status: r.state,
    };
  }
}

/** One snapshot set being created: AddToSnapshotSet, then the commit phases in order. */
export class SnapshotSetCreation {
  readonly snapshotSetId = Guid.random();
  private readonly members: Member[] = [];
  private phase: SetPhase = 'adding';
  private excludes: FileSpec[] = [];
  private inFlight: Promise<unknown> | undefined;

  constructor(
    private readonly manager: SnapshotManager,
    readonly sessionId: string,
    readonly context: SnapshotContext,
    readonly attributes: number,
  ) {}

  get finished(): boolean {
    return this.phase === 'created' || this.phase === 'aborted';
  }

  get snapshotIds(): Guid[] {
    return this.members.map((m) => m.job.snapshotId);
  }

  /** Each volume's snapshot state (VSS_SS_*), by snapshot id. */
  states(): Map<string, SnapshotState> {
    return new Map(this.members.map((m) => [m.job.snapshotId.toString(), m.job.state]));
  }

  /**
   * AddToSnapshotSet: the volume holding `path`, with the provider chosen automatically or
   * forced. Returns the new snapshot's id.
   */
  async addToSnapshotSet(path: string, opts: { provider?: ProviderName } = {}): Promise<Guid> {
    this.expect('adding', 'add volumes');
    if (this.members.length >= MAX_VOLUMES_PER_SNAPSHOT_SET) {
      throw new VssError('VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED', `a snapshot set holds at most ${MAX_VOLUMES_PER_SNAPSHOT_SET} volumes; make a second set for ${path}`);
    }
    const volume = await resolveVolume(path);
    const store = storeFor(volume, this.manager.storeName);
    if (isWithin(volume.path, store.top)) {
      throw new VssError('VSS_E_VOLUME_NOT_SUPPORTED', `${path} is inside the snapshot store ${store.top}; snapshots are not snapshotted`);
    }
    const dup = this.members.find((m) => m.job.volume.root === volume.root);
    if (dup) {
      throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `the volume ${volume.root} (holding ${path}) is already in this snapshot set as snapshot ${dup.job.snapshotId.toString()}`);
    }
    const provider = await chooseProvider(this.manager.providers, volume, opts.provider);
    // The set may have been aborted while we looked at the volume.
    this.expect('adding', 'add volumes');
    const snapshotId = Guid.random();
    const job: SnapshotJob = {
      snapshotId,
      snapshotSetId: this.snapshotSetId,
      volume,
      snapshotPath: join(store.dir, snapshotId.toString()),
      storeInsideVolume: storeInsideVolume(volume, store),
      attributes: this.attributes,
      excludeFromSnapshot: [],
      state: SnapshotState.PREPARING,
    };
    const record: SnapshotRecord = {
      snapshotId: snapshotId.toString(),
      snapshotSetId: this.snapshotSetId.toString(),
      snapshotsCount: 0,
      snapshotPath: job.snapshotPath,
      volumeRoot: volume.root,
      storeTop: store.top,
      provider: provider.name,
      attributes: this.attributes,
      sessionId: this.sessionId,
      originatingMachine: this.manager.machine,
      creationTimestamp: '',
      state: SnapshotState.PREPARING,
      exposedName: '',
    };
    this.members.push({ job, provider, store, record });
    return snapshotId;
  }

  /** The writers' EXCLUDE_FILES_FROM_SNAPSHOT lists (absolute paths); before commit. */
  setExcludeFromSnapshot(specs: readonly FileSpec[]): void {
    if (this.phase === 'committed' || this.finished) throw new VssError('VSS_E_BAD_STATE', 'exclusions must be given before the set is committed');
    this.excludes = [...specs];
  }

  /** The provider chosen for a snapshot of this set. */
  providerOf(snapshotId: Guid | string): ProviderName | undefined {
    return this.members.find((m) => m.job.snapshotId.equals(snapshotId))?.provider.name;
  }

  /** BeginPrepareSnapshot for every volume, then EndPrepareSnapshots. */
  async prepare(): Promise<void> {
    this.expect('adding', 'prepare');
    if (!this.members.length) throw new VssError('VSS_E_BAD_STATE', 'the snapshot set has no volume; add one with addToSnapshotSet');
    await this.guard(async () => {
      for (const m of this.members) {
        m.record.snapshotsCount = this.members.length;
        m.job.excludeFromSnapshot = this.excludes;
      }
      // Recorded before anything exists on disk, so a crash from here on is recoverable.
      await this.manager.registry.put(this.members.map((m) => m.record));
      for (const m of this.members) await ensureStore(m.job.volume, m.store);
      for (const m of this.members) await m.provider.beginPrepareSnapshot(m.job);
      for (const [provider, jobs] of this.groups()) await provider.endPrepareSnapshots(jobs);
      this.phase = 'prepared';
    });
  }

  async preCommit(): Promise<void> {
    this.expect('prepared', 'pre-commit');
    await this.guard(async () => {
      for (const [provider, jobs] of this.groups()) await provider.preCommitSnapshots(jobs);
      this.phase = 'precommitted';
    });
  }

  /** CommitSnapshots, all providers at once, within the commit window (VSS_E_HOLD_WRITES_TIMEOUT past it). */
  async commit(): Promise<void> {
    this.expect('precommitted', 'commit');
    const windowMs = this.manager.commitWindowMs;
    await this.guard(async () => {
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const e = new VssError('VSS_E_HOLD_WRITES_TIMEOUT', `the providers did not commit within the ${windowMs} ms commit window; the set was aborted, retry when the volumes are less busy`);
          controller.abort(e);
          reject(e);
        }, windowMs);
      });
      const commitTime = new Date().toISOString();
      const work = Promise.all([...this.groups()].map(([provider, jobs]) => provider.commitSnapshots(jobs, controller.signal)));
      this.inFlight = work;
      try {
        await Promise.race([work, timeout]);
      } finally {
        clearTimeout(timer);
      }
      for (const m of this.members) m.record.creationTimestamp = commitTime;
      this.phase = 'committed';
    });
  }

  /** PostCommitSnapshots; the snapshots are then complete (VSS_SS_CREATED) and recorded so. */
  async postCommit(): Promise<SnapshotProperties[]> {
    this.expect('committed', 'post-commit');
    return this.guard(async () => {
      for (const [provider, jobs] of this.groups()) await provider.postCommitSnapshots(jobs);
      for (const m of this.members) {
        m.job.state = SnapshotState.CREATED;
        m.record.state = SnapshotState.CREATED;
      }
      await this.manager.registry.put(this.members.map((m) => m.record));
      this.phase = 'created';
      this.manager.setFinished(this);
      return this.members.map((m) => this.manager.propertiesOf(m.record));
    });
  }

  /** Every phase in order, for sets without writers (NO_WRITERS contexts, tests, tools). */
  async doSnapshotSet(): Promise<SnapshotProperties[]> {
    await this.prepare();
    await this.preCommit();
    await this.commit();
    return this.postCommit();
  }

  /**
   * AbortSnapshots: removes everything the set made (snapshots, records, empty stores).
   * Legal any time before the set is created; a no-op when already aborted.
   */
  async abort(): Promise<void> {
    if (this.phase === 'aborted') return;
    if (this.phase === 'created') throw new VssError('VSS_E_BAD_STATE', `snapshot set ${this.snapshotSetId.toString()} is complete; delete its snapshots instead`);
    this.phase = 'aborted';
    const errors: unknown[] = [];
    try {
      // A provider command still running (past the commit window) must end before we clean.
      await this.inFlight?.catch(() => undefined);
      for (const [provider, jobs] of this.groups()) await provider.abortSnapshots(jobs).catch((e: unknown) => errors.push(e));
      const ids = this.members.map((m) => m.record.snapshotId);
      if (ids.length) await this.manager.registry.remove(ids).catch((e: unknown) => errors.push(e));
      for (const store of new Map(this.members.map((m) => [m.store.top, m.store])).values()) {
        await removeStoreIfEmpty(store).catch((e: unknown) => errors.push(e));
      }
    } finally {
      this.manager.setFinished(this);
    }
    if (errors.length) throw toVssError(errors[0]);
  }

  private groups(): Map<SnapshotProvider, SnapshotJob[]> {
    const g = new Map<SnapshotProvider, SnapshotJob[]>();
    for (const m of this.members) {
      const list = g.get(m.provider) ?? [];
      list.push(m.job);
      g.set(m.provider, list);
    }
    return g;
  }

  private expect(phase: SetPhase, what: string): void {
    if (this.phase !== phase) {
      throw new VssError('VSS_E_BAD_STATE', `cannot ${what}: snapshot set ${this.snapshotSetId.toString()} is ${this.phase}${this.phase === 'aborted' ? '; start a new set' : ''}`);
    }
  }

  /** Runs a phase; on failure aborts the set so nothing is left behind, then rethrows. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const err = toVssError(e);
      try {
        await this.abort();
      } catch {
        // The first failure is the one to report; abort's own is secondary.
      }
      throw err;
    }
  }
}
