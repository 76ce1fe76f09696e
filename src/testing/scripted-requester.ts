// A scripted requester for tests and demos: the canonical backup sequence of spec §4.1 with
// vshadow's policy — stop (with abortBackup) when a writer failed PrepareForBackup or
// DoSnapshotSet failed; otherwise complete, marking the components of failed writers as not
// backed up. Reports after every step so a test can act (or kill it) there.
import type { BackupComponents, WriterStatus } from '../requester/index.js';
import { BackupType, Guid, isFailure, type ComponentType, type SnapshotContext } from '../vss/index.js';
import type { ProviderName, SnapshotProperties } from '../vss/snapshot.js';
import { isFailedWriterState } from './writer-state.js';

export const SCRIPT_STEPS = ['initialize', 'gatherWriterMetadata', 'startSnapshotSet', 'prepareForBackup', 'doSnapshotSet', 'backupComplete'] as const;
export type ScriptStep = (typeof SCRIPT_STEPS)[number];

export interface ScriptOptions {
  volumes?: string[];
  provider?: ProviderName;
  context?: SnapshotContext | number;
  backupType?: BackupType;
  /** Called after each step completes (before the next starts). */
  onStep?: (step: ScriptStep, info: { snapshotSetId?: Guid }) => void | Promise<void>;
}

export interface ScriptResult {
  outcome: 'completed' | 'aborted-after-prepare' | 'snapshot-failed';
  snapshotSetId: Guid;
  snapshots: SnapshotProperties[];
  statuses: WriterStatus[];
  error?: Error;
  bcdXml?: string;
}

export async function scriptedBackup(bc: BackupComponents, opts: ScriptOptions = {}): Promise<ScriptResult> {
  const step = async (s: ScriptStep, info: { snapshotSetId?: Guid } = {}): Promise<void> => {
    await opts.onStep?.(s, info);
  };
  await bc.initializeForBackup();
  if (opts.context !== undefined) await bc.setContext(opts.context);
  await bc.setBackupState(true, false, opts.backupType ?? BackupType.FULL);
  await step('initialize');
  await bc.gatherWriterMetadata();
  await step('gatherWriterMetadata');
  const added: { instanceId: Guid; writerId: Guid; type: ComponentType; lp: string; name: string }[] = [];
  for (let i = 0; i < bc.getWriterMetadataCount(); i++) {
    const { instanceId, metadata } = bc.getWriterMetadata(i);
    for (const c of metadata.components) {
      // Top-level selectable components, as vshadow does with no selection given.
      if (!c.selectable || c.logicalPath !== '') continue;
      await bc.addComponent(instanceId, metadata.identity.writerId, c.type, c.logicalPath, c.componentName);
      added.push({ instanceId, writerId: metadata.identity.writerId, type: c.type, lp: c.logicalPath, name: c.componentName });
    }
  }
  const snapshotSetId = await bc.startSnapshotSet();
  const snapshotIds: Guid[] = [];
  for (const v of opts.volumes ?? []) snapshotIds.push(await bc.addToSnapshotSet(v, opts.provider));
  await step('startSnapshotSet', { snapshotSetId });
  await bc.prepareForBackup();
  await bc.gatherWriterStatus();
  let statuses = bc.getWriterStatuses();
  await step('prepareForBackup', { snapshotSetId });
  if (statuses.some((s) => isFailedWriterState(s.state) || isFailure(s.hrWriterFailure))) {
    await bc.abortBackup();
    return { outcome: 'aborted-after-prepare', snapshotSetId, snapshots: [], statuses };
  }
  try {
    await bc.doSnapshotSet();
  } catch (e) {
    await bc.abortBackup();
    await bc.gatherWriterStatus();
    return { outcome: 'snapshot-failed', snapshotSetId, snapshots: [], statuses: bc.getWriterStatuses(), error: e as Error };
  }
  await bc.gatherWriterStatus();
  statuses = bc.getWriterStatuses();
  const snapshots: SnapshotProperties[] = [];
  for (const id of snapshotIds) snapshots.push(await bc.getSnapshotProperties(id));
  await step('doSnapshotSet', { snapshotSetId });
  for (const a of added) {
    const s = statuses.find((x) => x.instanceId.equals(a.instanceId));
    await bc.setBackupSucceeded(a.instanceId, a.writerId, a.type, a.lp, a.name, !!s && !isFailedWriterState(s.state));
  }
  await bc.backupComplete();
  await bc.gatherWriterStatus();
  statuses = bc.getWriterStatuses();
  const bcdXml = await bc.saveAsXml();
  await step('backupComplete', { snapshotSetId });
  return { outcome: 'completed', snapshotSetId, snapshots, statuses, bcdXml };
}
