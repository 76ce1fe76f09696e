// The three providers. btrfs: a subvolume snapshot, atomic and O(1). reflink and copy: a
// tree built before the freeze and brought up to date during it (see tree.ts), with FICLONE
// (shares extents, no data copied) or with a byte copy.
import { promises as fsp, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { VssError } from '../vss/errors.js';
import { SnapshotState, VolumeSnapshotAttributes } from '../vss/enums.js';
import { PROVIDER_IDS, type ProviderName } from '../vss/snapshot.js';
import { exposeReadOnly, unmount } from './expose.js';
import { removeSnapshotPath } from './store.js';
import { fsError, hasTool, isRoot, run, type VolumeInfo } from './system.js';
import { ChangeJournal, journalUnavailable } from './journal.js';
import { excludedFileMatcher, removeExcludedFiles, syncTree, wholeTreesExcluded, type Manifest, type SyncStats, type TreeOptions } from './tree.js';
import type { SnapshotJob, SnapshotProvider, VolumeSupport } from './types.js';

/** Like Promise.all, but returns only once every promise settled: nothing runs on after a failure. */
async function settleAll(promises: (Promise<unknown> | undefined)[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

const yes: VolumeSupport = { supported: true, reason: '' };
const no = (reason: string): VolumeSupport => ({ supported: false, reason });

/** Writers' exclusions apply unless the requester asked for no auto-recovery. */
function exclusionsApply(job: SnapshotJob): boolean {
  return job.excludeFromSnapshot.length > 0 && (job.attributes & VolumeSnapshotAttributes.NO_AUTORECOVERY) === 0;
}

abstract class BaseProvider implements SnapshotProvider {
  abstract readonly name: ProviderName;
  get id() {
    return PROVIDER_IDS[this.name];
  }

  abstract isVolumeSupported(volume: VolumeInfo): Promise<VolumeSupport>;
  abstract beginPrepareSnapshot(job: SnapshotJob): Promise<void>;
  abstract endPrepareSnapshots(jobs: readonly SnapshotJob[]): Promise<void>;
  abstract commitSnapshots(jobs: readonly SnapshotJob[], signal: AbortSignal): Promise<void>;
  abstract postCommitSnapshots(jobs: readonly SnapshotJob[]): Promise<void>;

  async preCommitSnapshots(jobs: readonly SnapshotJob[]): Promise<void> {
    // Nothing to flush ahead of time; check the ground is still there before writers freeze.
    for (const job of jobs) {
      try {
        await fsp.access(job.volume.root);
      } catch (e) {
        throw fsError(e, `the volume ${job.volume.root}`);
      }
      job.state = SnapshotState.PRECOMMITTED;
    }
  }

  async abortSnapshots(jobs: readonly SnapshotJob[]): Promise<void> {
    const errors: unknown[] = [];
    for (const job of jobs) {
      try {
        await this.abortWork(job);
        await removeSnapshotPath(job.snapshotPath);
        job.state = SnapshotState.ABORTED;
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw errors[0];
  }

  /** Stops and waits for any work still running for the job. */
  protected async abortWork(_job: SnapshotJob): Promise<void> {}

  async deleteSnapshot(snapshotPath: string): Promise<void> {
    await removeSnapshotPath(snapshotPath);
  }

  async querySnapshot(snapshotPath: string): Promise<boolean> {
    try {
      return (await fsp.stat(snapshotPath)).isDirectory();
    } catch {
      return false;
    }
  }

  exposeSnapshot(snapshotPath: string, target: string): Promise<string> {
    return exposeReadOnly(snapshotPath, target);
  }

  unexposeSnapshot(target: string): Promise<void> {
    return unmount(target);
  }
}

interface BtrfsWork {
  /** Taken writable, fixed up in post-commit, then made read-only. */
  writable: boolean;
}

export class BtrfsProvider extends BaseProvider {
  readonly name = 'btrfs' as const;

  async isVolumeSupported(v: VolumeInfo): Promise<VolumeSupport> {
    if (v.fsType !== 'btrfs') return no(`${v.root} is on ${v.fsType}, not btrfs`);
    if (!v.isBtrfsSubvolume) return no(`${v.root} is not a btrfs subvolume`);
    if (v.readOnly) return no(`${v.mountPoint} is mounted read-only; the snapshot store needs a writable btrfs`);
    if (!hasTool('btrfs')) return no('the btrfs tool is not installed (Debian: apt-get install btrfs-progs)');
    if (!isRoot()) return no('btrfs snapshots need root');
    return yes;
  }

  async beginPrepareSnapshot(job: SnapshotJob): Promise<void> {
    const work: BtrfsWork = { writable: exclusionsApply(job) || job.storeInsideVolume !== undefined };
    job.work = work;
    job.state = SnapshotState.PREPARING;
  }

  async endPrepareSnapshots(jobs: readonly SnapshotJob[]): Promise<void> {
    for (const job of jobs) job.state = SnapshotState.PREPARED;
  }

  async commitSnapshots(jobs: readonly SnapshotJob[], signal: AbortSignal): Promise<void> {
    // One `btrfs subvolume snapshot` per volume, all at once: each is atomic for its subvolume.
    await settleAll(
      jobs.map(async (job) => {
        if (signal.aborted) throw signal.reason;
        job.state = SnapshotState.PROCESSING_COMMIT;
        const ro = (job.work as BtrfsWork).writable ? [] : ['-r'];
        await run('btrfs', ['subvolume', 'snapshot', ...ro, job.volume.root, job.snapshotPath], `snapshotting ${job.volume.root}`);
        job.state = SnapshotState.COMMITTED;
      }),
    );
  }

  async postCommitSnapshots(jobs: readonly SnapshotJob[]): Promise<void> {
    for (const job of jobs) {
      job.state = SnapshotState.PROCESSING_POSTCOMMIT;
      if ((job.work as BtrfsWork).writable) {
        try {
          if (job.storeInsideVolume !== undefined) {
            // The store is a subvolume, so the snapshot holds only its empty placeholder.
            rmdirSync(join(job.snapshotPath, job.storeInsideVolume));
          }
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, `tidying the snapshot ${job.snapshotPath}`);
        }
        if (exclusionsApply(job)) removeExcludedFiles(job.snapshotPath, job.volume.root, job.excludeFromSnapshot);
        await run('btrfs', ['property', 'set', '-ts', job.snapshotPath, 'ro', 'true'], `making the snapshot ${job.snapshotPath} read-only`);
      }
      job.state = SnapshotState.POSTCOMMITTED;
    }
  }
}

interface TreeWork {
  controller: AbortController;
  pending?: Promise<unknown>;
  manifest?: Manifest;
  /** Started before the prepare scan; tells commit what changed since. */
  journal?: ChangeJournal;
}

/** Shared by reflink and copy: the tree engine with FICLONE or with a byte copy. */
abstract class TreeProvider extends BaseProvider {
  protected abstract readonly clone: boolean;
  /** What the last commit did, by volume root: how many entries it looked at, copied, and whether the journal served (for tests and benchmarks). */
  readonly lastCommitStats = new Map<string, SyncStats>();

  private skipFor(job: SnapshotJob): ((rel: string) => boolean) | undefined {
    const inside = job.storeInsideVolume;
    return inside === undefined ? undefined : (rel) => rel === inside;
  }

  private treeOptions(job: SnapshotJob, signal: AbortSignal): TreeOptions {
    const excludeFile = exclusionsApply(job) ? excludedFileMatcher(job.volume.root, job.excludeFromSnapshot) : undefined;
    return { clone: this.clone, skip: this.skipFor(job), signal, ...(excludeFile ? { excludeFile } : {}) };
  }

  async beginPrepareSnapshot(job: SnapshotJob): Promise<void> {
    const work: TreeWork = { controller: new AbortController() };
    job.work = work;
    job.state = SnapshotState.PROCESSING_PREPARE;
    // Started here and awaited in endPrepareSnapshots, so several volumes copy at once.
    // The journal is watching before the scan starts, so no change after the scan is lost.
    const pending = (async () => {
      if (!journalUnavailable(job.volume)) {
        const storeDir = dirname(job.snapshotPath);
        work.journal = await ChangeJournal.start({
          root: job.volume.root,
          sentinelDir: dirname(storeDir),
          sentinelName: job.snapshotId.toString(),
          exclude: [storeDir],
          unwatched: exclusionsApply(job) ? wholeTreesExcluded(job.volume.root, job.excludeFromSnapshot) : [],
          signal: work.controller.signal,
        });
      }
      const r = await syncTree(job.volume.root, job.snapshotPath, undefined, this.treeOptions(job, work.controller.signal));
      work.manifest = r.manifest;
    })();
    pending.catch(() => undefined); // reported by endPrepareSnapshots
    work.pending = pending;
  }

  async endPrepareSnapshots(jobs: readonly SnapshotJob[]): Promise<void> {
    await settleAll(jobs.map((j) => (j.work as TreeWork).pending));
    for (const job of jobs) job.state = SnapshotState.PREPARED;
  }

  async commitSnapshots(jobs: readonly SnapshotJob[], signal: AbortSignal): Promise<void> {
    await settleAll(
      jobs.map(async (job) => {
        const work = job.work as TreeWork;
        if (!work.manifest) throw new VssError('VSS_E_BAD_STATE', `the snapshot of ${job.volume.root} was not prepared; call endPrepareSnapshots first`);
        job.state = SnapshotState.PROCESSING_COMMIT;
        try {
          await fsp.access(job.snapshotPath);
        } catch (e) {
          throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the prepared snapshot directory ${job.snapshotPath} vanished before commit; make the snapshot set again`, { cause: e });
        }
        const pending = syncTree(job.volume.root, job.snapshotPath, work.manifest, { ...this.treeOptions(job, signal), journal: work.journal });
        work.pending = pending;
        try {
          this.lastCommitStats.set(job.volume.root, (await pending).stats);
        } finally {
          work.journal?.close();
        }
        work.manifest = undefined; // no longer needed: free it
        job.state = SnapshotState.COMMITTED;
      }),
    );
  }

  async postCommitSnapshots(jobs: readonly SnapshotJob[]): Promise<void> {
    for (const job of jobs) {
      // Nothing to remove: syncTree never copied the excluded files (see excludedFileMatcher).
      job.state = SnapshotState.PROCESSING_POSTCOMMIT;
      job.state = SnapshotState.POSTCOMMITTED;
    }
  }

  protected override async abortWork(job: SnapshotJob): Promise<void> {
    const work = job.work as TreeWork | undefined;
    if (!work) return;
    work.controller.abort(new VssError('VSS_E_UNEXPECTED', 'snapshot creation was aborted'));
    await work.pending?.catch(() => undefined);
    work.journal?.close();
  }
}

// Per filesystem: a probe is a few syscalls but the answer never changes while mounted.
const cloneProbes = new Map<string, Promise<boolean>>();

async function probeClone(v: VolumeInfo): Promise<boolean> {
  const key = `${v.source}\0${v.mountPoint}`;
  let p = cloneProbes.get(key);
  if (!p) {
    p = (async () => {
      const a = join(v.mountPoint, `.shadowcopy-probe-${process.pid}-${Date.now()}`);
      const b = `${a}.clone`;
      try {
        await fsp.writeFile(a, 'probe');
        await fsp.copyFile(a, b, fsp.constants.COPYFILE_FICLONE_FORCE);
        return true;
      } catch {
        return false;
      } finally {
        await fsp.rm(a, { force: true });
        await fsp.rm(b, { force: true });
      }
    })();
    cloneProbes.set(key, p);
  }
  return p;
}

export class ReflinkProvider extends TreeProvider {
  readonly name = 'reflink' as const;
  protected readonly clone = true;

  async isVolumeSupported(v: VolumeInfo): Promise<VolumeSupport> {
    if (v.readOnly) return no(`${v.mountPoint} is mounted read-only; the snapshot store needs a writable filesystem`);
    if (!(await probeClone(v))) return no(`${v.fsType} at ${v.mountPoint} cannot clone files (no FICLONE/reflink support)`);
    return yes;
  }
}

export class CopyProvider extends TreeProvider {
  readonly name = 'copy' as const;
  protected readonly clone = false;

  async isVolumeSupported(v: VolumeInfo): Promise<VolumeSupport> {
    if (v.readOnly) return no(`${v.mountPoint} is mounted read-only; the snapshot store needs a writable filesystem`);
    return yes;
  }
}

export function createProviders(): Record<ProviderName, SnapshotProvider> {
  return { btrfs: new BtrfsProvider(), reflink: new ReflinkProvider(), copy: new CopyProvider() };
}

/**
 * The automatic choice (btrfs subvolume → btrfs, reflink-capable → reflink, else copy), or
 * the forced one, which must support the volume (VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER).
 */
export async function chooseProvider(
  providers: Record<ProviderName, SnapshotProvider>,
  volume: VolumeInfo,
  forced?: ProviderName,
): Promise<SnapshotProvider> {
  if (forced) {
    const p = providers[forced];
    const s = await p.isVolumeSupported(volume);
    if (!s.supported) throw new VssError('VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER', `the ${forced} provider cannot snapshot ${volume.root}: ${s.reason}; choose another provider or let shadowcopy choose`);
    return p;
  }
  const reasons: string[] = [];
  for (const name of ['btrfs', 'reflink', 'copy'] as const) {
    const s = await providers[name].isVolumeSupported(volume);
    if (s.supported) return providers[name];
    reasons.push(`${name}: ${s.reason}`);
  }
  throw new VssError('VSS_E_VOLUME_NOT_SUPPORTED', `no provider can snapshot ${volume.root} (${reasons.join('; ')})`);
}
