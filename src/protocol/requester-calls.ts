// Requester side of the protocol (requester.sock): one session per backup, its calls in the
// order of IVssBackupComponents (spec §4.1, §18.1). Every call names its session.
import { z } from 'zod';
import { GuidString as Guid } from './writer-events.js';

const S = z.object({ sessionId: z.string().min(1) });
const ComponentRef = S.extend({
  writerId: Guid,
  /** VSS_COMPONENT_TYPE value (1 database, 2 file group). */
  componentType: z.number().int(),
  logicalPath: z.string().default(''),
  componentName: z.string().min(1),
});

export const RequesterMethods = {
  /** CreateVssBackupComponents: a new session owned by this connection. */
  open: { method: 'session.open', params: z.object({}), result: z.object({ sessionId: z.string() }) },
  initializeForBackup: { method: 'session.initializeForBackup', params: S.extend({ bcdXml: z.string().optional() }), result: z.object({}) },
  setContext: { method: 'session.setContext', params: S.extend({ context: z.number().int() }), result: z.object({}) },
  setBackupState: {
    method: 'session.setBackupState',
    params: S.extend({
      selectComponents: z.boolean(),
      bootableSystemStateBackup: z.boolean(),
      /** VSS_BACKUP_TYPE value. */
      backupType: z.number().int(),
      partialFileSupport: z.boolean().default(false),
    }),
    result: z.object({}),
  },
  enableWriterClasses: { method: 'session.enableWriterClasses', params: S.extend({ writerIds: z.array(Guid) }), result: z.object({}) },
  disableWriterClasses: { method: 'session.disableWriterClasses', params: S.extend({ writerIds: z.array(Guid) }), result: z.object({}) },
  disableWriterInstances: { method: 'session.disableWriterInstances', params: S.extend({ instanceIds: z.array(Guid) }), result: z.object({}) },
  /** Async (cancellable). Identify to every enabled writer; answers their metadata. */
  gatherWriterMetadata: {
    method: 'session.gatherWriterMetadata',
    params: S,
    result: z.object({ writers: z.array(z.object({ instanceId: Guid, writerId: Guid, metadataXml: z.string() })) }),
  },
  addComponent: { method: 'session.addComponent', params: ComponentRef.extend({ instanceId: Guid }), result: z.object({}) },
  setBackupOptions: { method: 'session.setBackupOptions', params: ComponentRef.extend({ options: z.string() }), result: z.object({}) },
  setPreviousBackupStamp: { method: 'session.setPreviousBackupStamp', params: ComponentRef.extend({ stamp: z.string() }), result: z.object({}) },
  setBackupSucceeded: { method: 'session.setBackupSucceeded', params: ComponentRef.extend({ instanceId: Guid, succeeded: z.boolean() }), result: z.object({}) },
  startSnapshotSet: { method: 'session.startSnapshotSet', params: S, result: z.object({ snapshotSetId: Guid }) },
  isVolumeSupported: {
    method: 'session.isVolumeSupported',
    params: S.extend({ volume: z.string().min(1), provider: z.string().optional() }),
    result: z.object({ supported: z.boolean(), reason: z.string(), provider: z.string().optional() }),
  },
  addToSnapshotSet: {
    method: 'session.addToSnapshotSet',
    params: S.extend({ volume: z.string().min(1), provider: z.enum(['btrfs', 'reflink', 'copy']).optional() }),
    result: z.object({ snapshotId: Guid }),
  },
  /** Async (cancellable). */
  prepareForBackup: { method: 'session.prepareForBackup', params: S, result: z.object({}) },
  /** Async (cancellable: cancelling aborts the set). */
  doSnapshotSet: { method: 'session.doSnapshotSet', params: S, result: z.object({}) },
  /** Async. Answers the session's status records (spec §7.2). */
  gatherWriterStatus: { method: 'session.gatherWriterStatus', params: S, result: z.lazy(() => GatherStatusResult) },
  getSnapshotProperties: { method: 'session.getSnapshotProperties', params: S.extend({ snapshotId: Guid }), result: z.lazy(() => SnapshotPropertiesWire) },
  /** Async (cancellable). */
  backupComplete: { method: 'session.backupComplete', params: S, result: z.object({}) },
  abortBackup: { method: 'session.abortBackup', params: S, result: z.object({}) },
  saveAsXml: { method: 'session.saveAsXml', params: S, result: z.object({ bcdXml: z.string() }) },
  /** Completed snapshots of the session's context (VSS_CTX_ALL sees all). */
  query: { method: 'session.query', params: S, result: z.object({ snapshots: z.array(z.lazy(() => SnapshotPropertiesWire)) }) },
  deleteSnapshots: {
    method: 'session.deleteSnapshots',
    params: S.extend({ id: Guid, objectType: z.number().int(), force: z.boolean().default(false) }),
    result: z.object({ deletedCount: z.number().int(), nonDeletedSnapshotId: Guid }),
  },
  /** Releases the session: Abort if a set is in creation, BackupShutdown, auto-release snapshots deleted. */
  release: { method: 'session.release', params: S, result: z.object({}) },
} as const;

export const WriterStatusWire = z.object({
  instanceId: Guid,
  writerId: Guid,
  writerName: z.string(),
  instanceName: z.string(),
  /** VSS_WRITER_STATE value. */
  state: z.number().int(),
  /** hrWriterFailure, unsigned (0 = S_OK). */
  hrWriterFailure: z.number().int(),
  hrApplication: z.number().int(),
  applicationMessage: z.string(),
});
export type WriterStatusWire = z.infer<typeof WriterStatusWire>;

export const GatherStatusResult = z.object({
  statuses: z.array(WriterStatusWire),
  /**
   * False when gathered outside the points where status is meaningful (right after
   * PrepareForBackup, DoSnapshotSet, BackupComplete, PreRestore, PostRestore): spec §7.2.
   */
  reliable: z.boolean(),
});

/** VSS_SNAPSHOT_PROP on the wire: ids as strings, the time as ISO 8601. */
export const SnapshotPropertiesWire = z.object({
  snapshotId: Guid,
  snapshotSetId: Guid,
  snapshotsCount: z.number().int(),
  snapshotDeviceObject: z.string(),
  originalVolumeName: z.string(),
  originatingMachine: z.string(),
  serviceMachine: z.string(),
  exposedName: z.string(),
  exposedPath: z.string(),
  providerId: Guid,
  snapshotAttributes: z.number().int(),
  creationTimestamp: z.string(),
  status: z.number().int(),
});
export type SnapshotPropertiesWire = z.infer<typeof SnapshotPropertiesWire>;
