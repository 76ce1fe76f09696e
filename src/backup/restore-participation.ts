// Writers take part in the reference requester's restore through a restore session of the
// requester SDK (spec §5): each step of a chain opens a session, replays the selections made
// in the step's document, sends PreRestore and hands back the document as writers left it;
// after the files are back it records file restore status and the mappings used, sends
// PostRestore, reads the writers' status and releases the session.
import type { BackupComponents, WriterStatus } from '../requester/index.js';
import {
  type BackupComponentsDocument,
  FileRestoreStatus,
  hresultName,
  HRESULT,
  isFailedWriterState,
  RollForwardType,
  VssError,
  type VssErrorName,
  type WriterComponents,
  type WriterMetadata,
  WriterState,
  writerStateCodec,
  writeBackupComponents,
} from '../vss/index.js';
import type { PostRestoreOutcome, PreRestoreOutcome, RestoreParticipation, WriterRestoreFailure } from './run-restore.js';

export interface SessionParticipationOptions {
  /** Opens a requester session: `() => BackupComponents.create({ socketDir })`, or an in-process coordinator's. */
  open: () => Promise<BackupComponents>;
}

/** The live status record of the instance restoring a backed-up writer: the same rule as the coordinator's. */
function statusOf(statuses: readonly WriterStatus[], w: WriterComponents): WriterStatus | undefined {
  const to = w.components.find((c) => c.isSelectedForRestore() && c.restoreInstanceId)?.restoreInstanceId;
  if (to) return statuses.find((s) => s.instanceId.equals(to));
  const same = statuses.filter((s) => s.writerId.equals(w.writerId) && (!w.instanceName || s.instanceName === w.instanceName));
  return same.find((s) => s.instanceName === '') ?? same[0];
}

function failed(s: WriterStatus): boolean {
  return isFailedWriterState(s.state) || s.hrWriterFailure !== 0;
}

/** The writer's failure as a typed error: its own VSS_E_WRITERERROR_* code when it gave one. */
function writerError(s: WriterStatus, event: string, consequence: string): VssError {
  const name = hresultName(s.hrWriterFailure);
  const code = (name in HRESULT ? name : 'VSS_E_UNEXPECTED_WRITER_ERROR') as VssErrorName;
  const why = s.applicationMessage || writerStateCodec.nameOf(s.state) || `state ${s.state}`;
  return new VssError(code, `writer "${s.writerName}" failed ${event} (${why}); ${consequence}`);
}

export class SessionRestoreParticipation implements RestoreParticipation {
  private session: BackupComponents | undefined;

  constructor(private readonly options: SessionParticipationOptions) {}

