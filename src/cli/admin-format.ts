// What the admin commands (writers, metadata, create, list, delete, expose) share: writer
// state labels as vssadmin prints them, error names, snapshot descriptions, id parsing.
import type { WriterInfoWire } from '../protocol/admin.js';
import {
  applicationLevelCodec,
  flagNames,
  Guid,
  hresultName,
  providerNameOf,
  SnapshotContext,
  snapshotContextCodec,
  snapshotStateCodec,
  VolumeSnapshotAttributes,
  VOLUME_SNAPSHOT_ATTRIBUTES_PREFIX,
  VssError,
  WriterState,
  writerStateCodec,
  type SnapshotProperties,
} from '../vss/index.js';

const STATE_LABELS: Record<number, string> = {
  [WriterState.UNKNOWN]: 'Unknown',
  [WriterState.STABLE]: 'Stable',
  [WriterState.WAITING_FOR_FREEZE]: 'Waiting for freeze',
  [WriterState.WAITING_FOR_THAW]: 'Frozen',
  [WriterState.WAITING_FOR_POST_SNAPSHOT]: 'Waiting for post snapshot',
  [WriterState.WAITING_FOR_BACKUP_COMPLETE]: 'Waiting for completion',
  [WriterState.FAILED_AT_IDENTIFY]: 'Failed at Identify',
  [WriterState.FAILED_AT_PREPARE_BACKUP]: 'Failed at PrepareForBackup',
  [WriterState.FAILED_AT_PREPARE_SNAPSHOT]: 'Failed at PrepareForSnapshot',
  [WriterState.FAILED_AT_FREEZE]: 'Failed at Freeze',
  [WriterState.FAILED_AT_THAW]: 'Failed at Thaw',
  [WriterState.FAILED_AT_POST_SNAPSHOT]: 'Failed at PostSnapshot',
  [WriterState.FAILED_AT_BACKUP_COMPLETE]: 'Failed at BackupComplete',
  [WriterState.FAILED_AT_PRE_RESTORE]: 'Failed at PreRestore',
  [WriterState.FAILED_AT_POST_RESTORE]: 'Failed at PostRestore',
  [WriterState.FAILED_AT_BACKUPSHUTDOWN]: 'Failed at BackupShutdown',
};

/** `Stable`, `Frozen`, `Failed at Freeze`… (vshadow's and vssadmin's wording, spec §7.1). */
export function writerStateLabel(state: number): string {
  return STATE_LABELS[state] ?? `Unknown state ${state}`;
}

/** `VSS_E_WRITERERROR_RETRYABLE`, or `No error` for S_OK. */
export function lastErrorText(hr: number): string {
  return hr === 0 ? 'No error' : hresultName(hr);
}

/** One writer as `shadowcopy writers --json` prints it. */
export function writerJson(w: WriterInfoWire): Record<string, unknown> {
  return {
    writerId: w.writerId,
    instanceId: w.instanceId,
    writerName: w.writerName,
    instanceName: w.instanceName,
    state: w.state,
    stateName: writerStateCodec.nameOf(w.state) ?? null,
    stateLabel: writerStateLabel(w.state),
    lastError: w.lastError,
    lastErrorName: w.lastError === 0 ? null : hresultName(w.lastError),
    applicationMessage: w.applicationMessage,
    level: applicationLevelCodec.nameOf(w.level) ?? w.level,
    freezeTimeoutMs: w.freezeTimeoutMs,
    connectedAt: w.connectedAt,
  };
}

/** vssadmin list writers' block for one writer. */
export function formatWriter(w: WriterInfoWire): string {
  return [
    `Writer name: '${w.writerName}'`,
    `   Writer Id: {${w.writerId}}`,
    `   Writer Instance Id: {${w.instanceId}}`,
    ...(w.instanceName ? [`   Writer Instance Name: '${w.instanceName}'`] : []),
    `   State: [${w.state}] ${writerStateLabel(w.state)}`,
    `   Last error: ${lastErrorText(w.lastError)}`,
    ...(w.applicationMessage ? [`   Application message: ${w.applicationMessage}`] : []),
  ].join('\n');
}

/** A writer named on the command line: class id, instance id or name (case-insensitive). */
export function matchesWriter(spec: string, w: { writerId: string | Guid; instanceId: string | Guid; writerName: string; instanceName?: string }): boolean {
  const g = Guid.tryParse(spec);
  if (g) return g.equals(w.writerId) || g.equals(w.instanceId);
  const s = spec.toLowerCase();
  return w.writerName.toLowerCase() === s || (w.instanceName ? `${w.writerName}:${w.instanceName}`.toLowerCase() === s : false);
}

