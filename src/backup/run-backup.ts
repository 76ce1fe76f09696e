// The reference requester's backup (issue 7, spec §4.1): gather metadata, choose
// components, snapshot the volumes involved, copy the backup set from the snapshot into a
// backup directory, save the documents, report success per component, complete, release.
import { lstatSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BackupComponents, WriterStatus } from '../requester/index.js';
import type { SnapshotProperties } from '../vss/snapshot.js';
import type { BackupSelectionResult } from '../vss/selection/index.js';
import {
  BackupSelection,
  BackupType,
  backupTypeCodec,
  ComponentTree,
  computeBackupSet,
  effectiveBackupType,
  expandVariables,
  fileSetNeedsSnapshot,
  fileSetsOf,
  Guid,
  isFailedWriterState,
  normalizePath,
  parseBackupComponents,
  VssError,
  type WriterMetadata,
  writeWriterMetadata,
} from '../vss/index.js';
import type { ComponentNode } from '../vss/selection/component-tree.js';
import { BackupDir, BackupDirWriter, BCD_FILE, type BackupManifest, type ManifestComponent, type ManifestWriter } from './backup-dir.js';
import { startLauncher } from '../os/launcher.js';
import { CopyPool } from './copy-pool.js';
import { FsFileTree } from './fs-tree.js';

export interface ComponentChoice {
  /** Writer class id, or the writer's name. */
  writer: string;
  /** `LOGICAL\PATH\name` of a component; absent: every top-level component of the writer. */
  path?: string;
}

export interface BackupProgress {
  phase: 'metadata' | 'prepare' | 'snapshot' | 'copy' | 'complete';
  files: number;
  bytes: number;
  totalFiles?: number;
  totalBytes?: number;
}

export interface BackupOptions {
  to: string;
  /**
   * CPU niceness of the copy workers (0–19, default 10): the copying and hashing yield to
   * other threads of the same scheduling group when the CPU is contended. Under autogroup
   * scheduling that is the process's session, not an application in another one: to yield
   * to those, run the backup in a niced session of its own (docs/cli.md).
   */
  nice?: number;
  /** Back up every component whose files lie under these paths, and the other files under them crash-consistently. */
  paths?: string[];
  components?: ComponentChoice[];
  /** These writers must take part: a backup without them fails. */
  writerVerify?: string[];
  writerExclude?: string[];
  backupType?: BackupType;
  /** The backup this one builds on (incremental, differential). */
  previous?: string;
  /** A writer's failure marks its components failed instead of failing the backup. */
  bestEffort?: boolean;
  env?: Readonly<Record<string, string | undefined>>;
  onProgress?: (p: BackupProgress) => void;
  signal?: AbortSignal;
}

export interface BackupReport {
  dir: string;
  manifest: BackupManifest;
  snapshotSetId: string;
  components: ManifestComponent[];
  writerStatuses: WriterStatus[];
  warnings: string[];
}

function writerMatches(m: WriterMetadata, name: string): boolean {
  return m.identity.writerId.equals(name) || m.identity.writerName === name || (m.identity.instanceName !== '' && m.identity.instanceName === name);
}

function overlaps(a: string, b: string): boolean {
  const within = (x: string, root: string): boolean => x === root || x.startsWith(root === '/' ? '/' : `${root}/`);
  return within(a, b) || within(b, a);
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new VssError('VSS_E_BAD_STATE', 'the backup was interrupted; nothing was completed and the partial backup has no manifest');
}

/** What the first half of a backup leaves: components chosen, snapshots made, writers thawed. */
export interface PreparedSnapshot {
  chosen: BackupSelectionResult;
  snapshotSetId: Guid;
  snapshots: SnapshotProperties[];
  previous: BackupDir | undefined;
  warnings: string[];
}

export type SnapshotOptions = Omit<BackupOptions, 'to' | 'bestEffort'>;

/**
 * The first half of a backup (spec §4.1 steps 1–12): discovery, selection, the snapshot set
 * over every volume involved, PrepareForBackup and DoSnapshotSet.
 */
