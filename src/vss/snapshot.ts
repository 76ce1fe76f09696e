// The snapshot side of the model (spec §2.6, §16): VSS_SNAPSHOT_PROP and the rules that
// turn a snapshot context into attribute bits. Pure: no I/O.
import { VssError } from './errors.js';
import { Guid } from './guid.js';
import {
  CONTEXT_MODIFIER_ATTRIBUTES,
  SnapshotContext,
  snapshotContextCodec,
  SnapshotState,
  VolumeSnapshotAttributes,
} from './enums.js';

/** The providers shadowcopy ships: one per way a Linux filesystem can make a point-in-time copy. */
export const PROVIDER_NAMES = ['btrfs', 'reflink', 'copy'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** Fixed provider ids (VSS_ID of each provider), so snapshot properties name their provider stably. */
export const PROVIDER_IDS: Readonly<Record<ProviderName, Guid>> = {
  btrfs: Guid.parse('216623ac-f0ea-4b41-b5a6-c21f909c1934'),
  reflink: Guid.parse('23d7f1bd-2f1d-4370-9bc3-6c731436b1ca'),
  copy: Guid.parse('4945e2f5-9011-4d33-9927-c4850d19a86c'),
};

export function providerNameOf(id: Guid | string): ProviderName | undefined {
  return PROVIDER_NAMES.find((n) => PROVIDER_IDS[n].equals(id));
}

/** VSS_SNAPSHOT_PROP: what GetSnapshotProperties and Query report for one snapshot. */
export interface SnapshotProperties {
  snapshotId: Guid;
  snapshotSetId: Guid;
  /** Number of snapshots in the set. */
  snapshotsCount: number;
  /** The directory where the snapshot's content is visible (read-only). */
  snapshotDeviceObject: string;
  /** The volume's root: a mount point or a btrfs subvolume. */
  originalVolumeName: string;
  originatingMachine: string;
  serviceMachine: string;
  /** Where the snapshot is exposed (the bind-mount target), or '' when it is not. */
  exposedName: string;
  /** Subdirectory of the snapshot that is exposed; always '' (the whole snapshot is). */
  exposedPath: string;
  providerId: Guid;
  /** VSS_VOLUME_SNAPSHOT_ATTRIBUTES bits. */
  snapshotAttributes: number;
  creationTimestamp: Date;
  status: SnapshotState;
}

/** Contexts a snapshot set may be created in (VSS_CTX_ALL is for query and admin only). */
const CREATION_CONTEXTS: readonly number[] = [
  SnapshotContext.BACKUP,
  SnapshotContext.FILE_SHARE_BACKUP,
  SnapshotContext.NAS_ROLLBACK,
  SnapshotContext.APP_ROLLBACK,
  SnapshotContext.CLIENT_ACCESSIBLE,
  SnapshotContext.CLIENT_ACCESSIBLE_WRITERS,
];

/**
 * Splits a SetContext value (context | modifier bits) into its context and the attribute
 * bits its snapshots get, refusing what VSS refuses (VSS_E_UNSUPPORTED_CONTEXT).
 */
export function attributesOfContext(value: number): { context: SnapshotContext; attributes: number } {
  const v = value >>> 0;
  const modifiers = v & CONTEXT_MODIFIER_ATTRIBUTES;
  const context = (v & ~CONTEXT_MODIFIER_ATTRIBUTES) >>> 0;
  if (!CREATION_CONTEXTS.includes(context)) {
    throw new VssError(
      'VSS_E_UNSUPPORTED_CONTEXT',
      `0x${v.toString(16)} is not a context snapshots can be created in; use one of ${CREATION_CONTEXTS.map((c) => snapshotContextCodec.nameOf(c)).join(', ')}, optionally OR-ed with TRANSPORTABLE, DIFFERENTIAL, PLEX, NO_AUTORECOVERY, NOT_TRANSACTED, ROLLBACK_RECOVERY or TXF_RECOVERY`,
    );
  }
  if ((modifiers & VolumeSnapshotAttributes.DIFFERENTIAL) !== 0 && (modifiers & VolumeSnapshotAttributes.PLEX) !== 0) {
    throw new VssError('VSS_E_UNSUPPORTED_CONTEXT', 'DIFFERENTIAL and PLEX exclude each other: choose one');
  }
  return { context: context as SnapshotContext, attributes: (context | modifiers) >>> 0 };
}

/** Auto-release snapshots are deleted when the session that made them ends. */
export function isAutoRelease(attributes: number): boolean {
  return (attributes & VolumeSnapshotAttributes.NO_AUTO_RELEASE) === 0;
}

export function isPersistent(attributes: number): boolean {
  return (attributes & VolumeSnapshotAttributes.PERSISTENT) !== 0;
}

/**
 * Whether a snapshot with these attributes is visible to Query in `context` (spec §16: only
 * the current context's snapshots, VSS_CTX_ALL sees all). Modifier bits do not matter.
 */
export function snapshotInContext(attributes: number, context: number): boolean {
  if (context >>> 0 === SnapshotContext.ALL) return true;
  const contextBits =
    VolumeSnapshotAttributes.PERSISTENT |
    VolumeSnapshotAttributes.CLIENT_ACCESSIBLE |
    VolumeSnapshotAttributes.NO_AUTO_RELEASE |
    VolumeSnapshotAttributes.NO_WRITERS;
  return (attributes & contextBits) === (context & contextBits);
}

/** At most 64 volumes per snapshot set (spec §6). */
export const MAX_VOLUMES_PER_SNAPSHOT_SET = 64;
/** The provider commit window, as VSS's flush-and-hold (spec §6). */
export const DEFAULT_COMMIT_WINDOW_MS = 10_000;
