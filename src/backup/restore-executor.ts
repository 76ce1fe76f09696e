// The restore executor: puts the files of a restore set back (spec §14), one component
// set at a time and all-or-nothing. Shared by the CLI and the requester SDK.
//
// No data lost: a journal naming each (destination, new file, kept old file) is made
// durable first; every file is then written beside its destination (a directory that did
// not exist is built whole under a hidden name beside its place) and flushed to disk; only
// then are the old files renamed aside and the new ones, and new directories, renamed in.
// With a copy pool the files are written on its workers. If anything fails the component is
// rolled back to exactly what was there; the old files are deleted only once the whole
// component is in place. A restore killed half-way is rolled back by `recoverRestores`,
// which the daemon and every restore run first. A restore never writes outside its
// allowed roots and never follows a symlink on the way to a destination: the stored
// documents it follows are untrusted input.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  copyFileSync,
  fsyncSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  chmodSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';
import type { BackupComponentsDocument } from '../vss/backup-components.js';
import { FileRestoreStatus, RestoreMethod } from '../vss/enums.js';
import { VssError } from '../vss/errors.js';
import { Guid } from '../vss/guid.js';
import { type ByteRange, decodeRangesFile, parseRangeList } from '../vss/ranges.js';
import { sameFileSet, type BackupSetEntry, type RestoreFile, type RestorePlan, type RestoreSet } from '../vss/selection/index.js';
import type { AlternateLocationMapping } from '../vss/writer-metadata.js';
import { exists, fsyncPath, isPlainAbsolute, isWithin, syncFileSystems, writeDurably } from './durable.js';
import type { CopyJob, CopyPool } from './copy-pool.js';
import type { ServiceManager } from './service-manager.js';

/** Where a backup keeps the content of each backed-up file. */
export interface RestoreSource {
  /** A local path holding the entry's content: the file's bytes, or the symlink itself. */
  contentPath(entry: BackupSetEntry): string;
  /** Owner and access time recorded at backup, when known (mode and mtime come from the entry). */
  attributes?(entry: BackupSetEntry): { uid?: number; gid?: number; atimeMs?: number } | undefined;
  /** A symlink's target as recorded at backup; by default read from `contentPath`. */
  linkTarget?(entry: BackupSetEntry): string | undefined;
}

export interface RestoreExecutorOptions {
  /** The state directory: restore journals and files staged for a reboot live here. */
  stateDir: string;
  /** Stops and starts services for STOP_RESTORE_START / RESTORE_STOP_START. */
  serviceManager?: ServiceManager;
  /**
   * Directories a restore may write under. Default: each file's own destination root (its
   * file set's path, mapping destination or new target), so a crafted relative path cannot
   * climb out of it.
   */
  allowedRoots?: readonly string[];
  /** Work out what would happen without touching the disk. */
  dryRun?: boolean;
  /** Stage whole files on these workers (every core) instead of this thread. The caller closes it. */
  pool?: CopyPool;
  /** Called as each regular file is staged, with its size: for progress. */
  onFileStaged?: (bytes: number) => void;
}

export type Placement = 'original' | 'alternate-mapping' | 'new-target' | 'directed' | 'staged-for-reboot' | 'skipped';

export interface PlannedWrite {
  readonly destination: string;
  readonly via: RestoreFile['via'] | 'fallback-mapping';
  readonly entry: BackupSetEntry;
}

export interface ComponentRestoreResult {
  readonly plan: RestorePlan;
  readonly status: FileRestoreStatus;
  readonly placement: Placement;
  readonly filesRestored: number;
  readonly bytesRestored: number;
  /** Alternate location mappings actually used, to record with AddAlternativeLocationMapping. */
  readonly mappingsUsed: readonly AlternateLocationMapping[];
  /** What went (or, with dryRun, would go) where. */
  readonly writes: readonly PlannedWrite[];
  readonly skippedReason?: string;
  readonly error?: VssError;
}

interface JournalEntry {
  destination: string;
  /** The new content, written beside the destination. */
  staged: string;
  /**
   * Where the old destination is kept until the component is done. Named up front, so the
   * journal is written once: a kept file that exists is an old one to put back.
   */
  kept?: string;
}

/**
 * A directory that did not exist: it is built whole under a hidden name beside its place,
 * its files with their own names, and renamed into place at the swap. One rename and no
 * journal entry per file: nothing was there for any of them to replace.
 */
interface StagedTree {
  destination: string;
  staged: string;
}

interface Journal {
  component: string;
  state: 'staging' | 'swapping' | 'committed';
  /** Files going into directories that exist. */
  entries: JournalEntry[];
  /** New directories (absent in journals of earlier versions). */
  trees?: StagedTree[];
  /** Directories made in place, deepest last (journals of earlier versions; now always empty). */
  createdDirs: string[];
}

