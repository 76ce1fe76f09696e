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
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  type BigIntStats,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { VssError } from '../vss/errors.js';
import type { FileSpec } from '../vss/writer-metadata.js';
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
  /** Clone with FICLONE and fail when the filesystem cannot (reflink); else copy bytes. */
  clone: boolean;
  /** Aborting stops the work at the next entry; the signal's reason is thrown. */
  signal?: AbortSignal;
}

export interface SyncStats {
  scanned: number;
  copied: number;
  removed: number;
  bytesCopied: bigint;
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
export async function scanTree(root: string, opts: Pick<TreeOptions, 'skip' | 'signal'> = {}): Promise<Manifest> {
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
      if (!kind) continue;
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
 * Makes `dst` a copy of `src` as `src` is now. With `prev` (the manifest of the last sync
 * into `dst`), only what changed since is copied; without it `dst` must not exist yet.
 * Returns the manifest of this sync, to pass to the next one.
 */
export async function syncTree(src: string, dst: string, prev: Manifest | undefined, opts: TreeOptions): Promise<{ manifest: Manifest; stats: SyncStats }> {
  const manifest = await scanTree(src, opts);
  const stats: SyncStats = { scanned: manifest.entries.size, copied: 0, removed: 0, bytesCopied: 0n };
  const racyFrom = prev ? prev.scanStartNs - RACY_MARGIN_NS : 0n;
  const copyFlags = opts.clone ? constants.COPYFILE_FICLONE_FORCE : 0;
  const dirsToFix = new Set<string>();
  const linked = new Map<bigint, string>(); // source inode → its copy, to keep hard links linked
  const parentOf = (rel: string): string => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');

  try {
    if (!prev) mkdirSync(dst, { mode: 0o700 });
    // Deletions first, so a path that changed kind is free for its new self.
    if (prev) {
      for (const [rel, old] of prev.entries) {
        const now = manifest.entries.get(rel);
        if (rel === '' || (now && now.kind === old.kind && old.boundary === now.boundary)) continue;
        rmSync(join(dst, rel), { recursive: true, force: true });
        dirsToFix.add(parentOf(rel));
        stats.removed++;
      }
    }
    let n = 0;
    for (const [rel, e] of manifest.entries) {
      if (++n % CHUNK === 0) {
        checkAbort(opts.signal);
        await yieldToLoop();
      }
      const old = prev?.entries.get(rel);
      const target = rel === '' ? dst : join(dst, rel);
      const stale = !old || old.kind !== e.kind || changed(old, e) || old.ctimeNs >= racyFrom;
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
      if (e.kind === 'file') {
        if (e.size >= ASYNC_COPY_BYTES) await fsp.copyFile(join(src, rel), target, copyFlags);
        else copyFileSync(join(src, rel), target, copyFlags);
        stats.bytesCopied += e.size;
      } else if (e.kind === 'symlink') {
        symlinkSync(readlinkSync(join(src, rel)), target);
      } else {
        makeSpecial(target, e);
      }
      applyMetadata(target, e);
      dirsToFix.add(parentOf(rel));
      stats.copied++;
    }
    // Directories last and deepest first: creating entries changes a directory's mtime.
    const dirs = [...manifest.entries.keys()].filter((rel) => dirsToFix.has(rel) && manifest.entries.get(rel)?.kind === 'dir');
    for (let i = dirs.length - 1; i >= 0; i--) {
      const rel = dirs[i]!;
      applyMetadata(rel === '' ? dst : join(dst, rel), manifest.entries.get(rel)!);
    }
  } catch (e) {
    if (VssError.is(e)) throw e;
    const code = typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : '';
    if (opts.clone && (code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'EXDEV' || code === 'EINVAL' || code === 'ENOSYS')) {
      throw new VssError('VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER', `the filesystem of ${src} cannot clone files (FICLONE: ${code}); use the copy provider`, { cause: e });
    }
    throw fsError(e, `copying ${src} into the snapshot ${dst}`);
  }
  return { manifest, stats };
}

/** VSS wildcards (`*`, `?`) as a RegExp; `*.*` matches every name, as on Windows. */
export function filespecRegExp(filespec: string): RegExp {
  if (filespec === '*.*') return /^.*$/s;
  const body = filespec.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
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
    const re = filespecRegExp(spec.filespec);
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
        } else if (re.test(basename(p))) {
          unlinkSync(p);
          removed++;
        }
      }
    }
  }
  return removed;
}
