// The backup set (spec §4.5, §15): every file to copy for a backup selection, computed
// against a snapshot's file tree. Each entry names its defining component (the explicit
// component whose set it belongs to), because that is the component VSS reports on.
import { BackupSchema, BackupType, backupTypeCodec, FileSpecBackupType } from '../enums.js';
import { VssError } from '../errors.js';
import type { FileDescriptor, FileSpec, WriterMetadata } from '../writer-metadata.js';
import type { ComponentNode } from './component-tree.js';
import type { BackupSelectionResult } from './backup-selection.js';
import {
  checkFilespec,
  expandVariables,
  type FileKind,
  type FileTree,
  filespecMatcher,
  hasWildcard,
  joinPath,
  normalizePath,
  parentOf,
} from './file-tree.js';

export type FileSetKind = 'files' | 'database' | 'log';

/** A component as the backup set and the restore set name it. */
export interface ComponentName {
  readonly logicalPath: string;
  readonly componentName: string;
  readonly fullPath: string;
}

export interface BackupSetEntry {
  /** Lowercase GUID strings, so a manifest can store entries as they are. */
  readonly writerId: string;
  readonly instanceId: string;
  readonly definingComponent: ComponentName;
  /** The component whose file set lists the file (the defining one or an implicit member). */
  readonly component: ComponentName;
  readonly fileSetKind: FileSetKind;
  /** The file set exactly as the writer declared it (unexpanded): what mappings and new targets match. */
  readonly fileSet: FileDescriptor;
  /** The file set's default path, expanded and normalized. */
  readonly root: string;
  /** Path below `root` ('' for the root directory itself). */
  readonly relativePath: string;
  /** Default path: where the file lives and where it is restored to by default. */
  readonly path: string;
  /**
   * Where to read it: under the alternate location when the set has one; in the snapshot,
   * or on the live system when `snapshotRequired` is false and a live tree was given.
   */
  readonly source: string;
  /** `dir` only for empty directories of recursive sets, which a restore recreates. */
  readonly kind: FileKind;
  readonly size: number;
  readonly mode: number;
  readonly mtimeMs: number;
  /** The file set's mask says this backup type must read it from a snapshot. */
  readonly snapshotRequired: boolean;
}

export interface BackupSetFailure {
  readonly writerId: string;
  readonly instanceId: string;
  readonly definingComponent: ComponentName;
  readonly component: ComponentName;
  readonly error: VssError;
}

export interface SkippedFileSet {
  readonly writerId: string;
  readonly definingComponent: ComponentName;
  readonly component: ComponentName;
  readonly fileSet: FileDescriptor;
  readonly reason: string;
}

export interface BackupSetWriter {
  readonly writerId: string;
  readonly instanceId: string;
  /** The backup type this writer is backed up with: the requested one, or FULL when its schema lacks it. */
  readonly backupType: BackupType;
}

export interface BackupSet {
  readonly entries: readonly BackupSetEntry[];
  /** Per-component errors: the defining component fails, the rest of the backup goes on. */
  readonly failures: readonly BackupSetFailure[];
  readonly skipped: readonly SkippedFileSet[];
  readonly writers: readonly BackupSetWriter[];
  /** Any entry needs a snapshot; when false DoSnapshotSet may be skipped (spec §4.1 step 12). */
  readonly snapshotRequired: boolean;
}

export interface BackupSetOptions {
  /** Default FULL. */
  backupType?: BackupType;
  /** For `$VAR` / `${VAR}` in paths; nothing is read from process.env here. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Requester-wide exclusions (like FilesNotToBackup), applied to every writer's files. */
  excludes?: readonly FileSpec[];
  /**
   * The live file system. File sets whose mask has no *_SNAPSHOT_REQUIRED bit for the backup
   * type are enumerated here instead of in the snapshot (spec §15): they may be copied from
   * the live system, and some exist only there (files a writer produced after the snapshot,
   * such as PostgreSQL's WAL through pg_backup_stop). Without it every set is read from `tree`.
   */
  liveTree?: FileTree;
}


// VSS_FSBT_*_BACKUP_REQUIRED bit of each backup type; COPY and OTHER copy like FULL
// (COPY is "a full backup that updates no history", spec §15). The snapshot bit is << 8.
const BACKUP_BIT: Record<BackupType, number> = {
  [BackupType.UNDEFINED]: 0,
  [BackupType.FULL]: FileSpecBackupType.FULL_BACKUP_REQUIRED,
  [BackupType.DIFFERENTIAL]: FileSpecBackupType.DIFFERENTIAL_BACKUP_REQUIRED,
  [BackupType.INCREMENTAL]: FileSpecBackupType.INCREMENTAL_BACKUP_REQUIRED,
  [BackupType.LOG]: FileSpecBackupType.LOG_BACKUP_REQUIRED,
  [BackupType.COPY]: FileSpecBackupType.FULL_BACKUP_REQUIRED,
  [BackupType.OTHER]: FileSpecBackupType.FULL_BACKUP_REQUIRED,
};