const JOURNAL_DIR = 'restore-journal';
const REBOOT_DIR = 'reboot-restores';




function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

function errno(e: unknown): string {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as NodeJS.ErrnoException).code) : '';
}

function asVss(e: unknown, what: string): VssError {
  if (VssError.is(e)) return e;
  const code = errno(e);
  if (code === 'ENOSPC') return new VssError('VSS_E_INSUFFICIENT_STORAGE', `${what}: no space left on the device; free space and restore again`, { cause: e });
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ETXTBSY') {
    return new VssError('E_ACCESSDENIED', `${what}: ${(e as Error).message}`, { cause: e });
  }
  return new VssError('VSS_E_UNEXPECTED', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}


/**
 * A destination must be absolute, normalised (no `.`/`..`), under an allowed root, and reached
 * through real directories only: a symlink on the way could lead anywhere.
 */
function checkDestination(destination: string, roots: readonly string[], checked: Set<string> = new Set()): void {
  if (!isPlainAbsolute(destination)) {
    throw new VssError('E_ACCESSDENIED', `the restore destination "${destination}" is not a plain absolute path; the stored documents may have been tampered with`);
  }
  let root: string | undefined; // the longest allowed root holding it
  for (const r of roots) if (isWithin(destination, r) && (root === undefined || r.length > root.length)) root = r;
  if (root === undefined) {
    throw new VssError('E_ACCESSDENIED', `the restore destination "${destination}" is outside the allowed roots (${roots.join(', ')}); restore to one of them or allow its directory`);
  }
  // Every existing directory from the destination's parent up to the root must be a real
  // directory. One checked for an earlier file was checked with everything above it.
  for (let dir = dirname(destination); isWithin(dir, root) && dir !== '/' && !checked.has(dir); dir = dirname(dir)) {
    checked.add(dir);
    let st;
    try {
      st = lstatSync(dir, { throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink()) throw new VssError('E_ACCESSDENIED', `the restore would write through the symlink "${dir}" on the way to "${destination}"; refusing to follow it`);
    if (st && !st.isDirectory()) throw new VssError('E_ACCESSDENIED', `"${dir}" is in the way of "${destination}": it is not a directory`);
    // Missing: it will be created.
    if (dir === root) break;
  }
}

/** Whether an existing file may be replaced in place (spec §14.1 pre-check: open it for writing). */
function canReplace(path: string): boolean {
  let st;
  try {
    // No exception for the common "nothing there": building one costs more than the lstat.
    st = lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return true; // nothing reachable there
  }
  if (st === undefined) return true; // nothing there
  if (st.isDirectory()) return false;
  if (st.isSymbolicLink()) return true; // replacing the link itself
  try {
    closeSync(openSync(path, constants.O_WRONLY));
    return true;
  } catch {
    return false;
  }
}

/**
 * A directory entry needs its directory (or nothing) there; a file needs a replaceable file
 * (or nothing). Where the parent is missing (`parentExists`), nothing is there to look at.
 */
function replaceable(w: PlannedWrite, parentExists: (dir: string) => boolean): boolean {
  if (!parentExists(dirname(w.destination))) return true;
  return w.entry.kind === 'dir' ? !exists(w.destination) || isDirectory(w.destination) : canReplace(w.destination);
}

function rangesOf(text: string | undefined, what: string): ByteRange[] {
  const list = parseRangeList(text ?? '');
  if (list.kind === 'inline') return list.ranges;
  try {
    return decodeRangesFile(readFileSync(list.path));
  } catch (e) {
    throw VssError.is(e) ? e : new VssError('VSS_E_OBJECT_NOT_FOUND', `cannot read the ${what} ranges file ${list.path}: ${(e as Error).message}; restore it first or fix its path with setRangesFilePath`);
  }
}

/** Copies source ranges of `from` onto destination ranges of the open file `toFd`. */
function copyRanges(from: string, toFd: number, src: ByteRange[], dst: ByteRange[]): number {
  if (src.length !== dst.length || src.some((r, i) => r.length !== dst[i]!.length)) {
    throw new VssError('E_INVALIDARG', 'a directed target\'s source and destination ranges must pair up one to one with equal lengths');
  }
  const fd = openSync(from, 'r');
  let total = 0;
  try {
    const buf = Buffer.alloc(1 << 20);
    src.forEach((r, i) => {
      let done = 0n;
      while (done < r.length) {
        const want = Number(r.length - done < BigInt(buf.length) ? r.length - done : BigInt(buf.length));
        const n = readSync(fd, buf, 0, want, Number(r.offset + done));
        if (n === 0) throw new VssError('E_INVALIDARG', `the source range ${r.offset}:${r.length} reaches past the end of the backed-up file`);
        writeSync(toFd, buf, 0, n, Number(dst[i]!.offset + done));
        done += BigInt(n);
        total += n;
      }
    });
  } finally {
    closeSync(fd);
  }
  return total;
}

export class RestoreExecutor {
  readonly stateDir: string;
  private readonly serviceManager: ServiceManager | undefined;
  private readonly allowedRoots: readonly string[] | undefined;
  private readonly dryRun: boolean;
  private readonly pool: CopyPool | undefined;

  private readonly onFileStaged: ((bytes: number) => void) | undefined;

  constructor(options: RestoreExecutorOptions) {
    this.pool = options.pool;
    this.onFileStaged = options.onFileStaged;
    this.stateDir = options.stateDir;
    this.serviceManager = options.serviceManager;
    this.allowedRoots = options.allowedRoots?.map((r) => posix.normalize(r));
    this.dryRun = options.dryRun ?? false;
  }

  /**
   * Restores every plan of the set, records each component's file restore status and the
   * mappings used in `bcd` (when given), and returns what happened per component.
   * Runs `recoverRestores` first so an earlier interrupted restore cannot mix with this one.
   */
  async restore(set: RestoreSet, source: RestoreSource, bcd?: BackupComponentsDocument): Promise<ComponentRestoreResult[]> {
    if (!this.dryRun) recoverRestores(this.stateDir);
    const results: ComponentRestoreResult[] = [];
    for (const plan of set.plans) {
      const r = await this.restoreComponent(plan, source);
      results.push(r);
      if (bcd && !this.dryRun) {
        const c = bcd.getComponent(Guid.parse(plan.writerId), Guid.parse(plan.instanceId), plan.definingComponent.logicalPath, plan.definingComponent.componentName);
        c.setFileRestoreStatus(r.status);
        for (const m of r.mappingsUsed) c.addAlternativeLocationMapping(m.path, m.filespec, m.recursive, m.destination);
      }
    }
    return results;
  }

  /** After PostRestore: services of RESTORE_STOP_START restores are stopped and started again. */
  async afterPostRestore(results: readonly ComponentRestoreResult[]): Promise<void> {
    const services = new Set(results.filter((r) => r.plan.method === RestoreMethod.RESTORE_STOP_START && r.status === FileRestoreStatus.ALL).map((r) => r.plan.service));
    for (const s of services) {
      const sm = this.requireServiceManager(s);
      await sm.stop(s);
      await sm.start(s);
    }
  }

  private requireServiceManager(service: string): ServiceManager {
    if (!this.serviceManager) throw new VssError('VSS_E_NOT_SUPPORTED', `the writer's restore method needs service "${service}" stopped and started, and no service manager was given`);
    return this.serviceManager;
  }

  /** Restores one component set, all or nothing. */
  async restoreComponent(plan: RestorePlan, source: RestoreSource): Promise<ComponentRestoreResult> {
    const base = { plan, filesRestored: 0, bytesRestored: 0, mappingsUsed: [] as AlternateLocationMapping[] };
    const fail = (error: VssError, writes: PlannedWrite[] = []): ComponentRestoreResult => ({ ...base, status: FileRestoreStatus.NONE, placement: 'skipped', writes, error });
    if (plan.errors.length > 0) return fail(plan.errors[0]!);
    if (plan.copyMode === 'custom') return { ...base, status: FileRestoreStatus.NONE, placement: 'skipped', writes: [], skippedReason: 'the writer restores this component itself (VSS_RME_CUSTOM)' };
    if (plan.copyMode === 'none') return fail(new VssError('E_INVALIDARG', `writer "${plan.writerName}" gave no restore method; nothing restored`));

    let writes: PlannedWrite[] = plan.files.map((f) => ({ destination: f.destination, via: f.via, entry: f.entry }));
    let placement: Placement = plan.files[0]?.via ?? 'original';
    // The writer's mappings of the sets whose files go to an alternate location (spec §14.3):
    // matched by value, since entries read back from a manifest are other objects than the WMD's.
    const mappingsOf = (files: readonly RestoreFile[]): AlternateLocationMapping[] =>
      plan.fileSets.filter((s) => s.mapping && files.some((f) => sameFileSet(f.entry.fileSet, s.fileSet))).map((s) => s.mapping!);
    let mappingsUsed: AlternateLocationMapping[] = mappingsOf(plan.files.filter((f) => f.via === 'alternate-mapping'));
    const useFallback = (): boolean => {
      if (!plan.files.every((f) => f.fallback !== undefined)) return false;
      writes = plan.files.map((f) => ({ destination: f.fallback!, via: 'fallback-mapping', entry: f.entry }));
      placement = 'alternate-mapping';
      mappingsUsed = mappingsOf(plan.files);
      return true;
    };
    try {
      for (const f of plan.files) checkRelativePath(f.entry);
      const roots = this.allowedRoots ?? [...new Set(plan.files.flatMap((f) => [rootOf(f.destination, f), ...(f.fallback ? [rootOf(f.fallback, f)] : [])]))];
      const checked = new Set<string>(); // directories already found real (or missing) for an earlier file
      for (const w of writes) checkDestination(w.destination, roots, checked);

      // Where the parent does not exist, nothing can be in the way: one lstat per directory, not per file.
      const dirExists = new Map<string, boolean>();
      const parentExists = (d: string): boolean => {
        let v = dirExists.get(d);
        if (v === undefined) dirExists.set(d, (v = exists(d)));
        return v;
      };
      const occupied = (w: PlannedWrite): boolean => w.entry.kind !== 'dir' && parentExists(dirname(w.destination)) && exists(w.destination);
      const replaceableHere = (w: PlannedWrite): boolean => replaceable(w, parentExists);
      let stage = false;
      switch (plan.copyMode) {
        case 'if-none-there':
          if (writes.some(occupied)) {
            if (!useFallback() || writes.some(occupied)) {
              return { ...base, status: FileRestoreStatus.NONE, placement: 'skipped', writes, skippedReason: 'files of the component already exist and no free alternate location is declared (VSS_RME_RESTORE_IF_NOT_THERE)' };
            }
          }
          break;
        case 'if-can-replace':
          if (!writes.every(replaceableHere)) {
            if (!useFallback() || !writes.every(replaceableHere)) {
              const bad = writes.find((w) => !replaceableHere(w))!;
              return fail(new VssError('E_ACCESSDENIED', `"${bad.destination}" cannot be replaced and writer "${plan.writerName}" declares no alternate location for it (VSS_RME_RESTORE_IF_CAN_REPLACE)`), writes);
            }
          }
          break;
        case 'at-reboot':
          stage = true;
          break;
        case 'at-reboot-if-cannot-replace':
          stage = !writes.every(replaceableHere);
          break;
        case 'replace':
          break;
      }
      const blocked = writes.find((w) => w.entry.kind !== 'dir' && parentExists(dirname(w.destination)) && isDirectory(w.destination));
      if (blocked) throw new VssError('E_ACCESSDENIED', `a directory is in the way of "${blocked.destination}"; a restore does not replace a directory with a file`);
      if (this.dryRun) return { ...base, status: FileRestoreStatus.ALL, placement: stage ? 'staged-for-reboot' : placement, writes, mappingsUsed };
      if (stage) {
        const n = this.stageForReboot(plan, writes, source);
        return { ...base, status: FileRestoreStatus.ALL, placement: 'staged-for-reboot', writes, filesRestored: n.files, bytesRestored: n.bytes, mappingsUsed };
      }

      const stopStart = plan.method === RestoreMethod.STOP_RESTORE_START;
      if (stopStart) await this.requireServiceManager(plan.service).stop(plan.service);
      let done: { files: number; bytes: number };
      try {
        done = this.pool
          ? await applyComponentOnPool(this.stateDir, plan.definingComponent.fullPath, writes, plan.files, source, this.pool, this.onFileStaged)
          : await applyComponent(this.stateDir, plan.definingComponent.fullPath, writes, plan.files, source, this.onFileStaged);
      } finally {
        // The service comes back whether or not its files did: it must not stay down.
        if (stopStart) await this.requireServiceManager(plan.service).start(plan.service);
      }
      return { ...base, status: FileRestoreStatus.ALL, placement, writes, filesRestored: done.files, bytesRestored: done.bytes, mappingsUsed };
    } catch (e) {
      return fail(asVss(e, `restoring "${plan.definingComponent.fullPath}" of writer "${plan.writerName}"`), writes);
    }
  }

  /** RESTORE_AT_REBOOT: the files wait in the state directory for `applyRebootRestores`. */
  private stageForReboot(plan: RestorePlan, writes: PlannedWrite[], source: RestoreSource): { files: number; bytes: number } {
    const dir = join(this.stateDir, REBOOT_DIR, `${Date.now()}-${randomBytes(4).toString('hex')}`);
    mkdirSync(join(dir, 'files'), { recursive: true, mode: 0o700 });
    let bytes = 0;
    const items = writes.map((w, i) => {
      const staged = join(dir, 'files', String(i));
      if (w.entry.kind === 'file') {
        copyFileSync(source.contentPath(w.entry), staged);
        fsyncPath(staged);
        bytes += w.entry.size;
      }
      return { destination: w.destination, staged, kind: w.entry.kind, mode: w.entry.mode, mtimeMs: w.entry.mtimeMs, ...(source.attributes?.(w.entry) ?? {}) };
    });
    writeDurably(join(dir, 'pending.json'), JSON.stringify({ component: plan.definingComponent.fullPath, writer: plan.writerName, items }));
    return { files: items.length, bytes };
  }
}

/** A path below a file set comes from the stored documents: it must not climb out of its root. */
function checkRelativePath(entry: BackupSetEntry): void {
  const rel = entry.relativePath;
  if (rel === '') return;
  if (rel.startsWith('/') || rel.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) {
    throw new VssError('E_ACCESSDENIED', `the stored path "${rel}" below ${entry.root} is not a plain relative path; the backup may have been tampered with`);
  }
}

/** The directory a destination was derived from: the destination minus the entry's path below its file set. */
function rootOf(destination: string, f: RestoreFile): string {
  const rel = f.entry.relativePath;
  if (f.via === 'directed' || rel === '' || !destination.endsWith(`/${rel}`)) return dirname(destination);
  return destination.slice(0, destination.length - rel.length - 1) || '/';
}

/** One component's restore under way: its journal and where each new file is staged. */
interface Apply {
  journalPath: string;
  journal: Journal;
  writes: PlannedWrite[];
  fileWrites: { w: PlannedWrite; staged: string }[];
  /** Directories to make while staging, each after its parent: within staged trees. */
  dirsToMake: string[];
  byEntry: Map<BackupSetEntry, RestoreFile>;
  bytes: number;
}

/**
 * Journals, stages and swaps one component's files; rolls back on any failure. The journal
 * is written before anything else, so a crash at any point leaves nothing recovery cannot
 * undo: while `staging`, only our own new files and directories exist; while `swapping`,
 * kept files return; once `committed`, only the kept files remain to delete.
 */
async function applyComponent(stateDir: string, component: string, writes: PlannedWrite[], files: readonly RestoreFile[], source: RestoreSource, onFileStaged?: (bytes: number) => void): Promise<{ files: number; bytes: number }> {
  const a = beginApply(stateDir, component, writes, files);
  try {
    for (const d of a.dirsToMake) mkdirSync(d);
    for (const f of a.fileWrites) {
      stageOne(a, f, source);
      if (f.w.entry.kind === 'file') onFileStaged?.(f.w.entry.size);
    }
    return await commitApply(a, source);
  } catch (e) {
    abandonApply(a);
    throw e;
  }
}

/** The same, with whole-file copies staged on the pool's workers (content, owner, mode and times), the files of a directory in one job. */
async function applyComponentOnPool(stateDir: string, component: string, writes: PlannedWrite[], files: readonly RestoreFile[], source: RestoreSource, pool: CopyPool, onFileStaged?: (bytes: number) => void): Promise<{ files: number; bytes: number }> {
  const a = beginApply(stateDir, component, writes, files);
  try {
    for (const d of a.dirsToMake) mkdirSync(d);
    const onPool = a.fileWrites.filter(({ w }) => w.entry.kind === 'file' && w.via !== 'directed');
    const results = stageOnPool(onPool, source, pool, onFileStaged);
    // Symlinks and directed (range) restores, meanwhile, here.
    const here = new Set(onPool);
    let thrown: unknown;
    try {
      for (const f of a.fileWrites) {
        if (here.has(f)) continue;
        stageOne(a, f, source);
        if (f.w.entry.kind === 'file') onFileStaged?.(f.w.entry.size);
      }
    } catch (e) {
      thrown = e;
    }
    // Every job has finished before anything is rolled back: none can stage a file after.
    const failed = await results;
    if (thrown !== undefined) throw thrown;
    if (failed) throw Object.assign(new Error(failed.message), { code: failed.code });
    for (const { w } of onPool) a.bytes += w.entry.size;
    return await commitApply(a, source);
  } catch (e) {
    abandonApply(a);
    throw e;
  }
}

/** Files of one directory staged in one pool job. */
const STAGE_RUN = 64;

/**
 * Stages whole-file copies on the pool, the files of one staged directory in one job each
 * (content, owner, mode and times), so this thread handles runs, not files. Resolves when
 * every job has finished, with the first failure or undefined.
 */
async function stageOnPool(files: readonly { w: PlannedWrite; staged: string }[], source: RestoreSource, pool: CopyPool, onFileStaged?: (bytes: number) => void): Promise<{ code: string; message: string } | undefined> {
  const jobs: Promise<{ code: string; message: string } | undefined>[] = [];
  let run: Extract<CopyJob, { op: 'stageMany' }> | undefined;
  let sizes: number[] = [];
  const send = (): void => {
    if (!run) return;
    const job = run;
    const bytes = sizes;
    run = undefined;
    sizes = [];
    jobs.push(
      pool.submit(job).then((r) => {
        const c = r.column;
        if (!c) return r.error ?? { code: 'EIO', message: 'no answer from a copy worker' };
        const failed = new Set(c.errors.map(([i]) => i));
        bytes.forEach((b, i) => {
          if (!failed.has(i)) onFileStaged?.(b);
        });
        const e = c.errors[0];
        return e ? { code: e[1], message: e[2] } : undefined;
      }),
    );
  };
  for (const { w, staged } of files) {
    const cut = staged.lastIndexOf('/');
    const toDir = staged.slice(0, cut);
    if (run && (run.toDir !== toDir || run.names.length >= STAGE_RUN)) send();
    run ??= { op: 'stageMany', toDir, names: [], from: [], mode: [], uid: [], gid: [], atimeMs: [], mtimeMs: [] };
    const attrs = source.attributes?.(w.entry);
    run.names.push(staged.slice(cut + 1));
    run.from.push(source.contentPath(w.entry));
    run.mode.push(w.entry.mode);
    run.uid.push(attrs?.uid ?? -1);
    run.gid.push(attrs?.uid !== undefined ? (attrs.gid ?? -1) : -1);
    run.atimeMs.push(attrs?.atimeMs ?? w.entry.mtimeMs);
    run.mtimeMs.push(w.entry.mtimeMs);
    sizes.push(w.entry.size);
  }
  send();
  pool.flush();
  return (await Promise.all(jobs)).find((e) => e !== undefined);
}

/** Plans the directories to make and the staged names, then makes the journal durable: nothing is touched before. */
function beginApply(stateDir: string, component: string, writes: PlannedWrite[], files: readonly RestoreFile[]): Apply {
  const id = randomBytes(6).toString('hex');
  const journalDir = join(stateDir, JOURNAL_DIR);
  mkdirSync(journalDir, { recursive: true, mode: 0o700 });
  const journalPath = join(journalDir, `${id}.json`);
  const trees: StagedTree[] = [];
  const dirsToMake: string[] = [];
  const present = new Set<string>(); // directories seen to exist: one lstat each, not one per file
  const stagedDirs = new Map<string, string>(); // missing directory → where it is built
  // Where a directory is built, or undefined when it exists. The topmost missing directory of
  // a path starts a tree of its own; those below it are built inside that tree.
  const place = (dir: string): string | undefined => {
    if (present.has(dir)) return undefined;
    const known = stagedDirs.get(dir);
    if (known !== undefined) return known;
    if (exists(dir)) {
      present.add(dir);
      return undefined;
    }
    const parent = dirname(dir);
    const inside = parent === dir ? undefined : place(parent);
    let staged: string;
    if (inside === undefined) {
      staged = `${parent === '/' ? '' : parent}/.shadowcopy-restore-${id}-t${trees.length}`;
      trees.push({ destination: dir, staged });
    } else {
      staged = `${inside}/${basename(dir)}`;
    }
    stagedDirs.set(dir, staged);
    dirsToMake.push(staged);
    return staged;
  };
  const fileWrites: { w: PlannedWrite; staged: string }[] = [];
  const entries: JournalEntry[] = [];
  writes.forEach((w, i) => {
    const dir = dirname(w.destination);
    const inside = place(dir);
    if (w.entry.kind === 'dir') {
      place(w.destination);
      return;
    }
    if (inside !== undefined) {
      fileWrites.push({ w, staged: `${inside}/${basename(w.destination)}` });
      return;
    }
    // Beside the destination, so the swap is a rename within one directory. Named by hand: `dir` is normalised already.
    const staged = `${dir === '/' ? '' : dir}/.shadowcopy-restore-${id}-${i}`;
    fileWrites.push({ w, staged });
    entries.push({ destination: w.destination, staged, kept: `${dir === '/' ? '' : dir}/.shadowcopy-old-${id}-${entries.length}` });
  });
  const journal: Journal = { component, state: 'staging', entries, trees, createdDirs: [] };
  writeDurably(journalPath, JSON.stringify(journal));
  return { journalPath, journal, writes, fileWrites, dirsToMake, byEntry: new Map(files.map((f) => [f.entry, f])), bytes: 0 };
}

/** Stages one file, symlink or directed range restore here, owner, mode and times included. */
function stageOne(a: Apply, { w, staged }: { w: PlannedWrite; staged: string }, source: RestoreSource): void {
  const { entry, destination } = w;
  if (entry.kind === 'symlink') {
    symlinkSync(source.linkTarget?.(entry) ?? readlinkSync(source.contentPath(entry)), staged);
    applyAttributes(staged, entry, source);
    return;
  }
  const content = source.contentPath(entry);
  if (w.via === 'directed') {
    const f = a.byEntry.get(entry)!;
    // Ranges land in a copy of what is there now (or an empty file).
    if (exists(destination)) copyFileSync(destination, staged);
    const fd = openSync(staged, exists(staged) ? 'r+' : 'w+');
    try {
      const src = rangesOf(f.sourceRanges, 'source');
      const dst = rangesOf(f.destinationRanges, 'destination');
      a.bytes += src.length === 0 && dst.length === 0 ? copyWhole(content, fd) : copyRanges(content, fd, src, dst);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } else {
    copyFileSync(content, staged);
    a.bytes += entry.size;
  }
  applyAttributes(staged, entry, source);
}

/** Everything is staged: makes it durable, swaps it in, sets directory attributes, commits. */
async function commitApply(a: Apply, source: RestoreSource): Promise<{ files: number; bytes: number }> {
  const { journal, journalPath } = a;
  // Everything staged is on disk before the swap may begin.
  const dirsTouched = new Set([...journal.entries, ...(journal.trees ?? [])].map((e) => dirname(e.destination)));
  await syncFileSystems(dirsTouched);
  // 1. From here on a crash is undone by putting the kept files back.
  journal.state = 'swapping';
  writeDurably(journalPath, JSON.stringify(journal));
  // 2. Swap: old aside (kept), new in.
  const keptNow = new Set<JournalEntry>();
  for (const e of journal.entries) {
    // Old aside first, then new in: a crash between the two leaves both for recovery. Only
    // what is there is moved: asked with lstat, as a failed rename would cost an exception.
    if (lstatSync(e.destination, { throwIfNoEntry: false }) !== undefined) {
      try {
        renameSync(e.destination, e.kept!);
        keptNow.add(e);
      } catch (err) {
        if (errno(err) !== 'ENOENT') throw err; // gone since: nothing to keep
      }
    }
    renameSync(e.staged, e.destination);
  }
  // A new directory goes in whole. Should one have appeared there since, an empty one is
  // replaced and any other fails the rename (ENOTEMPTY, ENOTDIR): rolled back, nothing lost.
  for (const t of journal.trees ?? []) renameSync(t.staged, t.destination);
  await syncFileSystems(dirsTouched);
  // Directories last and deepest first: renaming entries into one changes its mtime.
  const dirs = a.writes.filter((w) => w.entry.kind === 'dir').sort((x, y) => y.destination.length - x.destination.length);
  for (const w of dirs) applyAttributes(w.destination, w.entry, source);
  // 3. Committed: the old files can go.
  journal.state = 'committed';
  writeDurably(journalPath, JSON.stringify(journal));
  finish(journalPath, journal, keptNow);
  return { files: a.writes.length, bytes: a.bytes };
}

function abandonApply(a: Apply): void {
  if (a.journal.state !== 'committed') {
    rollBack(a.journal);
    rmSync(a.journalPath, { force: true });
  }
}

function copyWhole(from: string, toFd: number): number {
  const data = readFileSync(from);
  writeSync(toFd, data, 0, data.length, 0);
  return data.length;
}

function applyAttributes(path: string, entry: BackupSetEntry, source: RestoreSource): void {
  const attrs = source.attributes?.(entry);
  const mtime = entry.mtimeMs / 1000;
  const atime = (attrs?.atimeMs ?? entry.mtimeMs) / 1000;
  if (entry.kind === 'symlink') {
    if (attrs?.uid !== undefined) lchownSync(path, attrs.uid, attrs.gid ?? -1);
    lutimesSync(path, atime, mtime);
    return;
  }
  if (attrs?.uid !== undefined) lchownSync(path, attrs.uid, attrs.gid ?? -1);
  chmodSync(path, entry.mode & 0o7777);
  utimesSync(path, atime, mtime);
}

/**
 * Puts back what was there: kept files return, new ones and created directories go.
 * Destinations are touched only once the swap may have begun: while `staging`, every
 * destination still holds what it held.
 */
function rollBack(journal: Journal): void {
  for (const e of [...journal.entries].reverse()) {
    try {
      if (journal.state === 'swapping') {
        if (e.kept && exists(e.kept)) renameSync(e.kept, e.destination);
        else if (!exists(e.staged) && exists(e.destination)) {
          // Staged file renamed in, nothing kept: the destination did not exist before.
          unlinkSync(e.destination);
        }
      }
      rmSync(e.staged, { force: true });
    } catch {
      // Keep going: the rest of the component must still be put back.
    }
  }
  for (const t of [...(journal.trees ?? [])].reverse()) {
    try {
      // Renamed in (it was staged before `swapping`, and is gone): the directory did not
      // exist before the restore, so all of it goes.
      if (journal.state === 'swapping' && !exists(t.staged) && isDirectory(t.destination)) rmSync(t.destination, { recursive: true, force: true });
      rmSync(t.staged, { recursive: true, force: true });
    } catch {
      // Keep going.
    }
  }
  for (const d of [...journal.createdDirs].reverse()) {
    try {
      rmdirSync(d);
    } catch {
      // Not empty (something else lives there now) or already gone.
    }
  }
}

/** Deletes the kept old files (those of `keptNow` when known; else any there) and the journal. */
function finish(journalPath: string, journal: Journal, keptNow?: ReadonlySet<JournalEntry>): void {
  for (const e of journal.entries) {
    if (!e.kept || (keptNow && !keptNow.has(e))) continue;
    try {
      unlinkSync(e.kept);
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw err; // there was nothing to keep
    }
  }
  rmSync(journalPath, { force: true });
}

export interface RestoreRecovery {
  rolledBack: string[];
  completed: string[];
}

/**
 * Finishes what an interrupted restore left: a component caught while swapping is rolled
 * back to its old files, one already committed has its kept files removed. Idempotent.
 */
export function recoverRestores(stateDir: string): RestoreRecovery {
  const dir = join(stateDir, JOURNAL_DIR);
  const report: RestoreRecovery = { rolledBack: [], completed: [] };
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return report;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (!name.endsWith('.json')) {
      rmSync(path, { force: true }); // a journal write that never completed
      continue;
    }
    let journal: Journal;
    try {
      journal = JSON.parse(readFileSync(path, 'utf8')) as Journal;
    } catch {
      rmSync(path, { force: true });
      continue;
    }
    if (journal.state === 'committed') {
      finish(path, journal);
      report.completed.push(journal.component);
    } else {
      rollBack(journal);
      rmSync(path, { force: true });
      report.rolledBack.push(journal.component);
    }
  }
  return report;
}

interface PendingItem {
  destination: string;
  staged: string;
  kind: BackupSetEntry['kind'];
  mode: number;
  mtimeMs: number;
  uid?: number;
  gid?: number;
  atimeMs?: number;
}

/**
 * Applies files staged by RESTORE_AT_REBOOT restores, oldest first, each component all or
 * nothing. Meant for a boot-time unit that runs before the services start
 * (`shadowcopy apply-reboot-restores`).
 */
export async function applyRebootRestores(stateDir: string): Promise<{ applied: string[]; failed: { component: string; error: VssError }[] }> {
  recoverRestores(stateDir);
  const dir = join(stateDir, REBOOT_DIR);
  const out = { applied: [] as string[], failed: [] as { component: string; error: VssError }[] };
  let stages: string[];
  try {
    stages = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const stage of stages) {
    const pendingPath = join(dir, stage, 'pending.json');
    if (!exists(pendingPath)) {
      rmSync(join(dir, stage), { recursive: true, force: true }); // staging never finished
      continue;
    }
    const pending = JSON.parse(readFileSync(pendingPath, 'utf8')) as { component: string; items: PendingItem[] };
    const entries = new Map<BackupSetEntry, PendingItem>();
    const writes: PlannedWrite[] = pending.items.map((item) => {
      const entry = { kind: item.kind, mode: item.mode, mtimeMs: item.mtimeMs, size: 0, relativePath: basename(item.destination) } as unknown as BackupSetEntry;
      entries.set(entry, item);
      return { destination: item.destination, via: 'original', entry };
    });
    const source: RestoreSource = {
      contentPath: (e) => entries.get(e)!.staged,
      attributes: (e) => {
        const i = entries.get(e)!;
        return { ...(i.uid !== undefined ? { uid: i.uid } : {}), ...(i.gid !== undefined ? { gid: i.gid } : {}), ...(i.atimeMs !== undefined ? { atimeMs: i.atimeMs } : {}) };
      },
    };
    try {
      await applyComponent(stateDir, pending.component, writes, [], source);
      rmSync(join(dir, stage), { recursive: true, force: true });
      out.applied.push(pending.component);
    } catch (e) {
      out.failed.push({ component: pending.component, error: asVss(e, `applying the reboot restore of "${pending.component}"`) });
    }
  }
  return out;
}
