// The reference requester's backup directory (architecture §5):
//
//   <backup>/backup-components.xml   the BCD, genuine format
//   <backup>/writers/<writerId>.xml  each participating writer's WMD
//   <backup>/files/<volume-key>/...  file contents, copied from the snapshot
//   <backup>/manifest.json           every file: path, kind, size, mode, owner, times, sha256,
//                                    component and consistency; written LAST, atomically
//
// A backup is complete only when its manifest exists: an interrupted backup has none and
// is refused. Incremental and differential backups store only files that changed since
// the backup they build on and refer to the older copy for the rest, so a chain restores
// from its newest manifest. Everything read back is untrusted: paths are checked, contents
// are verified against their checksums before a restore touches the disk.
import { createHash, randomUUID } from 'node:crypto';
import {
  type Stats,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, isAbsolute, join, posix, resolve } from 'node:path';
import { VssError } from '../vss/errors.js';
import type { BackupSetEntry } from '../vss/selection/index.js';
import type { CopyPool, FileStat } from './copy-pool.js';
import { isPlainAbsolute, isWithin, syncFileSystems, writeDurably } from './durable.js';
import type { RestoreSource } from './restore-executor.js';

export const BACKUP_FORMAT = 'shadowcopy-backup/1';
export const MANIFEST_FILE = 'manifest.json';
export const BCD_FILE = 'backup-components.xml';

export type Consistency = 'application' | 'crash';

/** A file as the manifest records it: its attributes (`FileStat`: size, mode, owner, times) and more. */
export interface ManifestFile extends FileStat {
  /** Absolute path on the live system: where the file lives and is restored to by default. */
  path: string;
  kind: 'file' | 'dir' | 'symlink';
  sha256?: string;
  linkTarget?: string;
  /** Where the content is stored, relative to the backup directory that holds it. */
  stored?: string;
  /** Id of the older backup of the chain holding the content, when this one does not. */
  storedIn?: string;
  /** Application-consistent (a writer's component, from the snapshot) or crash-consistent. */
  consistency: Consistency;
  /** For files of a writer's component: the backup-set entry, from which a restore set is made. */
  entry?: BackupSetEntry;
}

export interface ManifestWriter {
  writerId: string;
  instanceId: string;
  instanceName: string;
  writerName: string;
  /** Relative path of its Writer Metadata Document. */
  document: string;
}

export interface ManifestComponent {
  writerId: string;
  instanceId: string;
  component: string;
  succeeded: boolean;
  /** Why it did not succeed, when it did not. */
  error?: string;
}

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  id: string;
  createdAt: string;
  completedAt: string;
  backupType: string;
  snapshotSetId?: string;
  /** The backup this one builds on (incremental, differential), by id and directory. */
  previous?: { id: string; dir: string };
  /** Ids from the full backup up to this one. */
  chain: string[];
  volumes: { volume: string; key: string }[];
  writers: ManifestWriter[];
  components: ManifestComponent[];
  files: ManifestFile[];
  totals: { files: number; bytes: number; bytesStored: number };
}

export interface VolumeRoot {
  /** The volume's mount point on the live system. */
  volume: string;
  /** Where its content is read from now: the snapshot's directory (or the volume itself). */
  root: string;
}



/** A short, readable, unique folder name for a volume: `srv_data-1a2b3c4d`, `root-…` for `/`. */
export function volumeKey(volume: string): string {
  const readable = volume === '/' ? 'root' : volume.replace(/^\/+|\/+$/g, '').replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60);
  return `${readable}-${createHash('sha256').update(volume).digest('hex').slice(0, 8)}`;
}

/** Files of one directory backed up in one pool job (`addFiles`). */
const MANY_FILES = 64;

/** A file the pool could not copy; `entry` when it belongs to a writer's component. */
export interface CopyFailure {
  path: string;
  error: VssError;
  entry?: BackupSetEntry;
}

