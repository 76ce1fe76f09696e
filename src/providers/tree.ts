// Copying a directory tree into a snapshot, and bringing that copy up to date.
//
// The reflink and copy providers share this engine: prepare copies (or clones) the whole
// tree while writers still run, and commit — with writers frozen — rescans the volume and
// copies again only what changed since prepare scanned it. A file counts as changed when
// its size, mtime, ctime or inode differ; ctime cannot be set by a program, so a change is
// never missed. Like git's "racy" index, a file whose ctime is within RACY_MARGIN_NS of the
// prepare scan is copied again regardless, because a filesystem timestamp is coarser than
// the clock and a change in the same tick would otherwise leave every field equal.
//
// The walk stays on the volume's filesystem (like `cp -x`): a mount point inside it becomes
// an empty directory, as a nested subvolume does in a btrfs snapshot.
import {
  chmodSync,
  constants,
  copyFileSync,
  linkSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  promises as fsp,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  type BigIntStats,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { basename, join, relative, sep } from 'node:path';
import { VssError } from '../vss/errors.js';
import { filespecMatcher } from '../vss/selection/file-tree.js';
import type { FileSpec } from '../vss/writer-metadata.js';
import type { ChangeJournal } from './journal.js';
import { fsError, isRoot, isWithin } from './system.js';

export type EntryKind = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block';

/** What a scan saw of one path (relative to the tree root; '' is the root). */
export interface TreeEntry {
  kind: EntryKind;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  atimeNs: bigint;
  mode: number;
  uid: number;
  gid: number;
  nlink: bigint;
  rdev: bigint;
  /** Mount point or nested subvolume: kept as an empty directory, not entered. */
  boundary: boolean;
}

export interface Manifest {
  entries: Map<string, TreeEntry>;
  /** Wall clock (ns) when the scan started: entries changed after `scanStartNs - RACY_MARGIN_NS` are racy. */
  scanStartNs: bigint;
}

/** Far above any filesystem's timestamp granularity (a jiffy is at most 10 ms). */
export const RACY_MARGIN_NS = 100_000_000n;
/** Files this large are copied off the event loop so the daemon stays responsive. */
const ASYNC_COPY_BYTES = 8n * 1024n * 1024n;
/** How many entries are handled between two yields to the event loop. */
const CHUNK = 512;

export interface TreeOptions {
  /** Relative paths left out of the copy (the snapshot store, when it lies inside the volume). */
  skip?: (rel: string) => boolean;
  /**
   * Files (not directories) left out of the copy: those a writer excluded from the snapshot
   * (see excludedFileMatcher). They are never opened, not only deleted afterwards.
   */
  excludeFile?: (rel: string) => boolean;
  /** Clone with FICLONE and fail when the filesystem cannot (reflink); else copy bytes. */
  clone: boolean;
  /** Aborting stops the work at the next entry; the signal's reason is thrown. */
  signal?: AbortSignal;
  /**
   * At commit: the change journal started before `prev` was scanned. Only the paths it names
   * are looked at; when it cannot be trusted the whole tree is rescanned.
   */
  journal?: ChangeJournal;
}

export interface SyncStats {
  scanned: number;
  copied: number;
  removed: number;
  bytesCopied: bigint;
  /** Entries deleted between being listed and being copied: left out. */
  vanished: number;
  /** `journal`: only the journal's paths were looked at; `full`: the whole tree was scanned. */
  mode: 'full' | 'journal';
  /** Why a journal that was given was not used. */
  fallback?: string;
}

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

function kindOf(st: BigIntStats): EntryKind | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return undefined; // sockets: they belong to a running process and cannot be copied
}

function entryOf(st: BigIntStats, kind: EntryKind, boundary: boolean): TreeEntry {
  return {
    kind,
    ino: st.ino,
    size: st.size,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    atimeNs: st.atimeNs,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    nlink: st.nlink,
    rdev: st.rdev,
    boundary,
  };
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new VssError('VSS_E_UNEXPECTED', 'snapshot work was aborted');
}

