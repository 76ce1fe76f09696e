// Provider commit time — the time every writer stays frozen — against the filesystem's own
// tools, on a volume of 10,000 files and 200 MB, each baseline measured in the same run:
//   btrfs provider commit      vs `btrfs subvolume snapshot -r`          goal <= 1.5
//   reflink provider commit    vs `cp -a --reflink=always` (XFS)         goal <= 1.2
//   copy provider commit, 1% of files changed after prepare, vs `cp -a` (ext4)  goal <= 0.1
// The reflink commit is measured with 1% of files changed after prepare too.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { report } from './report.js';
import { SnapshotManager } from '../src/providers/index.js';
import type { SyncStats } from '../src/providers/tree.js';
import type { ProviderName } from '../src/vss/snapshot.js';
import { loopFsUnavailable, makeLoopFs, type LoopFs, type LoopFsType } from '../src/testing/loopfs.js';

const FILES = 10_000;
const FILE_BYTES = 20_000; // 10,000 × 20 kB = 200 MB
const DIRS = 100;
const RUNS = 7;
const CHANGED = FILES / 100;

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

function populate(volume: string): void {
  const pool = randomBytes(FILE_BYTES * 2);
  for (let d = 0; d < DIRS; d++) mkdirSync(join(volume, `d${d}`), { recursive: true });
  for (let i = 0; i < FILES; i++) {
    const off = (i * 7919) % FILE_BYTES;
    writeFileSync(join(volume, `d${i % DIRS}`, `f${i}.bin`), pool.subarray(off, off + FILE_BYTES));
  }
  sh('sync', []);
}

/** Writers at work between prepare and commit: 1% of files rewritten. */
function change1Percent(volume: string, round: number): void {
  const data = randomBytes(FILE_BYTES);
  for (let i = 0; i < CHANGED; i++) {
    const f = (i * 97 + round) % FILES;
    writeFileSync(join(volume, `d${f % DIRS}`, `f${f}.bin`), data);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeMs(fn: () => unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * Median times of the baseline command and of the provider's commit, run alternately so
 * both see the same machine load. Prepare, post-commit and delete are not timed.
 */
async function measure(
  fs: LoopFs,
  volume: string,
  provider: ProviderName,
  changeFiles: boolean,
  baseline: { cmd: string; args: (dst: string) => string[]; cleanup: (dst: string) => void },
): Promise<{ base: number; ours: number; modes: string }> {
  const manager = await SnapshotManager.open({ stateDir: join(fs.dir, `state-${provider}`) });
  const base: number[] = [];
  const ours: number[] = [];
  const modes = new Set<string>();
  for (let run = 0; run <= RUNS; run++) {
    const dst = join(fs.mountPoint, `baseline-${run}`);
    sh('sync', []);
    const tb = await timeMs(() => sh(baseline.cmd, baseline.args(dst)));
    baseline.cleanup(dst);

    const set = manager.startSnapshotSet({ sessionId: 'bench' });
    await set.addToSnapshotSet(volume, { provider });
    await set.prepare();
    if (changeFiles) change1Percent(volume, run);
    await set.preCommit();
    sh('sync', []);
    const to = await timeMs(() => set.commit());
    const stats = (manager.providers[provider] as { lastCommitStats?: Map<string, SyncStats> }).lastCommitStats?.values().next().value;
    if (stats) modes.add(stats.fallback ? `${stats.mode} (${stats.fallback})` : stats.mode);
    await set.postCommit();
    await manager.releaseSession('bench');
    if (run > 0) {
      // The first round warms caches.
      base.push(tb);
      ours.push(to);
    }
  }
  return { base: median(base), ours: median(ours), modes: [...modes].join(', ') };
}

async function onLoop(type: LoopFsType, sizeMb: number, body: (fs: LoopFs) => Promise<void>): Promise<void> {
  const why = loopFsUnavailable(type);
  if (why) {
    console.log(`bench: providers ${type} skipped: ${why}`);
    return;
  }
  const fs = makeLoopFs(type, { sizeMb });
  try {
    await body(fs);
  } finally {
    fs.cleanup();
  }
}

let met = true;

await onLoop('btrfs', 768, async (fs) => {
  const volume = join(fs.mountPoint, 'vol');
  sh('btrfs', ['subvolume', 'create', volume]);
  populate(volume);
  const { base, ours } = await measure(fs, volume, 'btrfs', false, {
    cmd: 'btrfs',
    args: (dst) => ['subvolume', 'snapshot', '-r', volume, dst],
    cleanup: (dst) => sh('btrfs', ['subvolume', 'delete', dst]),
  });
  report('providers', 'btrfs_snapshot_ms', base);
  report('providers', 'btrfs_commit_ms', ours);
  met = report('providers', 'btrfs_commit/btrfs_subvolume_snapshot', ours / base, { op: '<=', target: 1.5 }) && met;
});

await onLoop('xfs', 768, async (fs) => {
  const volume = join(fs.mountPoint, 'vol');
  mkdirSync(volume);
  populate(volume);
  const { base, ours, modes } = await measure(fs, volume, 'reflink', true, {
    cmd: 'cp',
    args: (dst) => ['-a', '--reflink=always', volume, dst],
    cleanup: (dst) => rmSync(dst, { recursive: true }),
  });
  report('providers', 'cp_reflink_ms', base);
  console.log(`bench: providers reflink commit mode: ${modes}`);
  report('providers', 'reflink_commit_1pct_changed_ms', ours);
  met = report('providers', 'reflink_commit/cp_reflink', ours / base, { op: '<=', target: 1.2 }) && met;
});

await onLoop('ext4', 1024, async (fs) => {
  const volume = join(fs.mountPoint, 'vol');
  mkdirSync(volume);
  populate(volume);
  const { base, ours, modes } = await measure(fs, volume, 'copy', true, {
    cmd: 'cp',
    args: (dst) => ['-a', volume, dst],
    cleanup: (dst) => rmSync(dst, { recursive: true }),
  });
  report('providers', 'cp_a_ms', base);
  console.log(`bench: providers copy commit mode: ${modes}`);
  report('providers', 'copy_commit_1pct_changed_ms', ours);
  met = report('providers', 'copy_commit_1pct/cp_a', ours / base, { op: '<=', target: 0.1 }) && met;
});

// A missed goal is a finding, printed as MISSED above, not a failure of the benchmark: the
// exit status is non-zero only when something threw.
if (!met) console.log('bench: providers: some goals were MISSED (see above)');