/** Writes one backup directory. Call `finish` last: until then the backup is incomplete. */
export class BackupDirWriter {
  readonly id = randomUUID();
  private readonly createdAt = new Date().toISOString();
  private readonly files: ManifestFile[] = [];
  private readonly seen = new Set<string>();
  private readonly volumes: (VolumeRoot & { key: string })[];
  private readonly previousFiles: Map<string, ManifestFile & { holder: string }>;
  private bytes = 0;
  private bytesStored = 0;
  private readonly buffer = Buffer.allocUnsafe(1 << 20);
  /** Directories already made under files/: one mkdir per directory, not per file. */
  private readonly madeDirs = new Set<string>();
  /** Copies running on the pool, settled by `flush`. */
  private jobs: Promise<void>[] = [];
  /** How many of those have not answered yet. */
  private pending = 0;
  private readonly failures: CopyFailure[] = [];

  private constructor(
    readonly dir: string,
    volumes: readonly VolumeRoot[],
    readonly previous: BackupDir | undefined,
    private readonly pool: CopyPool | undefined,
  ) {
    // Longest mount point first, so a nested volume wins.
    this.volumes = volumes.map((v) => ({ ...v, volume: posix.normalize(v.volume), key: volumeKey(posix.normalize(v.volume)) })).sort((a, b) => b.volume.length - a.volume.length);
    this.previousFiles = new Map((previous?.manifest.files ?? []).map((f) => [f.path, { ...f, holder: f.storedIn ?? previous!.manifest.id }]));
  }