  async preRestore(bcd: BackupComponentsDocument, wmds: readonly WriterMetadata[]): Promise<PreRestoreOutcome> {
    await this.abandon();
    const s = await this.options.open();
    this.session = s;
    try {
      await s.initializeForRestore(writeBackupComponents(bcd), wmds);
      await s.gatherWriterMetadata();
      for (const w of bcd.writers) {
        // The class id is enough unless the document holds several instances of the class.
        const several = bcd.writers.filter((o) => o.writerId.equals(w.writerId)).length > 1;
        for (const c of w.components) {
          if (!c.isSelectedForRestore()) continue;
          const k = [w.writerId, c.componentType, c.logicalPath, c.componentName] as const;
          if (c.restoreInstanceId) await s.setSelectedForRestoreEx(...k, true, c.restoreInstanceId);
          else if (several) await s.setSelectedForRestoreEx(...k, true, w.instanceId);
          else await s.setSelectedForRestore(...k, true);
          for (const sub of c.restoreSubcomponents) await s.addRestoreSubcomponent(...k, sub.logicalPath, sub.componentName, sub.repair);
          if (c.restoreOptions) await s.setRestoreOptions(...k, c.restoreOptions);
          if (c.additionalRestores) await s.setAdditionalRestores(...k, true);
          for (const t of c.newTargets) await s.addNewTarget(...k, t.path, t.filespec, t.recursive, t.alternatePath);
          if (c.rollForwardType !== RollForwardType.UNDEFINED) await s.setRollForward(...k, c.rollForwardType, c.rollForwardPoint);
          if (c.authoritativeRestore) await s.setAuthoritativeRestore(...k, true);
          if (c.restoreName) await s.setRestoreName(...k, c.restoreName);
        }
      }
      await s.preRestore();
      await s.gatherWriterStatus();
      const statuses = s.getWriterStatuses();
      const doc = await s.getBackupComponentsDocument();
      const refused: PreRestoreOutcome['refused'] = [];
      for (const w of doc.writers) {
        const st = statusOf(statuses, w);
        for (const c of w.components) {
          if (!c.isSelectedForRestore()) continue;
          // A writer that failed PreRestore is not ready for its files; a component it marked failed neither.
          const error = st && failed(st)
            ? writerError(st, 'PreRestore', `"${c.fullPath}" was not restored; fix the cause and restore again`)
            : c.preRestoreFailureMsg
              ? new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `writer "${st?.writerName ?? w.writerId.toString()}" refused "${c.fullPath}" in PreRestore: ${c.preRestoreFailureMsg}; it was not restored`)
              : undefined;
          if (error) refused.push({ writerId: w.writerId.value, instanceId: w.instanceId.value, component: c.fullPath, error });
        }
      }
      return { bcd: doc, refused, writerFailures: this.failures(statuses, doc, 'PreRestore') };
    } catch (e) {
      await this.abandon();
      throw e;
    }
  }

  async postRestore(bcd: BackupComponentsDocument): Promise<PostRestoreOutcome> {
    const s = this.session;
    if (!s) throw new VssError('VSS_E_BAD_STATE', 'postRestore without preRestore; call preRestore first');
    try {
      for (const w of bcd.writers) {
        for (const c of w.components) {
          if (!c.isSelectedForRestore()) continue;
          const k = [w.writerId, c.componentType, c.logicalPath, c.componentName] as const;
          if (c.fileRestoreStatus !== FileRestoreStatus.UNDEFINED) await s.setFileRestoreStatus(...k, c.fileRestoreStatus);
          for (const m of c.alternateLocationMappings) await s.addAlternativeLocationMapping(...k, m.path, m.filespec, m.recursive, m.destination);
        }
      }
      await s.postRestore();
      await s.gatherWriterStatus();
      const doc = await s.getBackupComponentsDocument();
      return { bcd: doc, writerFailures: this.failures(s.getWriterStatuses(), doc, 'PostRestore') };
    } finally {
      await this.abandon();
    }
  }

  /** Releases the session of a step that ended early (nothing is aborted: restores cannot be). */
  async abandon(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    await s?.[Symbol.asyncDispose]();
  }

  /** Writers with something selected that failed `event`, and the components they marked failed. */
  private failures(statuses: readonly WriterStatus[], doc: BackupComponentsDocument, event: 'PreRestore' | 'PostRestore'): WriterRestoreFailure[] {
    const state = event === 'PreRestore' ? WriterState.FAILED_AT_PRE_RESTORE : WriterState.FAILED_AT_POST_RESTORE;
    const out: WriterRestoreFailure[] = [];
    for (const w of doc.writers) {
      const selected = w.components.filter((c) => c.isSelectedForRestore());
      if (!selected.length) continue;
      const st = statusOf(statuses, w);
      const base = { writerId: w.writerId.value, writerName: st?.writerName ?? '', event };
      if (st && st.state === state) {
        out.push({ ...base, instanceId: st.instanceId.value, state: st.state, error: writerError(st, event, event === 'PreRestore' ? 'its components were not restored' : 'its files are back but its own recovery did not confirm; check the application') });
      }
      for (const c of selected) {
        const msg = event === 'PreRestore' ? c.preRestoreFailureMsg : c.postRestoreFailureMsg;
        if (msg) out.push({ ...base, instanceId: st?.instanceId.value ?? '', state: st?.state ?? WriterState.UNKNOWN, component: c.fullPath, error: new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `writer "${base.writerName}" reports for "${c.fullPath}" at ${event}: ${msg}`) });
      }
    }
    return out;
  }
}
