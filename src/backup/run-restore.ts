// The reference requester's restore (issue 7, spec §5, §14): check every checksum before
// touching the disk, then restore the backup chain in order (the full backup first, each
// later one with "additional restores" set on all but the last), component set by
// component set through the restore executor, then the crash-consistent files.
// Writers take part through a RestoreParticipation (PreRestore / PostRestore); without
// one the restore is a restore without writer participation (spec §14.7).
import { join, posix } from 'node:path';
import {
  type BackupComponentsDocument,
  computeRestoreSet,
  parseBackupComponents,
  parseWriterMetadata,
  type RestorePlan,
  type RestoreSet,
  VssError,
  type WriterMetadata,
  type BackupSetEntry,
  BackupSchema,
  ComponentTree,
  DEFAULT_FILESPEC_BACKUP_TYPE,
  fileSetsOf,
  sameFileSet,
  FileRestoreStatus,
  Guid,
  RestoreMethod,
  RestoreTarget,
  RollForwardType,
  WriterRestore,
} from '../vss/index.js';
import { BackupDir, BCD_FILE, type ManifestFile } from './backup-dir.js';
import { startLauncher } from '../os/launcher.js';
import { CopyPool } from './copy-pool.js';
import { isPlainAbsolute } from './durable.js';
import { type ComponentRestoreResult, RestoreExecutor } from './restore-executor.js';
import type { ComponentChoice } from './run-backup.js';
import type { ServiceManager } from './service-manager.js';

/** A writer that failed PreRestore or PostRestore, or a component it reported failed. */
export interface WriterRestoreFailure {
  writerId: string;
  /** The running instance that took part ('' when none did). */
  instanceId: string;
  writerName: string;
  event: 'PreRestore' | 'PostRestore';
  /** VSS_WRITER_STATE of the writer afterwards. */
  state: number;
  /** Set when the writer reported this component failed (Set…RestoreFailureMsg). */
  component?: string;
  error: VssError;
}

export interface PreRestoreOutcome {
  /** The document as writers left it (restore targets, directed targets, restore metadata). */
  bcd: BackupComponentsDocument;
  /** Components not to restore: their writer failed PreRestore or refused them. Their files stay as they are. */
  refused: { writerId: string; instanceId: string; component: string; error: VssError }[];
  writerFailures: WriterRestoreFailure[];
}

export interface PostRestoreOutcome {
  bcd: BackupComponentsDocument;
  /** The files are back; these writers did not confirm their own recovery (failed, or gone since PreRestore). */
  writerFailures: WriterRestoreFailure[];
}

/** How writers take part in a restore: SessionRestoreParticipation implements it over the requester SDK. */
export interface RestoreParticipation {
  /** Sends PreRestore with the selections made in `bcd`; returns the document as writers left it. */
  preRestore(bcd: BackupComponentsDocument, wmds: readonly WriterMetadata[]): Promise<PreRestoreOutcome>;
  /** Records what was restored (file restore status, mappings used) and sends PostRestore. */
  postRestore(bcd: BackupComponentsDocument): Promise<PostRestoreOutcome>;
  /** Ends the step's session when it stops between preRestore and postRestore. */
  abandon?(): Promise<void>;
}

export interface RestoreOptions {
  from: string;
  /** Components to restore (writer id or name, optionally `:LOGICAL\PATH\NAME`); default: all that succeeded. */
  components?: ComponentChoice[];
  /** Restore under this directory instead of the original places (a private restore). */
  to?: string;
  /** Also restore the crash-consistent files (default true). */
  files?: boolean;
  dryRun?: boolean;
  stateDir: string;
  serviceManager?: ServiceManager;
  participation?: RestoreParticipation;
  /**
   * More restore-time choices on each step's document after the default selection and before
   * PreRestore: restore options, restore subcomponents, new targets (spec §13.3, §14.4, §14.6).
   * With participation they go through the coordinator's checks.
   */
  onSelect?: (bcd: BackupComponentsDocument, step: { backupId: string; last: boolean; wmds: readonly WriterMetadata[] }) => void;
  onProgress?: (p: { phase: 'verify' | 'restore'; files: number; bytes: number; totalFiles?: number; totalBytes?: number }) => void;
}