/** Lists the tree under `root` in pre-order (a directory before what it holds). */
export async function scanTree(root: string, opts: Pick<TreeOptions, 'skip' | 'excludeFile' | 'signal'> = {}): Promise<Manifest> {
  const scanStartNs = BigInt(Date.now()) * 1_000_000n;
  const entries = new Map<string, TreeEntry>();
  let rootStat: BigIntStats;
  try {
    rootStat = lstatSync(root, { bigint: true });
  } catch (e) {
    throw fsError(e, `the volume root ${root}`);
  }
  entries.set('', entryOf(rootStat, 'dir', false));
  const stack: string[] = [''];
  let n = 0;
  while (stack.length) {
    const dirRel = stack.pop()!;
    let names: string[];
    try {
      names = readdirSync(join(root, dirRel));
    } catch (e) {
      // A directory removed while we walk is simply not in this scan.
      if (dirRel !== '' && (fsError(e, '').code === 'VSS_E_OBJECT_NOT_FOUND')) continue;
      throw fsError(e, `reading ${join(root, dirRel)}`);
    }
    const subdirs: string[] = [];
    for (const name of names) {
      const rel = dirRel === '' ? name : `${dirRel}/${name}`;
      if (opts.skip?.(rel)) continue;
      let st: BigIntStats;
      try {
        st = lstatSync(join(root, rel), { bigint: true });
      } catch (e) {
        if (fsError(e, '').code === 'VSS_E_OBJECT_NOT_FOUND') continue;
        throw fsError(e, `reading ${join(root, rel)}`);
      }
      const kind = kindOf(st);
      if (!kind || (kind !== 'dir' && opts.excludeFile?.(rel))) continue;
      // A mount point or a nested btrfs subvolume has its own st_dev.
      const boundary = kind === 'dir' && st.dev !== rootStat.dev;
      entries.set(rel, entryOf(st, kind, boundary));
      if (kind === 'dir' && !boundary) subdirs.push(rel);
      if (++n % CHUNK === 0) {
        checkAbort(opts.signal);
        await yieldToLoop();
      }
    }
    // Reverse so the stack pops them in name order: a stable pre-order.
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
  }
  return { entries, scanStartNs };
}

function changed(a: TreeEntry, b: TreeEntry): boolean {
  return a.kind !== b.kind || a.ino !== b.ino || a.size !== b.size || a.mtimeNs !== b.mtimeNs || a.ctimeNs !== b.ctimeNs || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid;
}

const nsToSeconds = (ns: bigint): number => Number(ns / 1000n) / 1e6;

function applyMetadata(path: string, e: TreeEntry): void {
  if (e.kind === 'symlink') {
    if (isRoot()) lchownSync(path, e.uid, e.gid);
    lutimesSync(path, nsToSeconds(e.atimeNs), nsToSeconds(e.mtimeNs));
    return;
  }
  // chown first: it clears set-uid/set-gid bits that chmod then restores.
  if (isRoot()) lchownSync(path, e.uid, e.gid);
  chmodSync(path, e.mode);
  utimesSync(path, nsToSeconds(e.atimeNs), nsToSeconds(e.mtimeNs));
}

function makeSpecial(path: string, e: TreeEntry): void {
  const major = Number(((e.rdev >> 8n) & 0xfffn) | ((e.rdev >> 32n) & ~0xfffn));
  const minor = Number((e.rdev & 0xffn) | ((e.rdev >> 12n) & ~0xffn));
  const args = e.kind === 'fifo' ? [path, 'p'] : [path, e.kind === 'char' ? 'c' : 'b', String(major), String(minor)];
  const r = spawnSync('mknod', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new VssError('VSS_E_UNEXPECTED_PROVIDER_ERROR', `mknod ${args.join(' ')} failed: ${(r.stderr || String(r.error)).trim()}`);
}

/**
 * Inode numbers of files some process maps MAP_SHARED (from /proc/*\/maps), and of those
 * mapped writable. A write through a shared mapping raises no inotify event and need not move
 * mtime again while the page stays dirty, so such files are always looked at, and the
 * writable ones always copied, at commit. Matched by inode number alone (btrfs reports a
 * subvolume's own st_dev, the maps its superblock's): a collision only costs a copy.
 */
const SHARED_MAPPING = /^\S+ .(.).s \S+ \S+ (\d+) +\//gm;

export function sharedMappings(): { any: Set<bigint>; writable: Set<bigint> } {
  const any = new Set<bigint>();
  const writable = new Set<bigint>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return { any, writable };
  }
  for (const pid of pids) {
    let maps: string;
    try {
      maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    } catch {
      continue; // the process ended
    }
    // address perms offset dev inode path — only shared mappings of files (perms ends in 's').
    for (const m of maps.matchAll(SHARED_MAPPING)) {
      const ino = BigInt(m[2]!);
      if (ino === 0n) continue;
      any.add(ino);
      if (m[1] === 'w') writable.add(ino);
    }
  }
  return { any, writable };
}