/** Whether a file set must be read from a snapshot in a backup of this type (spec §15). */
export function fileSetNeedsSnapshot(fileSet: FileDescriptor, backupType: BackupType): boolean {
  return (fileSet.backupTypeMask & (BACKUP_BIT[backupType] << 8)) !== 0;
}

const SCHEMA_FOR: Partial<Record<BackupType, number>> = {
  [BackupType.DIFFERENTIAL]: BackupSchema.DIFFERENTIAL,
  [BackupType.INCREMENTAL]: BackupSchema.INCREMENTAL,
  [BackupType.LOG]: BackupSchema.LOG,
  [BackupType.COPY]: BackupSchema.COPY,
};

/** A writer lacking the schema bit for the requested type is backed up in full (spec §2.5, §15). */
export function effectiveBackupType(requested: BackupType, metadata: WriterMetadata): BackupType {
  const needed = SCHEMA_FOR[requested];
  return needed === undefined || metadata.backupSchema & needed ? requested : BackupType.FULL;
}

interface ExcludeRule {
  match: (name: string) => boolean;
  recursive: boolean;
}

/** Exclusions indexed by directory, so checking a file costs its depth, not the list's length. */
class ExcludeIndex {
  private readonly byDir = new Map<string, ExcludeRule[]>();
  private readonly cache = new Map<string, ExcludeRule[]>();
  readonly problems: VssError[] = [];

  constructor(specs: readonly FileSpec[], env: Readonly<Record<string, string | undefined>>) {
    for (const s of specs) {
      try {
        const dir = normalizePath('the exclude path', expandVariables('the exclude path', s.path, env));
        const rule = { match: filespecMatcher(checkFilespec('the exclude file spec', s.filespec)), recursive: s.recursive };
        const list = this.byDir.get(dir);
        if (list) list.push(rule);
        else this.byDir.set(dir, [rule]);
      } catch (e) {
        // An exclusion we cannot read must not let its files through silently.
        this.problems.push(e as VssError);
      }
    }
  }

  /** The rules that apply to names in `dir`: its own, and recursive ones of its ancestors. */
  private rulesFor(dir: string): ExcludeRule[] {
    let rules = this.cache.get(dir);
    if (rules) return rules;
    rules = [...(this.byDir.get(dir) ?? [])];
    if (dir !== '/') rules.push(...this.inherited(parentOf(dir)));
    this.cache.set(dir, rules);
    return rules;
  }

  private readonly inheritedCache = new Map<string, ExcludeRule[]>();
  private inherited(dir: string): ExcludeRule[] {
    let rules = this.inheritedCache.get(dir);
    if (rules) return rules;
    rules = (this.byDir.get(dir) ?? []).filter((r) => r.recursive);
    if (dir !== '/') rules = [...rules, ...this.inherited(parentOf(dir))];
    this.inheritedCache.set(dir, rules);
    return rules;
  }

  excludes(path: string): boolean {
    if (this.byDir.size === 0) return false;
    const name = path.slice(path.lastIndexOf('/') + 1);
    return this.rulesFor(parentOf(path)).some((r) => r.match(name));
  }
}

function nameOf(n: ComponentNode): ComponentName {
  return { logicalPath: n.component.logicalPath, componentName: n.component.componentName, fullPath: n.fullPath };
}

export function fileSetsOf(node: ComponentNode): { kind: FileSetKind; fileSet: FileDescriptor }[] {
  const c = node.component;
  return [
    ...c.files.map((fileSet) => ({ kind: 'files' as const, fileSet })),
    ...c.databaseFiles.map((fileSet) => ({ kind: 'database' as const, fileSet })),
    ...c.logFiles.map((fileSet) => ({ kind: 'log' as const, fileSet })),
  ];
}

/**
 * Every file to copy for `selection`, read from `tree`. Exclusions (the writer's exclude
 * list and exclude-from-snapshot list, plus `options.excludes`) are matched against default
 * paths and always win. A listed file that is missing fails its defining component only.
 */
