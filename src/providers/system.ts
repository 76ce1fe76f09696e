// What the providers ask of the system: which filesystem holds a path, where it is mounted,
// which btrfs subvolume it is in, and running the few tools Node cannot replace (btrfs,
// mount). Errors from the system are turned into VSS errors here, once.
import { constants, promises as fsp, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { launch, type LaunchResult } from '../os/launcher.js';
import { VssError, type VssErrorName } from '../vss/errors.js';

/** One line of /proc/self/mountinfo. */
export interface MountEntry {
  mountPoint: string;
  /** Path inside the filesystem that is mounted here (a bind mount or subvol= gives more than `/`). */
  root: string;
  fsType: string;
  source: string;
  options: string[];
}

/** A volume: a mounted filesystem or btrfs subvolume, named by any path on it. */
export interface VolumeInfo {
  /** The path the caller named, resolved (symlinks followed). */
  path: string;
  /** The volume's root: the btrfs subvolume holding `path`, else the mount point. */
  root: string;
  /** Mount point of the filesystem holding the volume. */
  mountPoint: string;
  fsType: string;
  source: string;
  readOnly: boolean;
  /** True when `root` is a btrfs subvolume (every btrfs volume is). */
  isBtrfsSubvolume: boolean;
  /** st_dev of the volume root: tree walks do not leave it. */
  dev: bigint;
}

// Filesystems that hold no user data of their own: never a volume.
const PSEUDO_FILESYSTEMS = new Set([
  'proc', 'sysfs', 'devtmpfs', 'devpts', 'cgroup', 'cgroup2', 'securityfs', 'debugfs', 'tracefs',
  'pstore', 'bpf', 'configfs', 'fusectl', 'mqueue', 'hugetlbfs', 'binfmt_misc', 'autofs', 'efivarfs', 'nsfs',
]);

/** First inode number of every btrfs subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID). */
const BTRFS_SUBVOLUME_ROOT_INO = 256n;

function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function readMounts(): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (dash < 0 || f.length < dash + 3) continue;
    out.push({
      root: unescapeMountField(f[3]!),
      mountPoint: unescapeMountField(f[4]!),
      options: f[5]!.split(','),
      fsType: f[dash + 1]!,
      source: unescapeMountField(f[dash + 2]!),
    });
  }
  return out;
}

export function isWithin(child: string, parent: string): boolean {
  const r = relative(parent, child);
  return r === '' || (!r.startsWith('..') && !r.startsWith(sep) && r !== '..');
}

/** The mount a path is on: the longest mount point containing it, the last mounted when stacked. */
export function mountOf(realPath: string, mounts = readMounts()): MountEntry {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    if (!isWithin(realPath, m.mountPoint)) continue;
    if (!best || m.mountPoint.length >= best.mountPoint.length) best = m;
  }
  if (!best) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `no mounted filesystem holds ${realPath}; mount it first`);
  return best;
}

/** True when `path` is itself a mount point (our expose targets are). */
export function isMountPoint(path: string): boolean {
  const p = resolve(path);
  return readMounts().some((m) => m.mountPoint === p);
}

/** Resolves the volume a path names. VSS_E_OBJECT_NOT_FOUND when the path does not exist. */
export async function resolveVolume(path: string): Promise<VolumeInfo> {
  let real: string;
  try {
    real = await fsp.realpath(path);
  } catch (e) {
    throw fsError(e, `the volume path ${path}`);
  }
  const st = await fsp.stat(real, { bigint: true });
  if (!st.isDirectory()) {
    throw new VssError('VSS_E_VOLUME_NOT_SUPPORTED', `${path} is not a directory; name a mount point, a btrfs subvolume or a directory on one`);
  }
  const mount = mountOf(real);
  if (PSEUDO_FILESYSTEMS.has(mount.fsType)) {
    throw new VssError('VSS_E_VOLUME_NOT_SUPPORTED', `${path} is on ${mount.fsType}, a pseudo filesystem with no data to snapshot`);
  }
  let root = mount.mountPoint;
  let isBtrfsSubvolume = false;
  if (mount.fsType === 'btrfs') {
    // Climb to the subvolume's root directory; the mount point is always one.
    let p = real;
    while (p !== mount.mountPoint && statSync(p, { bigint: true }).ino !== BTRFS_SUBVOLUME_ROOT_INO) p = dirname(p);
    root = p;
    isBtrfsSubvolume = statSync(p, { bigint: true }).ino === BTRFS_SUBVOLUME_ROOT_INO;
  }
  const rootStat = await fsp.stat(root, { bigint: true });
  return {
    path: real,
    root,
    mountPoint: mount.mountPoint,
    fsType: mount.fsType,
    source: mount.source,
    readOnly: mount.options.includes('ro'),
    isBtrfsSubvolume,
    dev: rootStat.dev,
  };
}