const parentOf = (rel: string): string => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');

/** What one sync must bring into `dst`: the entries to look at, now, in an order where a directory comes before what it holds. */
interface SyncPlan {
  /** Current entries of the paths looked at (all of them for a full scan). */
  current: Map<string, TreeEntry>;
  /** The keys of `current` and of vanished paths, parents first. */
  order: string[];
  /** Subtrees new since prepare: copied whole, whatever `dst` held there. */
  fresh: Set<string>;
  scanStartNs: bigint;
}

/** Is `rel` or one of its ancestors in `set`? */
function underAny(rel: string, set: Set<string>): boolean {
  if (set.size === 0) return false;
  for (let p = rel; ; p = parentOf(p)) {
    if (set.has(p)) return true;
    if (p === '') return false;
  }
}

/**
 * The journal's answer turned into a plan: the changed paths, their parents (whose mtime
 * moved), whole new subtrees, every file with several links or a shared mapping, and the
 * other names of any inode involved. Returns why not, when the journal cannot be trusted
 * or names so much that a full scan is as cheap.
 */
async function journalPlan(
  src: string,
  prev: Manifest,
  opts: TreeOptions,
  setMapped: (m: ReturnType<typeof sharedMappings>) => void,
): Promise<SyncPlan | string> {
  const scanStartNs = BigInt(Date.now()) * 1_000_000n;
  // drain() writes its sentinel at once; the mappings are read while its event travels.
  const draining = opts.journal!.drain(opts.signal);
  const mapped = sharedMappings();
  setMapped(mapped);
  const changes = await draining;
  if ('failure' in changes) return changes.failure;
  const limit = Math.max(1000, prev.entries.size >> 1);
  const tooMany = `the journal names more than ${limit} paths; a full scan is as cheap`;
  const skipped = (rel: string): boolean => {
    if (!opts.skip || rel === '') return false;
    for (let p = rel; p !== ''; p = parentOf(p)) if (opts.skip(p)) return true;
    return false;
  };
  // A candidate's ancestors are candidates too, so each is looked at after its parent. The
  // parent's own metadata moved with the change; the others cost one lstat each, once.
  const cand = new Set<string>(['']);
  const add = (rel: string): void => {
    if (skipped(rel)) return;
    for (let p = rel; !cand.has(p); p = parentOf(p)) cand.add(p);
  };
  for (const p of changes.paths) add(p);
  const fresh = new Set([...changes.trees].filter((t) => t !== '' && !skipped(t)));
  // New subtrees, and the unwatched ones (whose files the snapshot leaves out): every entry
  // in them is looked at; only the new ones are copied whole.
  const rescan = new Set([...changes.rescan].filter((r) => !skipped(r)));
  for (const t of [...fresh, ...rescan]) {
    add(t);
    const stack = [t];
    while (stack.length) {
      const dir = stack.pop()!;
      let ents;
      try {
        ents = readdirSync(join(src, dir), { withFileTypes: true });
      } catch {
        continue; // gone again, or not a directory: the plan's lstat says what it is
      }
      for (const d of ents) {
        const rel = dir === '' ? d.name : `${dir}/${d.name}`;
        if (skipped(rel)) continue;
        cand.add(rel); // its parent, `dir`, is in already
        if (d.isDirectory()) stack.push(rel);
      }
      if (cand.size > limit) return tooMany;
    }
  }
  // What prepare saw in an unwatched tree may be gone since: looked at, it is found vanished.
  // A prefix test per entry (this loop runs over the whole volume in the commit window).
  const trees = [...rescan];
  const inRescan = (rel: string): boolean => trees.some((t) => t === '' || rel === t || (rel.startsWith(t) && rel[t.length] === '/'));
  for (const [rel, e] of prev.entries) {
    if ((e.kind === 'file' && (e.nlink > 1n || mapped.any.has(e.ino))) || (trees.length > 0 && inRescan(rel))) add(rel);
  }
  if (cand.size > limit) return tooMany;

  let rootStat: BigIntStats;
  try {
    rootStat = lstatSync(src, { bigint: true });
  } catch (e) {
    throw fsError(e, `the volume root ${src}`);
  }
  const prevRoot = prev.entries.get('');
  if (!prevRoot || rootStat.ino !== prevRoot.ino || !rootStat.isDirectory()) return 'the volume root was replaced since prepare';

  // Look at every candidate; then at the other names of inodes with several links, which
  // may have changed through a name the journal saw (at most a few rounds).
  for (let round = 0; ; round++) {
    const order = [...cand].sort(); // a prefix sorts first: parents before children
    const current = new Map<string, TreeEntry>();
    const dropped = new Set<string>();
    let n = 0;
    for (const rel of order) {
      if (++n % CHUNK === 0) {
        checkAbort(opts.signal);
        await yieldToLoop();
      }
      if (rel !== '') {
        const parent = parentOf(rel);
        if (dropped.has(parent)) {
          dropped.add(rel);
          continue;
        }
        const pe = current.get(parent); // looked at just before: parents sort first
        if (!pe || pe.kind !== 'dir') continue; // the parent is gone, so is this
        if (pe.boundary) {
          dropped.add(rel); // inside a mount point or nested subvolume: not the volume's
          continue;
        }
      }
      let st: BigIntStats;
      try {
        st = rel === '' ? rootStat : lstatSync(join(src, rel), { bigint: true });
      } catch (e) {
        if (fsError(e, '').code === 'VSS_E_OBJECT_NOT_FOUND') continue;
        throw fsError(e, `reading ${join(src, rel)}`);
      }
      const kind = kindOf(st);
      if (!kind || (kind !== 'dir' && opts.excludeFile?.(rel))) continue;
      current.set(rel, entryOf(st, kind, kind === 'dir' && st.dev !== rootStat.dev));
    }
    const need = new Set<bigint>();
    for (const e of current.values()) if (e.kind === 'file' && e.nlink > 1n) need.add(e.ino);
    const more: string[] = [];
    if (need.size) for (const [rel, e] of prev.entries) if (e.kind === 'file' && need.has(e.ino) && !cand.has(rel) && !skipped(rel)) more.push(rel);
    if (!more.length) return { current, order, fresh, scanStartNs };
    if (round === 3) return 'hard links keep changing names';
    for (const rel of more) add(rel);
    if (cand.size > limit) return tooMany;
  }
}