export async function snapshotForBackup(session: BackupComponents, opts: SnapshotOptions): Promise<PreparedSnapshot> {
  const env = opts.env ?? process.env;
  const backupType = opts.backupType ?? BackupType.FULL;
  const paths = (opts.paths ?? []).map((p) => normalizePath('the path', resolve(p)));
  const warnings: string[] = [];
  if (paths.length === 0 && (opts.components ?? []).length === 0) {
    throw new VssError('E_INVALIDARG', 'name what to back up: one or more paths, or components with --component');
  }
  const previous = opts.previous ? BackupDir.open(opts.previous) : undefined;
  if (backupType !== BackupType.FULL && backupType !== BackupType.COPY && !previous) {
    throw new VssError('E_INVALIDARG', `a ${backupTypeCodec.tokenOf(backupType)} backup builds on an earlier one: give it with --previous`);
  }
  const progress = (p: BackupProgress): void => opts.onProgress?.(p);

  // 1. Discovery.
  progress({ phase: 'metadata', files: 0, bytes: 0 });
  await session.initializeForBackup();
  await session.setBackupState(true, false, backupType, false);
  const excluded: string[] = [];
  await session.gatherWriterMetadata();
  const gathered = Array.from({ length: session.getWriterMetadataCount() }, (_, i) => session.getWriterMetadata(i));
  for (const x of opts.writerExclude ?? []) {
    const hit = gathered.filter((g) => writerMatches(g.metadata, x));
    if (hit.length === 0) warnings.push(`--writer-exclude ${x}: no such writer is running`);
    excluded.push(...hit.map((g) => g.metadata.identity.writerId.value));
  }
  if (excluded.length) await session.disableWriterClasses(excluded);
  const writers = gathered.filter((g) => !excluded.includes(g.metadata.identity.writerId.value));
  for (const v of opts.writerVerify ?? []) {
    if (!writers.some((g) => writerMatches(g.metadata, v))) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `writer ${v} must take part (--writer-verify) but is not running; start it and back up again`);
    }
  }

  // 2. Selection: named components, or every component set with files under the paths.
  const selection = new BackupSelection(writers.map((w) => w.metadata));
  for (const c of opts.components ?? []) {
    const w = writers.find((g) => writerMatches(g.metadata, c.writer));
    if (!w) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `no running writer is called or has the id "${c.writer}"; see shadowcopy writers`);
    const tree = new ComponentTree(w.metadata);
    const roots = c.path ? [tree.find(...splitPath(c.path)) ?? notFound(c)] : tree.nodes.filter((n) => n.kind === 'required' || n.kind === 'optional-top');
    for (const n of roots) if (!selection.isIncluded(refOf(w.metadata, n))) selection.addComponent(refOf(w.metadata, n));
  }
  if (paths.length) {
    for (const w of writers) {
      const tree = new ComponentTree(w.metadata);
      for (const root of tree.nodes.filter((n) => n.kind === 'required' || n.kind === 'optional-top')) {
        const touches = tree.componentSet(root).some((n) =>
          fileSetsOf(n).some(({ fileSet }) => {
            try {
              return paths.some((p) => overlaps(normalizePath('the path', expandVariables('the path', fileSet.path, env)), p));
            } catch {
              return false;
            }
          }),
        );
        if (touches && !selection.isIncluded(refOf(w.metadata, root))) selection.addComponent(refOf(w.metadata, root));
      }
    }
  }
  selection.addRequiredComponents();
  const chosen = selection.result();
  for (const u of chosen.unmetDependencies) warnings.push(u.message);
  // Incremental and differential backups hand each writer the stamp it set last time.
  const prevBcd = previous ? parseBackupComponents(previous.readDocument(BCD_FILE), join(previous.dir, BCD_FILE)) : undefined;
  for (const w of chosen.writers) {
    const id = w.metadata.identity;
    for (const c of w.components) {
      const comp = c.node.component;
      await session.addComponent(id.instanceId, id.writerId, comp.type, comp.logicalPath, comp.componentName);
      const stamp = prevBcd?.findWriter(id.writerId)?.findComponent(comp.logicalPath, comp.componentName)?.backupStamp;
      if (stamp) await session.setPreviousBackupStamp(id.writerId, comp.type, comp.logicalPath, comp.componentName, stamp);
    }
  }
  checkAbort(opts.signal);

  // 3. The snapshot set over every volume involved, then PrepareForBackup (spec §4.1 steps 9–11).
  progress({ phase: 'prepare', files: 0, bytes: 0 });
  const snapshotSetId = await session.startSnapshotSet();
  const volumePaths = new Map<number, string>(); // st_dev → one path on it: a volume is added once
  const candidates = [...paths];
  for (const w of chosen.writers) {
    const writerType = effectiveBackupType(backupType, w.metadata);
    for (const c of w.components) {
      for (const n of c.members) {
        for (const { fileSet } of fileSetsOf(n)) {
          // A set the writer lets us read live (no snapshot bit, spec §15) adds no volume.
          if (!fileSetNeedsSnapshot(fileSet, writerType)) continue;
          try {
            candidates.push(normalizePath('the path', expandVariables('the path', fileSet.path, env)));
            if (fileSet.alternateLocation) candidates.push(normalizePath('the path', expandVariables('the path', fileSet.alternateLocation, env)));
          } catch (e) {
            warnings.push((e as Error).message);
          }
        }
      }
    }
  }
  for (const p of candidates) {
    let real: string;
    try {
      real = realpathSync(p);
    } catch {
      continue; // missing: reported per component by the backup set
    }
    const dev = statSync(real).dev;
    if (!volumePaths.has(dev)) volumePaths.set(dev, real);
  }
  if (volumePaths.size === 0) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `none of ${candidates.join(', ')} exists; nothing to snapshot`);
  const snapshotIds: Guid[] = [];
  for (const p of volumePaths.values()) snapshotIds.push(await session.addToSnapshotSet(p));
  await session.prepareForBackup();
  checkAbort(opts.signal);
  progress({ phase: 'snapshot', files: 0, bytes: 0 });
  await session.doSnapshotSet();
  checkAbort(opts.signal);
  const snapshots = await Promise.all(snapshotIds.map((id) => session.getSnapshotProperties(id)));
  return { chosen, snapshotSetId, snapshots, previous, warnings };
}

