// The provider interface, in the order the coordinator calls it (spec §16):
//   isVolumeSupported → beginPrepareSnapshot (per volume) → endPrepareSnapshots →
//   preCommitSnapshots → commitSnapshots (inside the commit window, writers frozen) →
//   postCommitSnapshots; abortSnapshots on any failure after beginPrepareSnapshot.
// Outside creation: deleteSnapshot, querySnapshot, exposeSnapshot / unexposeSnapshot.
import type { Guid } from '../vss/guid.js';
import type { SnapshotState } from '../vss/enums.js';
import type { ProviderName } from '../vss/snapshot.js';
import type { FileSpec } from '../vss/writer-metadata.js';
import type { VolumeInfo } from './system.js';

export interface VolumeSupport {
  supported: boolean;
  /** Why not, in words a user can act on (empty when supported). */
  reason: string;
}

/** One volume's snapshot while its set is being created: what every phase works on. */
export interface SnapshotJob {
  readonly snapshotId: Guid;
  readonly snapshotSetId: Guid;
  readonly volume: VolumeInfo;
  /** The snapshot device object: the directory that will hold the snapshot's content. */
  readonly snapshotPath: string;
  /** The store's top directory relative to the volume root when the store lies inside the volume, else undefined. */
  readonly storeInsideVolume: string | undefined;
  /** VSS_VOLUME_SNAPSHOT_ATTRIBUTES of the set. */
  readonly attributes: number;
  /** Writers' EXCLUDE_FILES_FROM_SNAPSHOT lists, applied unless NO_AUTORECOVERY is set. */
  excludeFromSnapshot: FileSpec[];
  state: SnapshotState;
  /** The provider's own state between phases (a pending copy, a manifest…). */
  work?: unknown;
}

export interface SnapshotProvider {
  readonly name: ProviderName;
  readonly id: Guid;
  /** Whether this provider can snapshot the volume here and now, and if not why. */
  isVolumeSupported(volume: VolumeInfo): Promise<VolumeSupport>;
  /** Starts preparing one volume's snapshot; may return before the work is done. */
  beginPrepareSnapshot(job: SnapshotJob): Promise<void>;
  /** Waits until every snapshot begun is prepared. */
  endPrepareSnapshots(jobs: readonly SnapshotJob[]): Promise<void>;
  preCommitSnapshots(jobs: readonly SnapshotJob[]): Promise<void>;
  /** Makes the point-in-time copies. Runs with writers frozen: must stay short; stops when `signal` aborts. */
  commitSnapshots(jobs: readonly SnapshotJob[], signal: AbortSignal): Promise<void>;
  /** Finishes the snapshots (exclusions, read-only) once writes are released. */
  postCommitSnapshots(jobs: readonly SnapshotJob[]): Promise<void>;
  /** Undoes everything the snapshots made so far; safe in any phase and more than once. */
  abortSnapshots(jobs: readonly SnapshotJob[]): Promise<void>;
  /** Removes a finished snapshot's content. A path already gone is not an error. */
  deleteSnapshot(snapshotPath: string): Promise<void>;
  /** Whether the snapshot's content is still there. */
  querySnapshot(snapshotPath: string): Promise<boolean>;
  /** Read-only bind mount of the snapshot at an empty directory; returns the target's real path. */
  exposeSnapshot(snapshotPath: string, target: string): Promise<string>;
  unexposeSnapshot(target: string): Promise<void>;
}