/**
 * Makes `dst` a copy of `src` as `src` is now. With `prev` (the manifest of the last sync
 * into `dst`), only what changed since is copied; without it `dst` must not exist yet.
 * With `opts.journal` (started before `prev` was scanned), only the paths it names are
 * looked at, unless it cannot be trusted: then, as without it, the whole tree is rescanned.
 * Returns the manifest of this sync, to pass to the next one (after a journal sync: `prev`,
 * brought up to date in place).
 */
export async function syncTree(src: string, dst: string, prev: Manifest | undefined, opts: TreeOptions): Promise<{ manifest: Manifest; stats: SyncStats }> {
  // Files mapped shared-writable are always copied at commit (see sharedMappings).
  let mapped = { any: new Set<bigint>(), writable: new Set<bigint>() };
  let plan: SyncPlan | undefined;
  let fallback: string | undefined;
  if (prev && opts.journal) {
    const p = await journalPlan(src, prev, opts, (m) => (mapped = m));
    if (typeof p === 'string') fallback = p;
    else plan = p;
  } else if (prev) mapped = sharedMappings();
  const journal = plan !== undefined;
  let manifest: Manifest;
  if (plan) manifest = prev!;
  else {
    manifest = await scanTree(src, opts);
    plan = { current: manifest.entries, order: [...manifest.entries.keys()], fresh: new Set(), scanStartNs: manifest.scanStartNs };
  }
  const { current, order, fresh } = plan;
  const stats: SyncStats = { scanned: current.size, copied: 0, removed: 0, bytesCopied: 0n, vanished: 0, mode: journal ? 'journal' : 'full', ...(fallback ? { fallback } : {}) };
  const racyFrom = prev ? prev.scanStartNs - RACY_MARGIN_NS : 0n;
  const copyFlags = opts.clone ? constants.COPYFILE_FICLONE_FORCE : 0;
  const dirsToFix = new Set<string>();
  const linked = new Map<bigint, string>(); // source inode → its copy, to keep hard links linked
  // What dst holds at a path, as the last sync saw it; nothing inside a subtree new since.
  const oldOf = (rel: string): TreeEntry | undefined => (prev && !underAny(rel, fresh) ? prev.entries.get(rel) : undefined);

  try {
    if (!prev) mkdirSync(dst, { mode: 0o700 });
    // Deletions first, so a path that changed kind is free for its new self.
    if (prev) {
      for (const t of fresh) {
        if (t === '' || !lstatOrUndefined(join(dst, t))) continue;
        rmSync(join(dst, t), { recursive: true, force: true });
        dirsToFix.add(parentOf(t));
        stats.removed++;
      }
      for (const rel of journal ? order : prev.entries.keys()) {
        const old = oldOf(rel);
        if (!old) continue;
        const now = current.get(rel);
        if (rel === '' || (now && now.kind === old.kind && old.boundary === now.boundary)) continue;
        rmSync(join(dst, rel), { recursive: true, force: true });
        dirsToFix.add(parentOf(rel));
        stats.removed++;
      }
    }
    let n = 0;
    for (const rel of order) {
      const e = current.get(rel);
      if (!e) continue;
      if (++n % CHUNK === 0) {
        checkAbort(opts.signal);
        await yieldToLoop();
      }
      const old = oldOf(rel);
      const target = rel === '' ? dst : join(dst, rel);
      const stale = !old || old.kind !== e.kind || changed(old, e) || old.ctimeNs >= racyFrom || (e.kind === 'file' && mapped.writable.has(e.ino));
      if (e.kind === 'dir') {
        if (!old || old.kind !== 'dir') {
          if (rel !== '') mkdirSync(target);
          dirsToFix.add(parentOf(rel));
        }
        if (stale) dirsToFix.add(rel);
        continue;
      }
      if (e.kind === 'file' && e.nlink > 1n) {
        const first = linked.get(e.ino);
        if (first !== undefined) {
          if (stale || !old) {
            rmSync(target, { force: true });
            linkSync(first, target);
            dirsToFix.add(parentOf(rel));
          }
          continue;
        }
        linked.set(e.ino, target);
      }
      if (!stale) continue;
      if (old && (old.kind !== e.kind || old.ino !== e.ino || e.kind !== 'file')) {
        // A new inode at this path: do not write through a hard link the old one shared.
        rmSync(target, { force: true });
      }
      try {
        if (e.kind === 'file') {
          if (e.size >= ASYNC_COPY_BYTES) await fsp.copyFile(join(src, rel), target, copyFlags);
          else copyFileSync(join(src, rel), target, copyFlags);
          stats.bytesCopied += e.size;
        } else if (e.kind === 'symlink') {
          symlinkSync(readlinkSync(join(src, rel)), target);
        } else {
          makeSpecial(target, e);
        }
      } catch (err) {
        // Deleted since the scan (a server's temporary file, say): at this moment the tree
        // has no such entry, so neither does the copy, nor the manifest the next sync reads.
        if (!(fsError(err, '').code === 'VSS_E_OBJECT_NOT_FOUND' && lstatOrUndefined(join(src, rel)) === undefined)) throw err;
        rmSync(target, { force: true });
        current.delete(rel);
        if (linked.get(e.ino) === target) linked.delete(e.ino);
        stats.vanished++;
        continue;
      }
      applyMetadata(target, e);
      dirsToFix.add(parentOf(rel));
      stats.copied++;
    }
    // Directories last and deepest first: creating entries changes a directory's mtime.
    for (let i = order.length - 1; i >= 0; i--) {
      const rel = order[i]!;
      const e = current.get(rel);
      if (e?.kind === 'dir' && dirsToFix.has(rel)) applyMetadata(rel === '' ? dst : join(dst, rel), e);
    }
  } catch (e) {
    if (VssError.is(e)) throw e;
    const code = typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : '';
    if (opts.clone && (code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'EXDEV' || code === 'EINVAL' || code === 'ENOSYS')) {
      throw new VssError('VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER', `the filesystem of ${src} cannot clone files (FICLONE: ${code}); use the copy provider`, { cause: e });
    }
    throw fsError(e, `copying ${src} into the snapshot ${dst}`);
  }
  if (journal) patchManifest(manifest, plan);
  return { manifest, stats };
}