export interface RestoreStep {
  backupId: string;
  backupType: string;
  results: ComponentRestoreResult[];
  /** With participation: what writers reported at PreRestore and PostRestore. */
  writerFailures?: WriterRestoreFailure[];
}

export interface RestoreReport {
  steps: RestoreStep[];
  /** The crash-consistent files, restored as one set. */
  files?: ComponentRestoreResult;
  verifiedFiles: number;
}

function matches(choice: ComponentChoice, writerId: string, writerName: string, fullPath: string): boolean {
  const writerOk = choice.writer.toLowerCase() === writerId.toLowerCase() || choice.writer === writerName;
  return writerOk && (choice.path === undefined || choice.path.toLowerCase() === fullPath.toLowerCase());
}

/** `path` as it lies under `root` (a private restore): `/srv/x` becomes `<root>/srv/x`. */
function underRoot(root: string): (path: string) => string {
  const top = posix.normalize(root).replace(/\/+$/, ''); // '' for '/'
  const plainTop = top === '' || isPlainAbsolute(top);
  // Plain absolute paths go under by concatenation, the same as posix.join without its cost per path.
  return (p) => (plainTop && isPlainAbsolute(p) ? `${top}${p}` : posix.join(root, p));
}

/**
 * Moves what goes to the original places (or alternate locations) under `root`; files going
 * to a new target are there already (`addNewTargets`).
 */
function relocate(set: RestoreSet, root: string): RestoreSet {
  const under = underRoot(root);
  return {
    plans: set.plans.map((plan) => ({
      ...plan,
      files: plan.files.map((f) => (f.via === 'new-target' ? f : { ...f, destination: under(f.destination), ...(f.fallback ? { fallback: under(f.fallback) } : {}) })),
    })),
  };
}

/**
 * A restore under another root, told to the writers that allow it: each selected component's
 * file sets get a new target under `root` (AddNewTarget, spec §14.4), so the writer learns in
 * PreRestore and PostRestore where its files go. Components of other writers are moved there
 * by the requester alone (`relocate`).
 */
function addNewTargets(bcd: BackupComponentsDocument, wmds: readonly WriterMetadata[], entries: readonly BackupSetEntry[], root: string): void {
  const under = underRoot(root);
  for (const wc of bcd.writers) {
    const wmd = wmds.find((m) => m.identity.instanceId.equals(wc.instanceId));
    if (!wmd || !(wmd.backupSchema & BackupSchema.WRITER_SUPPORTS_NEW_TARGET)) continue;
    const tree = new ComponentTree(wmd);
    for (const c of wc.components) {
      if (!c.isSelectedForRestore()) continue;
      const node = tree.find(c.logicalPath, c.componentName);
      if (!node) continue;
      for (const member of tree.componentSet(node)) {
        for (const { fileSet } of fileSetsOf(member)) {
          if (c.newTargets.some((t) => sameFileSet(t, fileSet))) continue;
          // The set's root as it was expanded at backup time ($VARs resolved then).
          const entry = entries.find((e) => e.instanceId === wc.instanceId.value && e.component.fullPath === member.fullPath && sameFileSet(e.fileSet, fileSet));
          if (entry) c.addNewTarget(fileSet.path, fileSet.filespec, fileSet.recursive, under(entry.root));
        }
      }
    }
  }
}

export async function runRestore(opts: RestoreOptions): Promise<RestoreReport> {
  // Started first, so the workers boot while the manifests are read. They verify, then stage.
  const pool = new CopyPool();
  // The shell the commit's flushes run through, forked while this process is still small.
  if (!opts.dryRun) startLauncher();
  try {
    return await restoreWith(opts, pool);
  } finally {
    await pool.close();
  }
}

