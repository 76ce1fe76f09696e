// bench/writers: what the built-in writers cost the applications they protect, in one run,
// windows with and without a backup interleaved (so drift on a shared machine hits both):
//   - SQLite: the longest commit of an application writing in a loop during a backup
//     (runBackup through an in-process coordinator, copy provider on tmpfs) against the same
//     application's longest commit in a window of the same length without one;
//   - PostgreSQL: pgbench throughput with a backup in the middle against without (goal >= 0.8x);
//     beside it, without a goal, the floor: pgbench throughput when only what any backup
//     consistent through pg_backup_start must do happens in the middle (an immediate
//     checkpoint, then one read of the data).
// Needs root (tmpfs) and, for PostgreSQL, Debian's server packages; a missing part is skipped
// with a message. Exits 0 even when a goal is missed (MISSED), non-zero only on errors.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { runBackup } from '../src/backup/run-backup.js';
import { Coordinator } from '../src/coordinator/index.js';
import { SnapshotManager } from '../src/providers/index.js';
import { BackupComponents } from '../src/requester/index.js';
import { pgTempDir, pgTools, postgresUnavailable, runPgbench, runPgTool, serverOnVolume } from '../src/testing/postgres.js';
import { loopFsUnavailable, makeLoopFs } from '../src/testing/loopfs.js';
import { makeTmpfs, tmpfsUnavailable, type TmpfsVolume } from '../src/testing/tmpfs.js';
import { PostgresWriter } from '../src/writers/postgres/writer.js';
import { SqliteWriter } from '../src/writers/sqlite/writer.js';
import { report } from './report.js';

