// Small file-system helpers the backup layer shares: durability and path containment.
import { closeSync, constants, fsyncSync, lstatSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { launch } from '../os/launcher.js';

export function fsyncPath(path: string): void {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** write, fsync, rename, fsync the directory: after a crash the file is whole or absent. */
export function writeDurably(path: string, data: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o600 });
  fsyncPath(tmp);
  renameSync(tmp, path);
  fsyncPath(dirname(path));
}

export function exists(path: string): boolean {
  try {
    // No exception for the common "not there": building one costs more than the lstat.
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

// A `//`, or a `.` or `..` segment: what posix.normalize would change in an absolute path.
const UNNORMALISED = /\/\/|\/\.\.?(?:\/|$)/;

/**
 * `path` is absolute and normalised (no `//`, `.` or `..` segment, no trailing `/`): the
 * same answer as `posix.normalize(path) === path` for an absolute path, without building one.
 */
export function isPlainAbsolute(path: string): boolean {
  return path.startsWith('/') && (path === '/' || (!path.endsWith('/') && !UNNORMALISED.test(path)));
}

/** `path` is `root` or below it. */
export function isWithin(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/**
 * Flushes the file systems holding these paths (syncfs, via coreutils `sync -f`): one call
 * per file system makes everything written there durable, instead of an fsync per file.
 * Run through the launcher's shell: forking this process for each would cost more than the
 * flush of a small restore.
 */
export async function syncFileSystems(paths: Iterable<string>): Promise<void> {
  const byDevice = new Map<number, string>();
  for (const p of paths) {
    let dev: number;
    try {
      dev = lstatSync(p).dev;
    } catch {
      continue;
    }
    if (!byDevice.has(dev)) byDevice.set(dev, p);
  }
  await Promise.all(
    [...byDevice.values()].map(async (p) => {
      const r = await launch('sync', ['-f', p]);
      if (r.notFound) throw new Error('sync -f: the sync tool (coreutils) is not installed');
      if (r.code !== 0) throw new Error(`sync -f ${p} failed: ${(r.stderr || `signal ${r.signal ?? r.code}`).trim()}`);
    }),
  );
}
