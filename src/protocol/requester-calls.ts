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
  // ---- restore (spec §5): the same session object, initialized for restore ----------------
  /**
   * InitializeForRestore: the BCD saved with the backup and the writers' metadata saved with
   * it (the stored WMDs are the only source of file sets; every writer of the BCD needs one).
   * Restore-time properties the saved document may carry are cleared: every selection goes
   * through the checked calls below.
   */
  initializeForRestore: { method: 'session.initializeForRestore', params: S.extend({ bcdXml: z.string(), writerMetadataXml: z.array(z.string()) }), result: z.object({}) },
  /** SetRestoreState: a VSS_RESTORE_TYPE value (default VSS_RTYPE_BY_COPY). Before preRestore. */
  setRestoreState: { method: 'session.setRestoreState', params: S.extend({ restoreType: z.number().int() }), result: z.object({}) },
  /**
   * SetSelectedForRestore / SetSelectedForRestoreEx (with instanceId: the backed-up instance when
   * several of the class are in the BCD, or the running instance to restore to).
   */
  setSelectedForRestore: { method: 'session.setSelectedForRestore', params: ComponentRef.extend({ selected: z.boolean(), instanceId: Guid.optional() }), result: z.object({}) },
  addRestoreSubcomponent: {
    method: 'session.addRestoreSubcomponent',
    params: ComponentRef.extend({ subLogicalPath: z.string().default(''), subComponentName: z.string().min(1), repair: z.boolean().default(false) }),
    result: z.object({}),
  },
  /** The quoted `"Name"="Value"` syntax of spec §14.6, optionally `"Sub\\Path":`-scoped; checked. */
  setRestoreOptions: { method: 'session.setRestoreOptions', params: ComponentRef.extend({ options: z.string() }), result: z.object({}) },
  setAdditionalRestores: { method: 'session.setAdditionalRestores', params: ComponentRef.extend({ additionalRestores: z.boolean() }), result: z.object({}) },
  addNewTarget: {
    method: 'session.addNewTarget',
    params: ComponentRef.extend({ path: z.string().min(1), filespec: z.string().min(1), recursive: z.boolean(), alternatePath: z.string().min(1) }),
    result: z.object({}),
  },
  /** VSS_ROLLFORWARD_TYPE value and point; needs VSS_BS_ROLLFORWARD_RESTORE in the writer's schema. */
  setRollForward: { method: 'session.setRollForward', params: ComponentRef.extend({ rollForwardType: z.number().int(), point: z.string().default('') }), result: z.object({}) },
  /** Needs VSS_BS_AUTHORITATIVE_RESTORE. */
  setAuthoritativeRestore: { method: 'session.setAuthoritativeRestore', params: ComponentRef.extend({ authoritative: z.boolean() }), result: z.object({}) },
  /** Needs VSS_BS_RESTORE_RENAME. */
  setRestoreName: { method: 'session.setRestoreName', params: ComponentRef.extend({ restoreName: z.string() }), result: z.object({}) },
  /** Async (not cancellable: restores cannot be aborted). PreRestore to the writers with something selected. */
  preRestore: { method: 'session.preRestore', params: S, result: z.object({}) },
  /** Between preRestore and postRestore: a set was restored to the writer's alternate location. */
  addAlternativeLocationMapping: {
    method: 'session.addAlternativeLocationMapping',
    params: ComponentRef.extend({ path: z.string().min(1), filespec: z.string().min(1), recursive: z.boolean(), destination: z.string().min(1) }),
    result: z.object({}),
  },
  setRangesFilePath: { method: 'session.setRangesFilePath', params: ComponentRef.extend({ partialFileIndex: z.number().int().nonnegative(), rangesFilePath: z.string().min(1) }), result: z.object({}) },
  /** VSS_FILE_RESTORE_STATUS value (1 NONE, 2 ALL, 3 FAILED); between preRestore and postRestore. */
  setFileRestoreStatus: { method: 'session.setFileRestoreStatus', params: ComponentRef.extend({ status: z.number().int() }), result: z.object({}) },
  /** Async (not cancellable). PostRestore to the writers that take part; release waits for it. */
  postRestore: { method: 'session.postRestore', params: S, result: z.object({}) },
  /**
   * Releases the session: Abort if a set is in creation, BackupShutdown, auto-release snapshots
   * deleted. Refused (VSS_E_BAD_STATE) while writers handle PreRestore or PostRestore.
   */
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