async function restoreWith(opts: RestoreOptions, pool: CopyPool): Promise<RestoreReport> {
  const newest = BackupDir.open(opts.from);
  const chain = [...newest.manifest.chain].map((id) => (id === newest.manifest.id ? newest : newest.chain.get(id)));
  if (chain.some((b) => b === undefined)) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the backup chain of ${newest.dir} is incomplete; every backup it builds on must be present`);
  const backups = chain as BackupDir[];

  // 1. Nothing is touched before every stored file of every backup of the chain checks out.
  const toVerify = backups.reduce((n, b) => n + b.manifest.files.filter((f) => f.kind === 'file').length, 0);
  let verified = 0;
  let verifiedBytes = 0;
  for (const b of backups) {
    const problems = await b.verifyWith(pool, (done, _total, bytes) => {
      verifiedBytes += bytes;
      opts.onProgress?.({ phase: 'verify', files: verified + done, bytes: verifiedBytes, totalFiles: toVerify });
    });
    if (problems.length) {
      const list = problems.slice(0, 5).map((p) => `${p.path}: ${p.problem}`).join('; ');
      throw new VssError('VSS_E_CORRUPT_XML_DOCUMENT', `the backup ${b.dir} is damaged (${problems.length} file${problems.length === 1 ? '' : 's'}): ${list}; nothing was restored`);
    }
    verified += b.manifest.files.filter((f) => f.kind === 'file').length;
  }

  // Restore progress: files staged, against what the sets computed so far hold (one set per
  // backup of the chain, and the crash-consistent files).
  const restored = { files: 0, bytes: 0, totalFiles: 0, totalBytes: 0 };
  const reportRestored = (): void => opts.onProgress?.({ phase: 'restore', ...restored });
  const expect = (set: RestoreSet): void => {
    for (const p of set.plans) {
      for (const f of p.files) {
        if (f.entry.kind !== 'file') continue;
        restored.totalFiles++;
        restored.totalBytes += f.entry.size;
      }
    }
    reportRestored();
  };
  let lastReport = 0;
  const executor = new RestoreExecutor({
    stateDir: opts.stateDir,
    onFileStaged: (bytes) => {
      restored.files++;
      restored.bytes += bytes;
      // A few times a second is enough for a progress bar.
      const now = Date.now();
      if (now - lastReport >= 100 || restored.files === restored.totalFiles) {
        lastReport = now;
        reportRestored();
      }
    },
    ...(opts.serviceManager ? { serviceManager: opts.serviceManager } : {}),
    ...(opts.to ? { allowedRoots: [opts.to] } : {}),
    ...(opts.dryRun ? { dryRun: true } : {}),
    pool,
  });
  const steps: RestoreStep[] = [];
  for (const [i, b] of backups.entries()) {
    const last = i === backups.length - 1;
    const bcd = parseBackupComponents(b.readDocument(BCD_FILE), join(b.dir, BCD_FILE));
    const wmds = b.manifest.writers.map((w) => parseWriterMetadata(b.readDocument(w.document), join(b.dir, w.document)));
    // Select: the named components, or every one that succeeded.
    let selected = 0;
    for (const wc of bcd.writers) {
      const name = b.manifest.writers.find((w) => w.instanceId === wc.instanceId.value)?.writerName ?? '';
      for (const c of wc.components) {
        const ok = b.manifest.components.find((m) => m.instanceId === wc.instanceId.value && m.component === c.fullPath)?.succeeded ?? false;
        const wanted = opts.components?.length ? opts.components.some((ch) => matches(ch, wc.writerId.value, name, c.fullPath)) : ok;
        if (wanted) {
          c.setSelectedForRestore(true);
          // Every restore of a chain but the last tells the writer more will follow.
          c.setAdditionalRestores(!last);
          selected++;
        }
      }
    }
    if (opts.components?.length && selected === 0 && last) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `none of the named components is in the backup ${b.dir}; see shadowcopy inspect ${join(b.dir, BCD_FILE)}`);
    }
    if (selected === 0) continue;
    opts.onSelect?.(bcd, { backupId: b.manifest.id, last, wmds });
    // Only what this backup itself stores: older content was restored by an earlier step.
    const entries = b.manifest.files.filter((f) => f.entry && !f.storedIn).map((f) => f.entry!);
    if (opts.to) addNewTargets(bcd, wmds, entries, opts.to);
    const participation = opts.dryRun ? undefined : opts.participation;
    const pre = participation ? await participation.preRestore(bcd, wmds) : undefined;
    const doc = pre?.bcd ?? bcd;
    let results: ComponentRestoreResult[];
    let post: PostRestoreOutcome | undefined;
    try {
      let set = computeRestoreSet(doc, wmds, entries);
      if (opts.to) set = relocate(set, opts.to);
      // Components whose writer failed or refused PreRestore stay as they are (status NONE).
      const refusal = (p: RestorePlan) => pre?.refused.find((r) => r.instanceId === p.instanceId && r.component === p.definingComponent.fullPath);
      const toRestore: RestoreSet = { plans: set.plans.filter((p) => !refusal(p)) };
      if (!opts.dryRun) expect(toRestore);
      const done = await executor.restore(toRestore, b.source(), doc);
      results = set.plans.map((plan) => {
        const r = refusal(plan);
        if (!r) return done.shift()!;
        doc.getComponent(Guid.parse(plan.writerId), Guid.parse(plan.instanceId), plan.definingComponent.logicalPath, plan.definingComponent.componentName).setFileRestoreStatus(FileRestoreStatus.NONE);
        return { plan, status: FileRestoreStatus.NONE, placement: 'skipped' as const, filesRestored: 0, bytesRestored: 0, mappingsUsed: [], writes: [], error: r.error };
      });
      if (participation) post = await participation.postRestore(doc);
    } catch (e) {
      await participation?.abandon?.();
      throw e;
    }
    await executor.afterPostRestore(results);
    const writerFailures = [...(pre?.writerFailures ?? []), ...(post?.writerFailures ?? [])];
    steps.push({ backupId: b.manifest.id, backupType: b.manifest.backupType, results, ...(participation ? { writerFailures } : {}) });
  }

  // 2. The crash-consistent files, from the newest manifest.
  let files: ComponentRestoreResult | undefined;
  const loose = newest.manifest.files.filter((f) => f.consistency === 'crash');
  if ((opts.files ?? true) && loose.length) {
    let set: RestoreSet = { plans: [crashPlan(loose)] };
    if (opts.to) set = relocate(set, opts.to);
    if (!opts.dryRun) expect(set);
    [files] = await executor.restore(set, newest.source());
  }
  return { steps, ...(files ? { files } : {}), verifiedFiles: verified };
}

/** The crash-consistent files as one component-like set, restored all or nothing. */
function crashPlan(files: readonly ManifestFile[]): RestorePlan {
  const name = { logicalPath: '', componentName: 'files', fullPath: 'files' };
  const entries: BackupSetEntry[] = files.map((f) => {
    const dir = posix.dirname(f.path);
    const base = posix.basename(f.path);
    return {
      writerId: '',
      instanceId: '',
      definingComponent: name,
      component: name,
      fileSetKind: 'files',
      fileSet: { path: dir, filespec: base || '*', recursive: false, backupTypeMask: DEFAULT_FILESPEC_BACKUP_TYPE },
      root: dir,
      relativePath: base,
      path: f.path,
      source: f.path,
      kind: f.kind,
      size: f.size,
      mode: f.mode,
      mtimeMs: f.mtimeMs,
      snapshotRequired: false,
    };
  });
  return {
    writerId: '',
    instanceId: '',
    instanceName: '',
    writerName: 'crash-consistent files',
    definingComponent: name,
    subcomponents: [],
    // A requester-private restore of plain files: in place, replacing what is there.
    method: RestoreMethod.RESTORE_IF_CAN_REPLACE,
    service: '',
    writerRestore: WriterRestore.NEVER,
    rebootRequired: false,
    copyMode: 'replace',
    restoreTarget: RestoreTarget.ORIGINAL,
    restoreOptions: '',
    additionalRestores: false,
    authoritativeRestore: false,
    rollForward: { type: RollForwardType.UNDEFINED, point: '' },
    restoreName: '',
    fileSets: [],
    files: entries.map((entry) => ({ entry, destination: entry.path, via: 'original' as const })),
    errors: [],
  };
}

