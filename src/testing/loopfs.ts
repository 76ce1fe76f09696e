// Real filesystems for tests: an image file under os.tmpdir(), formatted, attached to a loop
// device and mounted. Cleanup is synchronous so it can also run from an `exit` handler:
// whatever a failing test leaves, nothing stays mounted or attached.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type LoopFsType = 'btrfs' | 'xfs' | 'ext4';

/** Smallest images the tools accept (mkfs.xfs refuses under 300 MB, mkfs.btrfs under ~110 MB). */
export const MIN_IMAGE_MB: Record<LoopFsType, number> = { btrfs: 128, xfs: 300, ext4: 16 };

export interface LoopFs {
  fsType: LoopFsType;
  /** The mkdtemp directory holding the image, the mount point and anything else a test puts there. */
  dir: string;
  image: string;
  device: string;
  mountPoint: string;
  /** Unmounts everything under `dir`, detaches the loop device, removes `dir`. Idempotent. */
  cleanup(): void;
}

const live = new Set<LoopFs>();
let exitHookInstalled = false;

function sh(cmd: string, args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

function must(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.err.trim()}`);
  return r.out;
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']).some((d) => d && existsSync(join(d, tool)));
}

/** Why a loop filesystem of this type cannot be made here, or undefined when it can. */
export function loopFsUnavailable(fsType: LoopFsType): string | undefined {
  if (process.platform !== 'linux') return 'loop filesystems need Linux';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root (losetup, mount)';
  const missing = ['losetup', 'mount', 'umount', `mkfs.${fsType}`, ...(fsType === 'btrfs' ? ['btrfs'] : [])].filter((t) => !onPath(t));
  if (missing.length) {
    const pkg = { btrfs: 'btrfs-progs', xfs: 'xfsprogs', ext4: 'e2fsprogs' }[fsType];
    return `missing tool(s) ${missing.join(', ')} (Debian: apt-get install util-linux mount ${pkg})`;
  }
  if (!existsSync('/dev/loop-control')) return 'no /dev/loop-control: loop devices are not available (kernel module loop, or a container without them)';
  return undefined;
}

/** Paths mounted at or under `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const p = mp.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (p === dir || p.startsWith(`${dir}/`)) out.push(p);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Makes, attaches and mounts a fresh filesystem. Call `cleanup()` in a finally or `after` hook. */
export function makeLoopFs(fsType: LoopFsType, opts: { sizeMb?: number; mkfsArgs?: string[] } = {}): LoopFs {
  const why = loopFsUnavailable(fsType);
  if (why) throw new Error(`cannot make a ${fsType} loop filesystem: ${why}`);
  const dir = mkdtempSync(join(tmpdir(), `shadowcopy-${fsType}-`));
  const image = join(dir, `${fsType}.img`);
  const mountPoint = join(dir, 'mnt');
  const fs: LoopFs = { fsType, dir, image, device: '', mountPoint, cleanup: () => cleanupLoopFs(fs) };
  live.add(fs);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const f of live) cleanupLoopFs(f);
    });
  }
  try {
    const fd = openSync(image, 'w');
    ftruncateSync(fd, Math.max(opts.sizeMb ?? MIN_IMAGE_MB[fsType], MIN_IMAGE_MB[fsType]) * 1024 * 1024);
    closeSync(fd);
    const force = fsType === 'ext4' ? '-F' : '-f';
    must(`mkfs.${fsType}`, ['-q', force, ...(opts.mkfsArgs ?? []), image]);
    fs.device = must('losetup', ['--find', '--show', image]).trim();
    mkdirSync(mountPoint);
    must('mount', [fs.device, mountPoint]);
    return fs;
  } catch (e) {
    cleanupLoopFs(fs);
    throw e;
  }
}

function cleanupLoopFs(fs: LoopFs): void {
  for (const mp of mountsUnder(fs.dir)) {
    if (!sh('umount', [mp]).ok) sh('umount', ['-l', mp]);
  }
  if (fs.device) {
    // Retry briefly: the kernel may hold the device a moment after a lazy unmount.
    for (let i = 0; i < 20 && !sh('losetup', ['-d', fs.device]).ok; i++) spawnSync('sleep', ['0.1']);
    fs.device = '';
  }
  rmSync(fs.dir, { recursive: true, force: true });
  live.delete(fs);
}

/** Loop devices currently backed by a file under `dir` (to check that tests detached theirs). */
export function loopDevicesUnder(dir: string): string[] {
  const r = sh('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE']);
  return r.out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 2 && f[1]!.startsWith(`${dir}/`))
    .map((f) => f[0]!);
}