function lstatOrUndefined(path: string): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true });
  } catch {
    return undefined;
  }
}

/** Brings a manifest up to date with what a journal sync saw (entries of vanished or new subtrees dropped first). */
function patchManifest(manifest: Manifest, plan: SyncPlan): void {
  const gone = new Set<string>(plan.fresh);
  for (const rel of plan.order) {
    const old = manifest.entries.get(rel);
    const now = plan.current.get(rel);
    if (old?.kind === 'dir' && (!now || now.kind !== 'dir' || now.boundary)) gone.add(rel);
  }
  gone.delete('');
  if (gone.size) for (const rel of [...manifest.entries.keys()]) if (rel !== '' && underAny(rel, gone)) manifest.entries.delete(rel);
  for (const rel of plan.order) {
    const now = plan.current.get(rel);
    if (now) manifest.entries.set(rel, now);
    else manifest.entries.delete(rel);
  }
  manifest.scanStartNs = plan.scanStartNs;
}

/**
 * Which files of the volume at `volumeRoot` the exclude specs name, by path relative to it;
 * undefined when none can match. Same rules as removeExcludedFiles: the spec's directory
 * (and below it when recursive), the file spec matched against the name.
 *
 * Copy providers skip these files outright rather than copy and delete them: opening and
 * closing a file releases every POSIX record lock this process holds on it, so copying an
 * SQLite -shm file from the process whose SQLite writer holds that database's write lock
 * would let the application commit in the middle of the freeze.
 */