/**
 * The last half (steps 14–15): success per component — failed when the writer failed or
 * `failures` names it — recorded with SetBackupSucceeded, then BackupComplete. Without
 * `bestEffort` any failure fails the whole backup.
 */
export async function completeBackup(session: BackupComponents, chosen: BackupSelectionResult, failures: ReadonlyMap<string, string>, bestEffort: boolean): Promise<{ components: ManifestComponent[]; statuses: WriterStatus[] }> {
  await session.gatherWriterStatus();
  const statuses = session.getWriterStatuses();
  const components: ManifestComponent[] = [];
  for (const w of chosen.writers) {
    const id = w.metadata.identity;
    const status = statuses.find((s) => s.instanceId.equals(id.instanceId));
    const writerFailed = status && (isFailedWriterState(status.state) || status.hrWriterFailure !== 0);
    for (const c of w.components) {
      const comp = c.node.component;
      const why = writerFailed ? `writer "${id.writerName}" failed: ${status!.applicationMessage || `state ${status!.state}`}` : failures.get(componentKey(id.writerId.value, c.node.fullPath));
      components.push({ writerId: id.writerId.value, instanceId: id.instanceId.value, component: c.node.fullPath, succeeded: !why, ...(why ? { error: why } : {}) });
      await session.setBackupSucceeded(id.instanceId, id.writerId, comp.type, comp.logicalPath, comp.componentName, !why);
    }
  }
  const failed = components.filter((c) => !c.succeeded);
  if (failed.length && !bestEffort) {
    // Writers still hear BackupComplete: the snapshot was made; only the backup failed.
    await session.backupComplete().then(undefined, () => undefined);
    throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `the backup is incomplete: ${failed.map((f) => `${f.component} (${f.error})`).join('; ')}; fix the cause, or pass --best-effort to keep what succeeded`);
  }
  await session.backupComplete();
  return { components, statuses };
}

/** How failures are keyed: writer class id and the component's full path. */
export function componentKey(writerId: string, component: string): string {
  return `${writerId}|${component}`;
}

/** Runs a whole backup on a fresh session. The session is not released here. */
export async function runBackup(session: BackupComponents, opts: BackupOptions): Promise<BackupReport> {
  // Started first, so the copy workers boot while writers freeze and the provider snapshots.
  const pool = new CopyPool(undefined, { nice: opts.nice ?? 10 });
  // The shell the final flush runs through (and, in process, the provider's tools), forked while this process is small.
  startLauncher();
  try {
    return await backUp(session, opts, pool);
  } finally {
    await pool.close();
  }
}