  /** Starts a backup in `dir`, which must not exist or be empty. With a pool, contents are copied on every core. */
  static create(dir: string, volumes: readonly VolumeRoot[], previous?: BackupDir, pool?: CopyPool): BackupDirWriter {
    const abs = resolve(dir);
    if (existsSync(abs) && readdirSync(abs).length > 0) {
      throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `the backup destination ${abs} is not empty; choose a new or empty directory`);
    }
    mkdirSync(join(abs, 'files'), { recursive: true, mode: 0o700 });
    mkdirSync(join(abs, 'writers'), { mode: 0o700 });
    return new BackupDirWriter(abs, volumes, previous, pool);
  }

  private volumeOf(path: string): (VolumeRoot & { key: string }) | undefined {
    return this.volumes.find((v) => isWithin(path, v.volume));
  }

  /** `path` relative to its volume `v` ('' for the volume itself). */
  private static onVolume(path: string, v: VolumeRoot): string {
    return path === v.volume ? '' : path.slice(v.volume === '/' ? 1 : v.volume.length + 1);
  }

  /** Where a live path is read from now (in the snapshot), or undefined when on no volume of the set. */
  readPath(path: string): string | undefined {
    const v = this.volumeOf(path);
    if (!v) return undefined;
    const rel = BackupDirWriter.onVolume(path, v);
    return rel ? join(v.root, rel) : v.root;
  }

  has(path: string): boolean {
    return this.seen.has(path);
  }

  /**
   * Records one path, copying its content when it is a file that changed since the
   * previous backup (or always, without one). `readFrom` overrides where it is read
   * (an alternate path); by default the path's place in the snapshot. `stat` is its lstat
   * when the caller has it, or `'file'` when its directory entry says it is a regular file:
   * then, with a pool, the copy takes its attributes on the open file (one lookup, off this
   * thread) and they are in the returned record once `flush` has run.
   */
  add(path: string, consistency: Consistency, entry?: BackupSetEntry, readFrom?: string, stat?: Stats | 'file'): ManifestFile {
    if (this.seen.has(path)) throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `${path} is already in this backup`);
    const real = readFrom ?? this.readPath(path);
    if (real === undefined) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `${path} is on no volume of the snapshot set; add its volume`);
    // A file the previous backup holds is compared by size and mtime first: that needs its stat here.
    if (stat === 'file' && this.pool && !this.previousFiles.has(path)) {
      const f: ManifestFile = { path, kind: 'file', size: 0, mode: 0, uid: 0, gid: 0, atimeMs: 0, mtimeMs: 0, consistency, ...(entry ? { entry } : {}), stored: this.storedName(path) };
      this.copyOnPool(f, real);
      this.seen.add(path);
      this.files.push(f);
      return f;
    }
    let st: Stats;
    try {
      st = stat instanceof Object ? stat : lstatSync(real);
    } catch (e) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `${path} is not in the snapshot (${(e as Error).message})`, { cause: e });
    }
    const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : undefined;
    if (!kind) throw new VssError('E_INVALIDARG', `${path} is neither a file, a directory nor a symlink; it cannot be backed up`);
    const f: ManifestFile = { path, kind, size: kind === 'file' ? st.size : 0, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, atimeMs: st.atimeMs, mtimeMs: st.mtimeMs, consistency, ...(entry ? { entry } : {}) };
    if (kind === 'symlink') f.linkTarget = readlinkSync(real);
    if (kind === 'file') {
      const prev = this.previousFiles.get(path);
      if (prev && prev.kind === 'file' && prev.size === st.size && prev.mtimeMs === st.mtimeMs && prev.sha256 && prev.stored) {
        // Unchanged since the backup this one builds on: refer to its copy.
        this.bytes += st.size;
        f.sha256 = prev.sha256;
        f.stored = prev.stored;
        f.storedIn = prev.holder;
      } else if (this.pool) {
        f.stored = this.storedName(path);
        this.copyOnPool(f, real);
      } else {
        f.stored = this.storedName(path);
        f.sha256 = this.copy(real, join(this.dir, f.stored));
        this.bytes += st.size;
        this.bytesStored += st.size;
      }
    }
    this.seen.add(path);
    this.files.push(f);
    return f;
  }

  /**
   * Records the regular files `names` of the directory `dir` (read from `readDir`, as its
   * directory entries say), in that order, as `add` with `'file'` would one by one. With a
   * pool, the ones to copy go in jobs of many files: their attributes and checksums are in
   * the records once `flush` has run. Paths already recorded are skipped.
   */
  addFiles(dir: string, readDir: string, names: readonly string[], consistency: Consistency): void {
    const pathOf = (name: string): string => (dir === '/' ? `/${name}` : `${dir}/${name}`);
    const v = this.volumeOf(dir);
    if (!this.pool || !v) {
      for (const name of names) {
        const path = pathOf(name);
        if (!this.seen.has(path)) this.add(path, consistency, undefined, `${readDir}/${name}`, 'file');
      }
      return;
    }
    // The directory's place under files/ (storedName gives a file's, `.content` for a volume's root).
    const rel = BackupDirWriter.onVolume(dir, v);
    const storedDir = rel ? `files/${v.key}/${rel}` : `files/${v.key}`;
    let run: { names: string[]; records: ManifestFile[] } = { names: [], records: [] };
    const send = (): void => {
      if (run.names.length) this.copyManyOnPool(run.records, readDir, `${this.dir}/${storedDir}`, run.names);
      run = { names: [], records: [] };
    };
    for (const name of names) {
      const path = pathOf(name);
      if (this.seen.has(path)) continue;
      if (this.previousFiles.has(path)) {
        // Compared with the previous backup's copy first: one by one.
        this.add(path, consistency, undefined, `${readDir}/${name}`, 'file');
        continue;
      }
      const f: ManifestFile = { path, kind: 'file', size: 0, mode: 0, uid: 0, gid: 0, atimeMs: 0, mtimeMs: 0, consistency, stored: `${storedDir}/${name}` };
      this.seen.add(path);
      this.files.push(f);
      run.names.push(name);
      run.records.push(f);
      if (run.names.length === MANY_FILES) send();
    }
    send();
  }

  /** Backs up a run of files of one directory in one job; fills their records. */
  private copyManyOnPool(records: ManifestFile[], fromDir: string, toDir: string, names: string[]): void {
    this.pending += records.length;
    this.jobs.push(
      this.pool!.submit({ op: 'backupMany', fromDir, toDir, names }).then((r) => {
        this.pending -= records.length;
        const m = r.many;
        if (!m) {
          // The whole job failed (its worker died): every file of it did.
          for (const f of records) this.copyFailed(f, r.error ?? { code: 'EIO', message: 'no answer' });
          return;
        }
        const failed = new Map(m.errors.map(([i, code, message]) => [i, { code, message }]));
        records.forEach((f, i) => {
          const e = failed.get(i);
          if (e) this.copyFailed(f, e);
          else this.copied(f, m.sha256.slice(i * 64, i * 64 + 64), m.size[i]!, { mode: m.mode[i]!, uid: m.uid[i]!, gid: m.gid[i]!, atimeMs: m.atimeMs[i]!, mtimeMs: m.mtimeMs[i]! });
        });
      }),
    );
  }

  /** Where a live path's content goes in this backup: `files/<volume-key>/<path on the volume>`. */
  private storedName(path: string): string {
    const v = this.volumeOf(path)!;
    return `files/${v.key}/${BackupDirWriter.onVolume(path, v) || '.content'}`;
  }

  /** Backs the file up on the pool; its checksum (and attributes, on the open file) land in `f`. */
  private copyOnPool(f: ManifestFile, real: string): void {
    this.pending++;
    this.jobs.push(
      this.pool!.submit({ op: 'backup', from: real, to: `${this.dir}/${f.stored!}` }).then((r) => {
        this.pending--;
        if (r.error) this.copyFailed(f, r.error);
        else this.copied(f, r.sha256!, r.size!, r.stat!);
      }),
    );
  }

  /** A copy done on the pool: the file as copied, its size what was read, the rest as fstat saw it then. */
  private copied(f: ManifestFile, sha256: string, size: number, st: Omit<FileStat, 'size'>): void {
    f.size = size;
    f.mode = st.mode;
    f.uid = st.uid;
    f.gid = st.gid;
    f.atimeMs = st.atimeMs;
    f.mtimeMs = st.mtimeMs;
    f.sha256 = sha256;
    this.bytes += size;
    this.bytesStored += size;
  }

  /** A copy the pool could not make: the file leaves the backup at `flush`, with its entry. */
  private copyFailed(f: ManifestFile, e: { code: string; message: string }): void {
    this.failures.push({ path: f.path, error: copyError(e, f.path, this.dir), ...(f.entry ? { entry: f.entry } : {}) });
  }

  /** Files recorded and bytes they hold (all, and stored in this backup); complete after `flush`. */
  get totals(): { files: number; bytes: number; bytesStored: number } {
    return { files: this.files.length, bytes: this.bytes, bytesStored: this.bytesStored };
  }

  /** Entries done so far (recorded, their copy finished) and the bytes they hold: for progress. */
  get done(): { files: number; bytes: number } {
    return { files: this.files.length - this.pending, bytes: this.bytes };
  }

  /** Copies a file, hashing it on the way: the content is read once, in one read when it fits the buffer. */
  private copy(from: string, to: string): string {
    const dir = dirname(to);
    if (!this.madeDirs.has(dir)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.madeDirs.add(dir);
    }
    const hash = createHash('sha256');
    const src = openSync(from, 'r');
    // Backed-up files keep private permissions whatever their mode was: the manifest holds the mode.
    const dst = openSync(to, 'w', 0o600);
    try {
      for (;;) {
        const n = readSync(src, this.buffer, 0, this.buffer.length, null);
        if (n === 0) break;
        hash.update(this.buffer.subarray(0, n));
        let off = 0;
        while (off < n) off += writeSync(dst, this.buffer, off, n - off);
        // A short read of a regular file is its end: no second read to learn that.
        if (n < this.buffer.length) break;
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC') throw new VssError('VSS_E_INSUFFICIENT_STORAGE', `no space left writing the backup in ${this.dir}; free space or back up elsewhere`, { cause: e });
      throw e;
    } finally {
      closeSync(src);
      closeSync(dst);
    }
    return hash.digest('hex');
  }

  /**
   * Waits for the copies on the pool. Files that could not be copied leave the backup and
   * are returned with their backup-set entries, so their components can be failed; no space
   * left fails the whole backup.
   */
  async flush(): Promise<CopyFailure[]> {
    this.pool?.flush();
    await Promise.all(this.jobs);
    this.jobs = [];
    const failed = this.failures.splice(0);
    const full = failed.find((f) => f.error.code === 'VSS_E_INSUFFICIENT_STORAGE');
    if (full) throw full.error;
    if (failed.length) {
      const gone = new Set(failed.map((f) => f.path));
      for (let i = this.files.length - 1; i >= 0; i--) {
        const f = this.files[i]!;
        if (!gone.has(f.path)) continue;
        this.files.splice(i, 1);
        this.seen.delete(f.path);
      }
    }
    return failed;
  }

  saveDocument(relativePath: string, xml: string): void {
    const p = join(this.dir, relativePath);
    mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
    writeFileSync(p, xml, { mode: 0o600 });
  }

  /**
   * Makes everything durable, then writes the manifest atomically: from this moment the
   * backup is complete. Returns the manifest.
   */
  async finish(meta: { backupType: string; snapshotSetId?: string; writers: ManifestWriter[]; components: ManifestComponent[] }): Promise<BackupManifest> {
    if (this.jobs.length) throw new VssError('VSS_E_BAD_STATE', 'copies are still running; await flush() before finish()');
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      id: this.id,
      createdAt: this.createdAt,
      completedAt: new Date().toISOString(),
      backupType: meta.backupType,
      ...(meta.snapshotSetId ? { snapshotSetId: meta.snapshotSetId } : {}),
      ...(this.previous ? { previous: { id: this.previous.manifest.id, dir: this.previous.dir } } : {}),
      chain: [...(this.previous?.manifest.chain ?? []), this.id],
      volumes: this.volumes.map((v) => ({ volume: v.volume, key: v.key })),
      writers: meta.writers,
      components: meta.components,
      files: this.files,
      totals: this.totals,
    };
    // One syncfs for the whole backup rather than an fsync per file.
    try {
      await syncFileSystems([this.dir]);
    } catch (e) {
      throw new VssError('VSS_E_UNEXPECTED', `could not flush the backup in ${this.dir} to disk: ${(e as Error).message}`, { cause: e });
    }
    writeDurably(join(this.dir, MANIFEST_FILE), JSON.stringify(manifest));
    return manifest;
  }
}