/** A snapshot or set id from the command line, with or without braces. */
export function parseId(text: string, what: string): Guid {
  const g = Guid.tryParse(text);
  if (!g) throw new VssError('E_INVALIDARG', `${what} "${text}" is not a GUID (8-4-4-4-12 hexadecimal digits, braces optional); \`shadowcopy list\` shows the ids`);
  return g;
}

/** The context a snapshot was made in, from its attribute bits (VSS_CTX_*). */
export function contextOf(attributes: number): string {
  const bits = attributes & (VolumeSnapshotAttributes.PERSISTENT | VolumeSnapshotAttributes.CLIENT_ACCESSIBLE | VolumeSnapshotAttributes.NO_AUTO_RELEASE | VolumeSnapshotAttributes.NO_WRITERS);
  return snapshotContextCodec.nameOf(bits) ?? `0x${bits.toString(16)}`;
}

/** A snapshot as `list --json` and `create --json` print it. */
export function snapshotJson(p: SnapshotProperties): Record<string, unknown> {
  return {
    snapshotId: p.snapshotId.toString(),
    snapshotSetId: p.snapshotSetId.toString(),
    snapshotsCount: p.snapshotsCount,
    originalVolume: p.originalVolumeName,
    snapshotPath: p.snapshotDeviceObject,
    exposedName: p.exposedName,
    provider: providerNameOf(p.providerId) ?? p.providerId.toString(),
    providerId: p.providerId.toString(),
    context: contextOf(p.snapshotAttributes),
    attributes: p.snapshotAttributes,
    attributeNames: flagNames(VOLUME_SNAPSHOT_ATTRIBUTES_PREFIX, VolumeSnapshotAttributes, p.snapshotAttributes),
    persistent: (p.snapshotAttributes & VolumeSnapshotAttributes.PERSISTENT) !== 0,
    autoRelease: (p.snapshotAttributes & VolumeSnapshotAttributes.NO_AUTO_RELEASE) === 0,
    originatingMachine: p.originatingMachine,
    serviceMachine: p.serviceMachine,
    creationTimestamp: p.creationTimestamp.toISOString(),
    status: snapshotStateCodec.nameOf(p.status) ?? p.status,
  };
}

/** vssadmin list shadows' block for one snapshot. */
export function formatSnapshot(p: SnapshotProperties): string {
  const attrs = flagNames(VOLUME_SNAPSHOT_ATTRIBUTES_PREFIX, VolumeSnapshotAttributes, p.snapshotAttributes).map((n) => n.slice(VOLUME_SNAPSHOT_ATTRIBUTES_PREFIX.length));
  return [
    `   Shadow Copy ID: {${p.snapshotId.toString()}}`,
    `      Original Volume: ${p.originalVolumeName}`,
    `      Shadow Copy Volume: ${p.snapshotDeviceObject}`,
    ...(p.exposedName ? [`      Exposed at: ${p.exposedName}`] : []),
    `      Originating Machine: ${p.originatingMachine}`,
    `      Service Machine: ${p.serviceMachine}`,
    `      Provider: ${providerNameOf(p.providerId) ?? p.providerId.toString()}`,
    `      Type: ${contextOf(p.snapshotAttributes)}`,
    `      Attributes: ${attrs.length ? attrs.join(', ') : 'none'}`,
  ].join('\n');
}

/** Snapshots grouped by set, in creation order, as vssadmin list shadows prints them. */
export function formatSnapshotSets(snapshots: readonly SnapshotProperties[]): string {
  const sets = new Map<string, SnapshotProperties[]>();
  for (const p of [...snapshots].sort((a, b) => a.creationTimestamp.getTime() - b.creationTimestamp.getTime())) {
    const k = p.snapshotSetId.toString();
    sets.set(k, [...(sets.get(k) ?? []), p]);
  }
  return [...sets.entries()]
    .map(([setId, ps]) => [`Contents of shadow copy set ID: {${setId}}`, `   Contained ${ps[0]!.snapshotsCount} shadow copies at creation time: ${ps[0]!.creationTimestamp.toISOString()}`, ...ps.map(formatSnapshot)].join('\n'))
    .join('\n\n');
}

/** The creation context for `create`'s flags (spec §2.6): persistent or not, writers or not. */
export function createContext(persistent: boolean, noWriters: boolean): SnapshotContext {
  if (persistent) return noWriters ? SnapshotContext.NAS_ROLLBACK : SnapshotContext.APP_ROLLBACK;
  return noWriters ? SnapshotContext.FILE_SHARE_BACKUP : SnapshotContext.BACKUP;
}