async function backUp(session: BackupComponents, opts: BackupOptions, pool: CopyPool): Promise<BackupReport> {
  const env = opts.env ?? process.env;
  const progress = (p: BackupProgress): void => opts.onProgress?.(p);
  const paths = (opts.paths ?? []).map((p) => normalizePath('the path', resolve(p)));
  const { chosen, snapshotSetId, snapshots: props, previous, warnings } = await snapshotForBackup(session, opts);
  const backupType = opts.backupType ?? BackupType.FULL;

  // 4. Copy from the snapshot.
  const mounts = props.map((p) => ({ volume: p.originalVolumeName, snapshotRoot: p.snapshotDeviceObject }));
  const tree = new FsFileTree(mounts);
  // Sets without a snapshot bit are read from the live system, after PostSnapshot (which
  // doSnapshotSet has finished): a writer may have produced them only then (spec §15).
  const backupSet = computeBackupSet(chosen, tree, { backupType, env, liveTree: new FsFileTree('/') });
  const out = BackupDirWriter.create(opts.to, mounts.map((m) => ({ volume: m.volume, root: m.snapshotRoot })), previous, pool);
  const failed = new Map<string, string>(); // componentKey → why
  for (const f of backupSet.failures) failed.set(componentKey(f.writerId, f.definingComponent.fullPath), f.error.message);
  // Progress counts copies that have finished, a few times a second, against the files
  // recorded so far. The total in bytes is known when only writers' files (stat'ed by the
  // backup set) are copied; the walk of the given paths learns files' sizes only as it copies
  // them, so then the total is in files, and grows until the walk ends.
  const totalBytes = paths.length ? undefined : backupSet.entries.reduce((n, e) => n + e.size, 0);
  const report = (): void => progress({ phase: 'copy', ...out.done, totalFiles: out.totals.files, ...(totalBytes !== undefined ? { totalBytes } : {}) });
  const ticker = setInterval(report, 250);
  try {
    for (const [i, e] of backupSet.entries.entries()) {
      if (i % 256 === 0) checkAbort(opts.signal);
      if (out.has(e.path)) continue; // listed by two file sets: stored once
      try {
        if (!e.snapshotRequired && out.readPath(e.path) === undefined) {
          // The backup directory files content by volume; a live-read set must lie on one of the set's.
          throw new VssError('VSS_E_OBJECT_NOT_FOUND', `${e.path} (read live) is on no volume of the snapshot set; the writer must keep such files on a volume it also backs up`);
        }
        out.add(e.path, 'application', e, e.snapshotRequired ? tree.resolve(e.source) : e.source, e.kind === 'file' ? 'file' : undefined);
      } catch (err) {
        if (VssError.is(err, 'VSS_E_INSUFFICIENT_STORAGE')) throw err;
        failed.set(componentKey(e.writerId, e.definingComponent.fullPath), (err as Error).message);
      }
    }
    // The writers' files are recorded (the loop above does not yield): the first report.
    report();
    // The other files under the given paths: crash-consistent, and marked so.
    for (const p of paths) {
      const real = out.readPath(p);
      if (real === undefined) continue;
      let seen = 0;
      for (const item of walk(real, p)) {
        if (item.names) out.addFiles(item.dir, item.realDir, item.names, 'crash');
        else if (!out.has(item.path)) out.add(item.path, 'crash', undefined, item.real, item.st);
        // Now and then let the pool's answers in, so its workers get the next batches while the walk goes on.
        if ((seen += item.names?.length ?? 1) >= 1024) {
          seen = 0;
          await new Promise(setImmediate);
          checkAbort(opts.signal);
        }
      }
    }
    for (const f of await out.flush()) {
      // A component's file fails its component; another file is a warning.
      if (f.entry) failed.set(componentKey(f.entry.writerId, f.entry.definingComponent.fullPath), f.error.message);
      else warnings.push(`${f.path} could not be backed up: ${f.error.message}`);
    }
    report();
  } finally {
    clearInterval(ticker);
  }

  // 5. The documents (after DoSnapshotSet: PostSnapshot may have changed the BCD), success
  // per component, BackupComplete; the manifest last.
  const manifestWriters: ManifestWriter[] = chosen.writers.map((w) => {
    const id = w.metadata.identity;
    const document = `writers/${id.writerId.value}${chosen.writers.filter((o) => o.metadata.identity.writerId.equals(id.writerId)).length > 1 ? `.${id.instanceId.value}` : ''}.xml`;
    out.saveDocument(document, writeWriterMetadata(w.metadata));
    return { writerId: id.writerId.value, instanceId: id.instanceId.value, instanceName: id.instanceName, writerName: id.writerName, document };
  });
  const { components, statuses } = await completeBackup(session, chosen, failed, Boolean(opts.bestEffort));
  for (const f of components.filter((c) => !c.succeeded)) warnings.push(`component ${f.component} failed: ${f.error}`);
  // Saved after SetBackupSucceeded, so the stored document says which components succeeded.
  out.saveDocument(BCD_FILE, await session.saveAsXml());
  progress({ phase: 'complete', files: out.totals.files, bytes: out.totals.bytes, totalFiles: out.totals.files, totalBytes: out.totals.bytes });
  const manifest = await out.finish({ backupType: backupTypeCodec.tokenOf(backupType) ?? 'full', snapshotSetId: snapshotSetId.value, writers: manifestWriters, components });
  return { dir: out.dir, manifest, snapshotSetId: snapshotSetId.value, components, writerStatuses: statuses, warnings };
}