/** True when `path` is the root of a btrfs subvolume. */
export function isBtrfsSubvolumeRoot(path: string): boolean {
  try {
    const st = statSync(path, { bigint: true });
    return st.isDirectory() && st.ino === BTRFS_SUBVOLUME_ROOT_INO && mountOf(resolve(path)).fsType === 'btrfs';
  } catch {
    return false;
  }
}

/** The errno code of a Node system error, if it is one. */
export function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

/** A filesystem failure as the VSS error a requester can act on. */
export function fsError(e: unknown, what: string): VssError {
  if (VssError.is(e)) return e;
  const code = errnoOf(e);
  const msg = e instanceof Error ? e.message : String(e);
  const map: Record<string, [VssErrorName, string]> = {
    ENOENT: ['VSS_E_OBJECT_NOT_FOUND', `${what} does not exist (${msg}); check the path`],
    ENOTDIR: ['VSS_E_OBJECT_NOT_FOUND', `${what} does not exist (${msg}); check the path`],
    ENOSPC: ['VSS_E_INSUFFICIENT_STORAGE', `no space left for ${what} (${msg}); free space on the volume and retry`],
    EDQUOT: ['VSS_E_INSUFFICIENT_STORAGE', `disk quota exceeded for ${what} (${msg}); raise the quota or free space and retry`],
    EACCES: ['E_ACCESSDENIED', `permission denied for ${what} (${msg}); run as root`],
    EPERM: ['E_ACCESSDENIED', `operation not permitted for ${what} (${msg}); run as root`],
    EROFS: ['VSS_E_VOLUME_NOT_SUPPORTED', `${what} is on a read-only filesystem (${msg}); snapshots need a writable volume`],
  };
  const hit = code ? map[code] : undefined;
  if (hit) return new VssError(hit[0], hit[1], { cause: e });
  return new VssError('VSS_E_UNEXPECTED_PROVIDER_ERROR', `${what} failed: ${msg}`, { cause: e });
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a tool; a failure becomes a VssError naming the command and what it printed. */
export async function run(cmd: string, args: readonly string[], what: string): Promise<RunResult> {
  let r: LaunchResult;
  try {
    r = await launch(cmd, args);
  } catch (e) {
    throw new VssError('VSS_E_UNEXPECTED_PROVIDER_ERROR', `${what}: ${cmd} could not be started: ${(e as Error).message}`, { cause: e });
  }
  if (r.code === 0) return { stdout: r.stdout, stderr: r.stderr };
  if (r.notFound) throw new VssError('VSS_E_PROVIDER_NOT_REGISTERED', `${what}: the tool "${cmd}" is not installed; install it (Debian: ${toolPackage(cmd)})`);
  const text = `${cmd} ${args.join(' ')}: ${r.stderr.trim() || (r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`)}`;
  if (/no space left|ENOSPC/i.test(text)) throw new VssError('VSS_E_INSUFFICIENT_STORAGE', `${what}: ${text}; free space on the volume and retry`);
  if (/operation not permitted|permission denied/i.test(text)) throw new VssError('E_ACCESSDENIED', `${what}: ${text}; run as root`);
  throw new VssError('VSS_E_UNEXPECTED_PROVIDER_ERROR', `${what}: ${text}`);
}

function toolPackage(cmd: string): string {
  return cmd === 'btrfs' ? 'apt-get install btrfs-progs' : cmd === 'mount' || cmd === 'umount' ? 'apt-get install mount' : `the package providing ${cmd}`;
}

/** Whether an executable is on PATH (no process is started). */
export function hasTool(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    try {
      statSync(join(dir, cmd));
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** fsync a directory, so a rename or unlink in it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await fsp.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
