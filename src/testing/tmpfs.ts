// A tmpfs volume for tests: a real mounted filesystem the copy provider snapshots, cheap
// to make. Needs root; `tmpfsUnavailable()` says why not otherwise. Always unmounted, even
// when the test fails or the process exits early.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TmpfsVolume {
  /** The mkdtemp directory holding the mount point (and anything else the test puts there). */
  dir: string;
  mountPoint: string;
  cleanup(): void;
}

const live = new Set<TmpfsVolume>();
process.once('exit', () => {
  for (const v of live) v.cleanup();
});

export function tmpfsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'tmpfs volumes need Linux';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs volume needs root';
  return undefined;
}

export function makeTmpfs(sizeMb = 64): TmpfsVolume {
  const dir = mkdtempSync(join(tmpdir(), 'shadowcopy-tmpfs-'));
  const mountPoint = join(dir, 'vol');
  mkdirSync(mountPoint);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'shadowcopy-test', mountPoint], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`mount -t tmpfs failed: ${r.stderr}`);
  }
  const v: TmpfsVolume = {
    dir,
    mountPoint,
    cleanup() {
      if (!live.has(v)) return;
      live.delete(v);
      // Anything mounted below (an exposed snapshot) goes first.
      const mounts = spawnSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).stdout.split('\n').filter((m) => m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
      for (const m of mounts) if (spawnSync('umount', [m]).status !== 0) spawnSync('umount', ['-l', m]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(v);
  return v;
}