function splitPath(path: string): [string, string] {
  const i = path.lastIndexOf('\\');
  return i < 0 ? ['', path] : [path.slice(0, i), path.slice(i + 1)];
}

function notFound(c: ComponentChoice): never {
  throw new VssError('VSS_E_OBJECT_NOT_FOUND', `writer ${c.writer} has no component "${c.path}"; see shadowcopy metadata`);
}

function refOf(m: WriterMetadata, n: ComponentNode): { writerId: Guid; instanceId: Guid; logicalPath: string; componentName: string } {
  return { writerId: m.identity.writerId, instanceId: m.identity.instanceId, logicalPath: n.component.logicalPath, componentName: n.component.componentName };
}

/** What the walk reports: one directory or symlink with its lstat, or a run of regular files of one directory. */
type WalkItem = { path: string; real: string; st: Stats; names?: undefined } | { dir: string; realDir: string; names: string[] };

/**
 * Pre-order walk of a snapshot directory, in name order. Directories and symlinks come with
 * their lstat; regular files come as runs of names (the files of one directory between two
 * of its subdirectories), as their directory entries say, so the copy stats each on the open
 * file instead of a lookup here. Stays on one filesystem; sockets, FIFOs and devices are left out.
 */
function* walk(realRoot: string, liveRoot: string): Generator<WalkItem> {
  const rootSt = lstatSync(realRoot);
  const dev = rootSt.dev;
  const child = (dir: string, name: string): string => (dir === '/' ? `/${name}` : `${dir}/${name}`);
  const stack: WalkItem[] = [{ path: liveRoot, real: realRoot, st: rootSt }];
  while (stack.length) {
    const item = stack.pop()!;
    if (item.names) {
      yield item;
      continue;
    }
    const { path: live, real, st } = item;
    if (!st.isDirectory() && !st.isFile() && !st.isSymbolicLink()) continue;
    yield item;
    if (st.isDirectory() && st.dev === dev) {
      // Names from readdir hold no '/': joined by hand, not normalised by path.join.
      const entries = readdirSync(real, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const next: WalkItem[] = [];
      let run: string[] = [];
      for (const d of entries) {
        if (d.isFile()) {
          run.push(d.name);
          continue;
        }
        if (!d.isDirectory() && !d.isSymbolicLink()) continue;
        if (run.length) next.push({ dir: live, realDir: real, names: run });
        run = [];
        const r = child(real, d.name);
        next.push({ path: child(live, d.name), real: r, st: lstatSync(r) });
      }
      if (run.length) next.push({ dir: live, realDir: real, names: run });
      for (let i = next.length - 1; i >= 0; i--) stack.push(next[i]!);
    }
  }
}