export function excludedFileMatcher(volumeRoot: string, specs: readonly FileSpec[]): ((rel: string) => boolean) | undefined {
  const rules = specs
    .filter((spec) => isWithin(spec.path, volumeRoot))
    .map((spec) => ({ dir: relative(volumeRoot, spec.path).split(sep).join('/'), recursive: spec.recursive, matches: filespecMatcher(spec.filespec) }));
  if (!rules.length) return undefined;
  return (rel) => {
    const dir = parentOf(rel);
    const name = rel.slice(rel.lastIndexOf('/') + 1);
    return rules.some((r) => (r.dir === dir || (r.recursive && (r.dir === '' || dir.startsWith(`${r.dir}/`)))) && r.matches(name));
  };
}

/**
 * The directories under `volumeRoot` whose every file is excluded (a recursive `*` spec, as
 * the PostgreSQL writer gives for pg_wal): the snapshot holds only their directories.
 */
export function wholeTreesExcluded(volumeRoot: string, specs: readonly FileSpec[]): string[] {
  return specs.filter((spec) => spec.recursive && spec.filespec === '*' && isWithin(spec.path, volumeRoot)).map((spec) => spec.path);
}

/**
 * Deletes from a snapshot the files a writer listed in EXCLUDE_FILES_FROM_SNAPSHOT.
 * `volumeRoot` is where the snapshot's content came from; specs outside it are not ours.
 * Returns how many files were removed.
 */
export function removeExcludedFiles(snapshotRoot: string, volumeRoot: string, specs: readonly FileSpec[]): number {
  let removed = 0;
  for (const spec of specs) {
    if (!isWithin(spec.path, volumeRoot)) continue;
    const matches = filespecMatcher(spec.filespec);
    const start = join(snapshotRoot, spec.path.slice(volumeRoot.length));
    const stack = [start];
    while (stack.length) {
      const dir = stack.pop()!;
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue; // the directory is not in the snapshot: nothing to exclude
      }
      for (const name of names) {
        const p = join(dir, name);
        const st = lstatSync(p);
        if (st.isDirectory()) {
          if (spec.recursive) stack.push(p);
        } else if (matches(basename(p))) {
          unlinkSync(p);
          removed++;
        }
      }
    }
  }
  return removed;
}
