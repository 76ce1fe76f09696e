// The FileTree of src/vss read from real snapshot directories. Each snapshot is the
// content of one volume: a document path under the volume's mount point is read from the
// same relative place under the snapshot's root directory.
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { VssError } from '../vss/errors.js';
import type { FileTree, FileTreeEntry } from '../vss/selection/index.js';
import { normalizePath } from '../vss/selection/index.js';

export interface SnapshotMount {
  /** Where the volume is mounted on the live system (the prefix document paths use). */
  volume: string;
  /** The directory where the snapshot's content of that volume is visible. */
  snapshotRoot: string;
}

export class FsFileTree implements FileTree {
  private readonly mounts: { volume: string; root: string }[];

  /** One snapshot root for the whole namespace (`/`), or one per volume. */
  constructor(mounts: string | readonly SnapshotMount[]) {
    const list = typeof mounts === 'string' ? [{ volume: '/', snapshotRoot: mounts }] : mounts;
    // Longest mount point first: a nested volume wins over the one it is mounted on.
    this.mounts = list
      .map((m) => ({ volume: normalizePath('the volume', m.volume), root: m.snapshotRoot }))
      .sort((a, b) => b.volume.length - a.volume.length);
  }

  /** The real path of a document path, or undefined when it is on no volume of the snapshot set. */
  resolve(path: string): string | undefined {
    for (const m of this.mounts) {
      if (path === m.volume) return m.root;
      const prefix = m.volume === '/' ? '/' : `${m.volume}/`;
      if (path.startsWith(prefix)) return join(m.root, path.slice(prefix.length));
    }
    return undefined;
  }

  list(path: string): readonly FileTreeEntry[] | undefined {
    const real = this.resolve(path);
    if (real === undefined) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `"${path}" is on no volume of the snapshot set; add its volume to the snapshot set`);
    }
    let names: string[];
    try {
      names = readdirSync(real);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw new VssError('E_ACCESSDENIED', `cannot read the snapshot directory "${real}" (for "${path}"): ${(e as Error).message}`, { cause: e });
    }
    const out: FileTreeEntry[] = [];
    for (const name of names) {
      let st;
      try {
        st = lstatSync(join(real, name));
      } catch (e) {
        // Gone between readdir and lstat: a snapshot is read-only, so only a broken one does this.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : undefined;
      // Sockets, FIFOs and devices are not file content; they are never part of a backup set.
      if (!kind) continue;
      out.push({ name, kind, size: kind === 'dir' ? 0 : st.size, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs });
    }
    return out;
  }
}