const APP = new URL('../test/writers/fixtures/sqlite-app.ts', import.meta.url).pathname;
const ROUNDS = 5;
// pgbench throughput varies by 10–20% from run to run here: five runs of each kind for the medians.
const PG_ROUNDS = 5;
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const shAsync = (cmd: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const p = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd}: ${err}`))));
  });

/** The fixture application; resolves once it has committed `warm` transactions. */
async function startApp(db: string, warm: number): Promise<{ stop(): Promise<number>; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', APP, db, '2'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let commits = 0;
  let onStall: ((ms: number) => void) | undefined;
  let warmed: (() => void) | undefined;
  const ready = new Promise<void>((r) => (warmed = r));
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    if (l.startsWith('c ') && ++commits === warm) warmed?.();
    else if (l.startsWith('stall ')) onStall?.(Number(l.split(' ')[1]));
  });
  const exited = new Promise<never>((_, reject) => proc.on('exit', (code) => reject(new Error(`sqlite-app exited (code ${code})`))));
  await Promise.race([ready, exited]);
  return {
    proc,
    stop: () =>
      Promise.race([
        new Promise<number>((r) => {
          onStall = r;
          proc.stdin!.write('stop\n');
        }),
        exited,
      ]),
  };
}

async function sqlite(vol: TmpfsVolume, co: Coordinator): Promise<void> {
  const dir = join(vol.mountPoint, 'sqlite');
  mkdirSync(dir);
  const db = join(dir, 'app.db');
  const writer = new SqliteWriter({ databases: [db] });
  await writer.subscribe({ stream: () => co.connectWriter(), reconnect: false });
  const withBackup: number[] = [];
  const without: number[] = [];
  let windowMs = 1000;
  try {
    for (let i = 0; i < ROUNDS * 2; i++) {
      // Alternate which comes first in each pair.
      const backup = (i % 2 === 0) !== (Math.floor(i / 2) % 2 === 0);
      const app = await startApp(db, 100);
      try {
        if (backup) {
          const t0 = performance.now();
          const session = await BackupComponents.create({ stream: () => co.connectRequester() });
          const to = join(vol.dir, `sqlite-backup-${i}`);
          await runBackup(session, { to, components: [{ writer: 'SQLite Writer' }] });
          await session.release();
          rmSync(to, { recursive: true, force: true });
          windowMs = performance.now() - t0;
        } else {
          await sleep(windowMs);
        }
      } finally {
        const stall = await app.stop().finally(() => app.proc.kill());
        (backup ? withBackup : without).push(stall);
      }
    }
  } finally {
    await writer.close();
  }
  report('writers', 'sqlite_max_stall_ms_backup (max of rounds)', Math.max(...withBackup));
  report('writers', 'sqlite_max_stall_ms_no_backup (max of rounds)', Math.max(...without));
  report('writers', 'sqlite_max_stall_ms_backup (median of rounds)', median(withBackup));
  report('writers', 'sqlite_max_stall_ms_no_backup (median of rounds)', median(without));
}


async function postgres(vol: { dir: string; mountPoint: string }, co: Coordinator, where: string, goal: boolean, snapshot: boolean): Promise<void> {
  const tools = pgTools();
  const work = pgTempDir(tools, 'shadowcopy-bench-pg-');
  const { server } = serverOnVolume(tools, vol, work);
  const writer = new PostgresWriter({ connection: server.url });
  try {
    server.start();
    const r = runPgTool(tools, 'pgbench', [...server.clientArgs, '-i', '-s', '5', '-q', 'postgres']);
    if (r.status !== 0) throw new Error(`pgbench -i failed: ${r.stderr}`);
    await writer.subscribe({ stream: () => co.connectWriter(), reconnect: false });
    const base: number[] = [];
    const during: number[] = [];
    const floor: number[] = [];
    const backupEnds: number[] = [];
    let outlasted = 0;
    const pgData = join(vol.mountPoint, 'pg', 'data');
    // Rounds of three runs (no backup, a backup, the floor), in an order that rotates.
    for (let i = 0; i < PG_ROUNDS * 3; i++) {
      const kind = (['none', 'backup', 'floor'] as const)[(i + Math.floor(i / 3)) % 3]!;
      const t0 = performance.now();
      let pgbenchDone = false;
      const run = runPgbench(tools, server, ['-n', '-c', '4', '-j', '2', '-T', '6']).then((r) => ((pgbenchDone = true), r.tps));
      // What the run made, deleted after it: a backup directory, a btrfs snapshot.
      const leftover: { path: string; snapshot: boolean }[] = [];
      if (kind === 'backup') {
        await sleep(1500);
        const session = await BackupComponents.create({ stream: () => co.connectRequester() });
        const to = join(vol.dir, `pg-backup-${i}`);
        leftover.push({ path: to, snapshot: false });
        await runBackup(session, { to, components: [{ writer: 'PostgreSQL Writer' }] });
        await session.release();
        // A backup still running when pgbench ends costs it nothing measured: the ratio would
        // flatter a slower (say, lower-priority) backup. Said, not hidden.
        backupEnds.push((performance.now() - t0) / 1000);
        if (pgbenchDone) outlasted++;
      } else if (kind === 'floor') {
        // The least a backup consistent through pg_backup_start does: an immediate checkpoint,
        // then reading the data once (on btrfs from a snapshot just made, whose pages are
        // not cached, as a backup's never are).
        await sleep(1500);
        await shAsync(`${join(tools.binDir, 'psql')} ${server.clientArgs.join(' ')} -d postgres -X -qAt -c CHECKPOINT`);
        let from = pgData;
        if (snapshot) {
          const snap = join(vol.mountPoint, `floor-${i}`);
          await shAsync(`btrfs subvolume snapshot -r ${vol.mountPoint} ${snap} >/dev/null`);
          leftover.push({ path: snap, snapshot: true });
          from = join(snap, 'pg', 'data');
        }
        await shAsync(`tar -cf - -C ${from} . | cat >/dev/null`);
      }
      (kind === 'backup' ? during : kind === 'floor' ? floor : base).push(await run);
      // Deleting what the run made is the bench's work: after pgbench has finished.
      for (const l of leftover) {
        if (l.snapshot) await shAsync(`btrfs subvolume delete ${l.path} >/dev/null`);
        else rmSync(l.path, { recursive: true, force: true });
      }
      // btrfs frees deleted snapshots (the backup's, the floor's) in the background: wait for
      // it here, so that work lands in no measured run and the space is back (a 1 GB volume
      // filled up with them, and PostgreSQL stopped on ENOSPC writing WAL).
      if (snapshot) await shAsync(`btrfs subvolume sync ${vol.mountPoint}`);
    }
    report('writers', `pg_backup_end_s_into_6s_pgbench_run (${where}, max of rounds)`, Math.max(...backupEnds));
    if (outlasted) console.log(`bench: writers note: ${outlasted} of ${backupEnds.length} backups (${where}) outlasted their pgbench run; the ratio understates what they cost`);
    report('writers', `pgbench_tps_no_backup (${where}, median)`, median(base));
    report('writers', `pgbench_tps_backup (${where}, median)`, median(during));
    report('writers', `pgbench_tps_ratio_backup_vs_no_backup (${where})`, median(during) / median(base), goal ? { op: '>=', target: 0.8 } : undefined);
    report('writers', `pgbench_tps_ratio_floor_vs_no_backup (${where}: CHECKPOINT, then tar of the data${snapshot ? ' from a fresh snapshot' : ''})`, median(floor) / median(base));
  } finally {
    await writer.unsubscribe();
    await writer.engine.abort();
    server.stopSync();
    work.cleanup();
  }
}

const noTmpfs = tmpfsUnavailable();
if (noTmpfs) {
  console.log(`bench: writers skipped: ${noTmpfs}`);
} else {
  const vol = makeTmpfs(2048);
  const snapshots = await SnapshotManager.open({ stateDir: join(vol.dir, 'state') });
  const co = new Coordinator({ snapshots, stateDir: join(vol.dir, 'state') });
  try {
    await sqlite(vol, co);
    const noPg = postgresUnavailable(['pgbench']);
    if (noPg) console.log(`bench: writers postgres skipped: ${noPg}`);
    else {
      const noBtrfs = loopFsUnavailable('btrfs');
      if (noBtrfs) console.log(`bench: writers postgres on btrfs skipped: ${noBtrfs}`);
      else {
        const fs = makeLoopFs('btrfs', { sizeMb: 2048 });
        try {
          await postgres(fs, co, 'PGDATA on btrfs, btrfs provider', true, true);
        } finally {
          fs.cleanup();
        }
      }
      await postgres(vol, co, 'PGDATA on tmpfs, copy provider', true, false);
    }
  } finally {
    await co.shutdown();
    vol.cleanup();
  }
}
