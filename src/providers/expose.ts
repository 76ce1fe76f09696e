// Expose: a read-only bind mount of a snapshot at an empty directory the user names.
// Two steps because a bind mount ignores `ro` on first mount: bind, then remount read-only.
import { promises as fsp } from 'node:fs';
import { VssError } from '../vss/errors.js';
import { fsError, isMountPoint, run } from './system.js';

export async function exposeReadOnly(snapshotPath: string, target: string): Promise<string> {
  try {
    await fsp.access(snapshotPath);
  } catch (e) {
    throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the snapshot's directory ${snapshotPath} has vanished; delete the snapshot and make a new one`, { cause: e });
  }
  let real: string;
  try {
    real = await fsp.realpath(target);
  } catch (e) {
    throw fsError(e, `the expose target ${target}`);
  }
  const st = await fsp.stat(real);
  if (!st.isDirectory()) throw new VssError('E_INVALIDARG', `the expose target ${target} is not a directory; name an empty directory`);
  if (isMountPoint(real)) throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `something is already mounted at ${target}; unmount it or name another empty directory`);
  if ((await fsp.readdir(real)).length !== 0) {
    throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `the expose target ${target} is not empty; name an empty directory`);
  }
  await run('mount', ['--bind', snapshotPath, real], `exposing ${snapshotPath} at ${target}`);
  try {
    await run('mount', ['-o', 'remount,bind,ro', real], `making the exposed snapshot at ${target} read-only`);
  } catch (e) {
    await unmount(real);
    throw e;
  }
  return real;
}

/** Unmounts an exposed snapshot; lazily when it is busy, so nothing stays mounted. */
export async function unmount(target: string): Promise<void> {
  if (!isMountPoint(target)) return;
  try {
    await run('umount', [target], `unexposing ${target}`);
  } catch {
    await run('umount', ['-l', target], `unexposing ${target} (lazily)`);
  }
}
