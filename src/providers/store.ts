// Where snapshots live: `<mount point>/.shadowcopy/snapshots/<snapshotId>` on the volume's
// own filesystem. btrfs can only snapshot into the same filesystem and FICLONE only clones
// within one, so the store must be there; the mount point is the one directory of that
// filesystem we always know to be ours to write. On btrfs the `.shadowcopy` directory is
// itself a subvolume, so a snapshot of the subvolume holding it shows only an empty
// placeholder (removed before the snapshot is made read-only); the tree providers skip it.
import { lstatSync, promises as fsp, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fsError, isBtrfsSubvolumeRoot, isWithin, run, type VolumeInfo } from './system.js';

export const DEFAULT_STORE_NAME = '.shadowcopy';

export interface SnapshotStore {
  /** `<mount point>/.shadowcopy` */
  top: string;
  /** `<top>/snapshots`: one entry per snapshot, named by its id. */
  dir: string;
}

export function storeFor(volume: VolumeInfo, storeName = DEFAULT_STORE_NAME): SnapshotStore {
  const top = join(volume.mountPoint, storeName);
  return { top, dir: join(top, 'snapshots') };
}

/** The store's top directory relative to the volume root when the volume contains it. */
export function storeInsideVolume(volume: VolumeInfo, store: SnapshotStore): string | undefined {
  return isWithin(store.top, volume.root) ? relative(volume.root, store.top) : undefined;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export async function ensureStore(volume: VolumeInfo, store: SnapshotStore): Promise<void> {
  if (!exists(store.top)) {
    if (volume.fsType === 'btrfs') await run('btrfs', ['subvolume', 'create', store.top], `creating the snapshot store ${store.top}`);
    else {
      try {
        await fsp.mkdir(store.top, { mode: 0o700 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, `creating the snapshot store ${store.top}`);
      }
    }
    // Snapshots may hold any user's files: only root may look inside.
    await fsp.chmod(store.top, 0o700);
  }
  try {
    await fsp.mkdir(store.dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, `creating the snapshot store ${store.dir}`);
  }
}

/** Removes the store once it holds no snapshot, so a volume keeps no trace of us. */
export async function removeStoreIfEmpty(store: SnapshotStore): Promise<void> {
  try {
    await fsp.rmdir(store.dir);
  } catch {
    return; // not empty, or already gone
  }
  try {
    if ((await fsp.readdir(store.top)).length !== 0) return;
  } catch {
    return;
  }
  // rmdir removes an empty btrfs subvolume too (Linux 4.18 and later), without a btrfs process.
  const removed = await fsp.rmdir(store.top).then(() => true, () => false);
  if (!removed && isBtrfsSubvolumeRoot(store.top)) await run('btrfs', ['subvolume', 'delete', store.top], `removing the empty snapshot store ${store.top}`);
}

/** Removes whatever is at a snapshot path: a btrfs subvolume or a directory tree. */
export async function removeSnapshotPath(path: string): Promise<void> {
  if (!exists(path)) return;
  if (isBtrfsSubvolumeRoot(path)) {
    await run('btrfs', ['subvolume', 'delete', path], `deleting the snapshot ${path}`);
    return;
  }
  try {
    rmSync(path, { recursive: true, force: true });
  } catch (e) {
    throw fsError(e, `deleting the snapshot ${path}`);
  }
}