function copyError(e: { code: string; message: string }, path: string, dir: string): VssError {
  if (e.code === 'ENOSPC') return new VssError('VSS_E_INSUFFICIENT_STORAGE', `no space left writing the backup in ${dir}; free space or back up elsewhere`);
  return new VssError(e.code === 'ENOENT' ? 'VSS_E_OBJECT_NOT_FOUND' : 'VSS_E_UNEXPECTED', `${path} could not be copied: ${e.message}`);
}

export interface VerifyProblem {
  path: string;
  problem: string;
}

/** A completed backup directory, read back (and its chain). */
export class BackupDir {
  private readonly byPath: Map<string, ManifestFile>;

  private constructor(
    readonly dir: string,
    readonly manifest: BackupManifest,
    /** The older backups of the chain, by id. */
    readonly chain: Map<string, BackupDir>,
  ) {
    this.byPath = new Map(manifest.files.map((f) => [f.path, f]));
  }

  static open(dir: string): BackupDir {
    const abs = resolve(dir);
    const path = join(abs, MANIFEST_FILE);
    if (!existsSync(path)) {
      const what = existsSync(abs) ? 'is incomplete: it has no manifest.json (the backup was interrupted, or this is not a backup)' : 'does not exist';
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the backup ${abs} ${what}`);
    }
    let manifest: BackupManifest;
    try {
      manifest = JSON.parse(readFileSync(path, 'utf8')) as BackupManifest;
    } catch (e) {
      throw new VssError('VSS_E_CORRUPT_XML_DOCUMENT', `the manifest of ${abs} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    checkManifest(manifest, abs);
    const chain = new Map<string, BackupDir>();
    if (manifest.previous) {
      const prevDir = isAbsolute(manifest.previous.dir) ? manifest.previous.dir : resolve(abs, manifest.previous.dir);
      const prev = BackupDir.open(prevDir);
      if (prev.manifest.id !== manifest.previous.id) {
        throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the backup ${abs} builds on backup ${manifest.previous.id}, but ${prevDir} holds backup ${prev.manifest.id}`);
      }
      chain.set(prev.manifest.id, prev);
      for (const [id, b] of prev.chain) chain.set(id, b);
    }
    return new BackupDir(abs, manifest, chain);
  }

  file(path: string): ManifestFile | undefined {
    return this.byPath.get(path);
  }

  /** The stored copy of a file, in this backup or the older one of the chain that holds it. */
  storedPath(f: ManifestFile): string {
    if (!f.stored) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `${f.path} has no stored content`);
    const holder = f.storedIn ? this.chain.get(f.storedIn) : this;
    if (!holder) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `${f.path} is stored in backup ${f.storedIn}, which is not in this backup's chain`);
    // `stored` is relative and climbs nowhere (checkManifest): joined by hand, not normalised.
    return `${holder.dir}/${f.stored}`;
  }

  readDocument(relativePath: string): string {
    const p = resolve(this.dir, relativePath);
    if (!isWithin(p, this.dir)) throw new VssError('VSS_E_CORRUPT_XML_DOCUMENT', `the manifest names the document ${relativePath}, outside the backup`);
    try {
      return readFileSync(p, 'utf8');
    } catch (e) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the backup ${this.dir} is missing ${relativePath}`, { cause: e });
    }
  }

  /** Every stored file, checked against its size and checksum. Empty when all is well. */
  verify(onProgress?: (done: number, total: number) => void): VerifyProblem[] {
    const stored = this.manifest.files.filter((f) => f.kind === 'file');
    const buf = Buffer.allocUnsafe(1 << 20);
    const problems: VerifyProblem[] = [];
    stored.forEach((f, i) => {
      const path = this.storedPathOrProblem(f);
      const p = typeof path === 'string' ? this.checkStored(f, path, hashFile(path, buf)) : path;
      if (p) problems.push(p);
      onProgress?.(i + 1, stored.length);
    });
    return problems;
  }

  /** The same check, hashing on every core. */
  async verifyWith(pool: CopyPool, onProgress?: (done: number, total: number, bytes: number) => void): Promise<VerifyProblem[]> {
    const stored = this.manifest.files.filter((f) => f.kind === 'file');
    const problems: (VerifyProblem & { i: number })[] = [];
    let done = 0;
    const checks: Promise<void>[] = [];
    // The files of one stored directory go as one job (up to MANY_FILES of them): the workers answer
    // by column and this thread handles a run, not each file.
    let run: { dir: string; names: string[]; at: number[] } | undefined;
    const send = (): void => {
      if (!run) return;
      const { dir, names, at } = run;
      run = undefined;
      checks.push(
        pool.submit({ op: 'hashMany', dir, names }).then((r) => {
          const c = r.column;
          // A job with no answer (its worker died) failed for each of its files.
          const failed = new Map(c ? c.errors.map(([i, code, message]) => [i, { code, message }]) : names.map((_, i) => [i, r.error ?? { code: 'EIO', message: 'no answer' }]));
          let bytes = 0;
          at.forEach((fi, i) => {
            const f = stored[fi]!;
            const path = `${dir}/${names[i]}`;
            const p = this.checkStored(f, path, failed.get(i) ?? { size: c!.size[i]!, sha256: c!.sha256!.slice(i * 64, i * 64 + 64) });
            if (p) problems.push({ ...p, i: fi });
            bytes += c?.size[i] ?? 0;
          });
          done += names.length;
          onProgress?.(done, stored.length, bytes);
        }),
      );
    };
    stored.forEach((f, i) => {
      const path = this.storedPathOrProblem(f);
      if (typeof path !== 'string') {
        problems.push({ ...path, i });
        return;
      }
      const cut = path.lastIndexOf('/');
      const dir = path.slice(0, cut);
      if (run && (run.dir !== dir || run.names.length >= MANY_FILES)) send();
      run ??= { dir, names: [], at: [] };
      run.names.push(path.slice(cut + 1));
      run.at.push(i);
    });
    send();
    pool.flush();
    await Promise.all(checks);
    // In manifest order, whatever order the workers answered in.
    return problems.sort((a, b) => a.i - b.i).map(({ path, problem }) => ({ path, problem }));
  }

  /** Where a file's content is stored, or why that cannot be said. */
  private storedPathOrProblem(f: ManifestFile): string | VerifyProblem {
    try {
      return this.storedPath(f);
    } catch (e) {
      return { path: f.path, problem: (e as Error).message };
    }
  }

  /** What was measured of the stored copy at `path` (or why it could not be read) against the manifest. */
  private checkStored(f: ManifestFile, path: string, m: { size: number; sha256: string } | { code: string; message: string }): VerifyProblem | undefined {
    if ('code' in m) {
      return { path: f.path, problem: m.code === 'ENOENT' ? `its stored copy ${path} is missing` : `its stored copy ${path} could not be read (${m.code}: ${m.message})` };
    }
    if (m.size !== f.size) return { path: f.path, problem: `its stored copy has ${m.size} bytes, the manifest says ${f.size}` };
    if (m.sha256 !== f.sha256) return { path: f.path, problem: 'its stored copy does not match its checksum: it was altered or damaged' };
    return undefined;
  }

  /** The backup-set entries of writers' components, for computing a restore set. */
  entries(): BackupSetEntry[] {
    return this.manifest.files.filter((f) => f.entry).map((f) => f.entry!);
  }

  /** Reads content back for the restore executor. */
  source(): RestoreSource {
    return {
      contentPath: (entry) => {
        const f = this.byPath.get(entry.path);
        if (!f) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `${entry.path} is not in the backup ${this.dir}`);
        if (f.kind === 'symlink') throw new VssError('E_INVALIDARG', `${entry.path} is a symlink; use its link target`);
        return this.storedPath(f);
      },
      attributes: (entry) => {
        const f = this.byPath.get(entry.path);
        return f ? { uid: f.uid, gid: f.gid, atimeMs: f.atimeMs } : undefined;
      },
      linkTarget: (entry) => this.byPath.get(entry.path)?.linkTarget,
    };
  }
}

function hashFile(path: string, buf: Buffer): { size: number; sha256: string } | { code: string; message: string } {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const hash = createHash('sha256');
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      size += n;
    }
    return { size, sha256: hash.digest('hex') };
  } catch (e) {
    return { code: (e as NodeJS.ErrnoException).code ?? 'EIO', message: (e as Error).message };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The manifest is untrusted: its shape and every path in it are checked before use. */
function checkManifest(m: BackupManifest, dir: string): void {
  const bad = (what: string): never => {
    throw new VssError('VSS_E_CORRUPT_XML_DOCUMENT', `the manifest of ${dir} is damaged: ${what}`);
  };
  if (typeof m !== 'object' || m === null) bad('it is not an object');
  if (m.format !== BACKUP_FORMAT) bad(`its format is ${JSON.stringify(m.format)}, expected ${BACKUP_FORMAT}`);
  if (typeof m.id !== 'string' || !Array.isArray(m.files) || !Array.isArray(m.chain) || !Array.isArray(m.writers) || !Array.isArray(m.components)) bad('a required field is missing');
  for (const f of m.files) {
    if (typeof f.path !== 'string' || !isPlainAbsolute(f.path)) bad(`the path ${JSON.stringify(f.path)} is not a plain absolute path`);
    if (!['file', 'dir', 'symlink'].includes(f.kind)) bad(`${f.path} has the kind ${JSON.stringify(f.kind)}`);
    if (f.stored !== undefined && (typeof f.stored !== 'string' || f.stored.startsWith('/') || f.stored.split('/').includes('..'))) bad(`${f.path} is stored at ${JSON.stringify(f.stored)}, outside the backup`);
    if (f.kind === 'file' && (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256))) bad(`${f.path} has no valid checksum`);
    if (f.entry && f.entry.path !== f.path) bad(`${f.path} carries the backup-set entry of ${f.entry.path}`);
  }
}