export function computeBackupSet(selection: BackupSelectionResult, tree: FileTree, options: BackupSetOptions = {}): BackupSet {
  const requested = options.backupType ?? BackupType.FULL;
  if (!backupTypeCodec.has(requested) || requested === BackupType.UNDEFINED) {
    throw new VssError('E_INVALIDARG', `backup type ${requested} is not a defined VSS_BACKUP_TYPE value`);
  }
  const env = options.env ?? {};
  const entries: BackupSetEntry[] = [];
  const failures: BackupSetFailure[] = [];
  const skipped: SkippedFileSet[] = [];
  const writers: BackupSetWriter[] = [];

  for (const w of selection.writers) {
    const writerId = w.metadata.identity.writerId.value;
    const instanceId = w.metadata.identity.instanceId.value;
    const backupType = effectiveBackupType(requested, w.metadata);
    writers.push({ writerId, instanceId, backupType });
    const bit = BACKUP_BIT[backupType];
    const excludes = new ExcludeIndex([...w.metadata.excludeFiles, ...w.metadata.excludeFilesFromSnapshot, ...(options.excludes ?? [])], env);

    for (const sel of w.components) {
      const defining = nameOf(sel.node);
      const fail = (component: ComponentNode, error: unknown): void => {
        const err = VssError.is(error) ? error : new VssError('E_UNEXPECTED', (error as Error)?.message ?? String(error), { cause: error });
        failures.push({ writerId, instanceId, definingComponent: defining, component: nameOf(component), error: err });
      };
      // An unreadable exclusion fails every component of its writer: copying files the writer excluded is worse than stopping.
      for (const p of excludes.problems) fail(sel.node, p);

      for (const member of sel.members) {
        const component = nameOf(member);
        for (const { kind, fileSet } of fileSetsOf(member)) {
          if (!(fileSet.backupTypeMask & bit)) {
            skipped.push({ writerId, definingComponent: defining, component, fileSet, reason: `mask 0x${fileSet.backupTypeMask.toString(16)} does not require it for a ${backupTypeCodec.nameOf(backupType)} backup` });
            continue;
          }
          const snapshotRequired = fileSetNeedsSnapshot(fileSet, backupType);
          try {
            expandFileSet(!snapshotRequired && options.liveTree ? options.liveTree : tree, fileSet, env, excludes, (rel, root, sourceRoot, e) =>
              entries.push({
                writerId,
                instanceId,
                definingComponent: defining,
                component,
                fileSetKind: kind,
                fileSet,
                root,
                relativePath: rel,
                path: joinPath(root, rel),
                source: joinPath(sourceRoot, rel),
                kind: e.kind,
                size: e.size,
                mode: e.mode,
                mtimeMs: e.mtimeMs,
                snapshotRequired,
              }),
            );
          } catch (e) {
            fail(member, e);
          }
        }
      }
    }
  }
  return { entries, failures, skipped, writers, snapshotRequired: entries.some((e) => e.snapshotRequired) };
}

type Emit = (rel: string, root: string, sourceRoot: string, e: { kind: FileKind; size: number; mode: number; mtimeMs: number }) => void;

function expandFileSet(tree: FileTree, fs: FileDescriptor, env: Readonly<Record<string, string | undefined>>, excludes: ExcludeIndex, emit: Emit): void {
  const root = normalizePath('the file set path', expandVariables('the file set path', fs.path, env));
  // Read from the alternate path (backup-time source), but name and exclude by the default path.
  const sourceRoot = fs.alternateLocation ? normalizePath('the alternate path', expandVariables('the alternate path', fs.alternateLocation, env)) : root;
  const match = filespecMatcher(checkFilespec('the file spec', fs.filespec));
  let matched = 0;
  // Collected first, emitted after: a failing file set adds nothing partial to the backup set.
  const found: Parameters<Emit>[] = [];
  type Stat = { kind: FileKind; size: number; mode: number; mtimeMs: number };
  const stack: [string, Stat][] = [['', { kind: 'dir', size: 0, mode: 0o755, mtimeMs: 0 }]];
  while (stack.length) {
    const [rel, dirStat] = stack.pop()!;
    const list = tree.list(joinPath(sourceRoot, rel));
    if (list === undefined) continue; // no directory: matches nothing (a literal spec is reported below)
    const sorted = [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const subdirs: [string, Stat][] = [];
    for (const e of sorted) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (e.kind === 'dir') {
        if (fs.recursive) subdirs.push([childRel, e]);
        continue;
      }
      if (!match(e.name)) continue;
      matched++;
      if (excludes.excludes(joinPath(root, childRel))) continue;
      found.push([childRel, root, sourceRoot, e]);
    }
    // Recursive sets recreate empty directories (spec §4.5).
    if (fs.recursive && list.length === 0 && !excludes.excludes(joinPath(root, rel))) {
      found.push([rel, root, sourceRoot, { ...dirStat, kind: 'dir', size: 0 }]);
    }
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
  }
  if (matched === 0 && !hasWildcard(fs.filespec)) {
    throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the file "${joinPath(sourceRoot, fs.filespec)}" listed by the component does not exist in the snapshot; the component cannot be backed up consistently`);
  }
  for (const f of found) emit(...f);
}
