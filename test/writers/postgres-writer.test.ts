// The PostgreSQL writer on the SDK through the real requester path: a private server whose
// data directory and tablespace are on a tmpfs volume, pgbench writing, runBackup with the
// copy provider through an in-process coordinator (the WAL through pg_backup_stop read live
// from the writer's spool), runRestore into a new directory, then the writer's PostRestore
// procedure, and the restored server checked by pg_amcheck and pgbench's invariant.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BackupDir, BCD_FILE } from '../../src/backup/backup-dir.js';
import { SessionRestoreParticipation } from '../../src/backup/restore-participation.js';
import { runBackup } from '../../src/backup/run-backup.js';
import { runRestore } from '../../src/backup/run-restore.js';
import { giveToPostgres, PgServer, pgTempDir, pgTools, postgresUnavailable, runPgbench, runPgTool, serverOnVolume, type PgTempDir, type PgTools } from '../../src/testing/postgres.js';
import { makeTmpfs, tmpfsUnavailable, type TmpfsVolume } from '../../src/testing/tmpfs.js';
import { parseBackupComponents, RestoreMethod } from '../../src/vss/index.js';
import { parsePostgresBackupMetadata, PostgresWriter, swapInRestoredServer } from '../../src/writers/postgres/writer.js';
import { fixture, type Fixture } from '../coordinator/helpers.js';

const skip = tmpfsUnavailable() ?? postgresUnavailable(['pgbench', 'psql']);
if (skip) console.log(`# skipping PostgreSQL writer tests: ${skip}`);


function invariant(s: PgServer): { accounts: string; history: string; rows: number } {
  const [accounts, history, rows] = s.psql('SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT coalesce(sum(delta), 0) FROM pgbench_history), (SELECT count(*) FROM pgbench_history)').split('|');
  return { accounts: accounts!, history: history!, rows: Number(rows) };
}

describe('PostgreSQL writer (SDK) through runBackup / runRestore', { skip, timeout: 300_000 }, () => {
  let tools: PgTools;
  let vol: TmpfsVolume;
  let work: PgTempDir;
  let server: PgServer;
  let f: Fixture;
  let tsDir: string;
  before(async () => {
    tools = pgTools();
    vol = makeTmpfs(1024);
    work = pgTempDir(tools, 'shadowcopy-pgw-');
    let pgRoot: string;
    ({ server, pgRoot } = serverOnVolume(tools, vol, work));
    server.start();
    tsDir = join(pgRoot, 'ts1');
    mkdirSync(tsDir, { mode: 0o700 });
    giveToPostgres(tools, tsDir);
    server.psql(`CREATE TABLESPACE ts1 LOCATION '${tsDir}'`);
    const init = runPgTool(tools, 'pgbench', [...server.clientArgs, '-i', '-s', '2', '--index-tablespace=ts1', '-q', 'postgres']);
    assert.equal(init.status, 0, init.stderr);
    f = await fixture();
  });
  after(async () => {
    await f?.close();
    server?.stopSync();
    work?.cleanup();
    vol?.cleanup();
  });

  it('with pgbench running, a backup restored into a new directory starts as a working, uncorrupted server whose invariant holds', async () => {
    const writer = new PostgresWriter({ connection: server.url, service: 'test-postgres' });
    const spool = `${server.dataDir}.shadowcopy-wal`;
    let restored: PgServer | undefined;
    const backup = join(vol.dir, 'backup');
    const newRoot = join(work.path, 'restored');
    try {
      await writer.subscribe({ stream: () => f.co.connectWriter(), reconnect: false });
      const metadata = await f.requester();
      await metadata.initializeForBackup();
      await metadata.gatherWriterMetadata();
      const wmd = metadata.getWriterMetadata(0).metadata;
      await metadata.release();
      assert.equal(wmd.getRestoreMethod().method, RestoreMethod.RESTORE_TO_ALTERNATE_LOCATION);
      assert.deepEqual(
        wmd.components.map((c) => [c.logicalPath, c.componentName, c.files.map((x) => `${x.path} 0x${x.backupTypeMask.toString(16)}`)]),
        [
          ['postgresql', 'data', [`${server.dataDir} 0xf0f`]],
          ['postgresql\\data', 'tablespace-ts1', [`${tsDir} 0xf0f`]],
          ['postgresql\\data', 'wal-spool', [`${spool} 0xf`]],
        ],
      );

      // -n: no vacuum, which would truncate pgbench_history and break the invariant.
      const during = runPgbench(tools, server, ['-n', '-c', '4', '-j', '2', '-T', '6']).then((r) => r.tps);
      await new Promise((r) => setTimeout(r, 1500));
      const session = await f.requester();
      const report = await runBackup(session, { to: backup, components: [{ writer: 'PostgreSQL Writer' }], writerVerify: ['PostgreSQL Writer'] });
      await session.release();
      const tps = await during;
      assert.deepEqual(report.components.map((c) => [c.component, c.succeeded]), [['postgresql\\data', true]]);
      const b = BackupDir.open(backup);
      const walStored = b.manifest.files.filter((x) => x.path.startsWith(`${spool}/${report.snapshotSetId}/`) && x.kind === 'file');
      assert.ok(walStored.length >= 1, 'the WAL spooled after the snapshot is not in the backup');
      assert.ok(walStored.every((x) => x.entry && !x.entry.snapshotRequired), 'the spooled WAL must be read live, not from the snapshot');
      assert.equal(existsSync(join(spool, report.snapshotSetId)), false, 'the spool was not emptied at BackupComplete');
      // pg_wal's files are left out (the spool carries the WAL recovery needs; the restore recreates the directories).
      const walDir = join(server.dataDir, 'pg_wal');
      assert.deepEqual(b.manifest.files.filter((x) => x.path.startsWith(`${walDir}/`) && x.kind === 'file').map((x) => x.path), []);
      assert.ok(wmd.excludeFilesFromSnapshot.some((x) => x.path === walDir && x.filespec === '*' && x.recursive), 'pg_wal is not excluded from the snapshot');
      const bcd = parseBackupComponents(b.readDocument(BCD_FILE), BCD_FILE);
      const data = bcd.writers[0]!.components.find((c) => c.componentName === 'data')!;
      const meta = parsePostgresBackupMetadata(data.getBackupMetadata());
      assert.match(meta.backupLabel, /^START WAL LOCATION: /m);
      assert.deepEqual(walStored.map((x) => x.path.split('/').pop()).sort(), [...meta.walFiles].sort());
      console.log(`# postgres writer: pgbench ${tps.toFixed(0)} tps during the backup; ${meta.walFiles.length} WAL segment(s) spooled and read live`);

      // Restore into a new directory: every file set lands in its staging place under newRoot.
      mkdirSync(newRoot);
      const rr = await runRestore({ from: backup, to: newRoot, stateDir: join(work.path, 'restore-state') });
      assert.deepEqual(rr.steps.flatMap((s) => s.results.map((r) => [r.plan.definingComponent.fullPath, r.placement, r.error?.message])), [['postgresql\\data', 'alternate-mapping', undefined]]);
      assert.ok(existsSync(join(newRoot, `${server.dataDir}.restore`, 'PG_VERSION')));
      assert.equal(existsSync(join(newRoot, server.dataDir)), false, 'nothing may land in the data directory itself before the swap');

      // PostRestore's procedure under a relocation root (a restore elsewhere has no writer to
      // run it; the in-place test below goes through the writer): swap in, prepare, start.
      for (let d = join(newRoot, vol.mountPoint); d.length >= newRoot.length; d = join(d, '..')) chmodSync(d, 0o755);
      const calls: string[] = [];
      const res = await swapInRestoredServer({
        metadata: meta,
        root: newRoot,
        service: 'test-postgres',
        services: {
          stop: async (s) => void calls.push(`stop ${s}`),
          start: async (s) => {
            calls.push(`start ${s}`);
            restored = new PgServer(tools, join(newRoot, server.dataDir), work.path);
            restored.start();
          },
        },
      });
      assert.deepEqual(calls, ['stop test-postgres', 'start test-postgres']);
      assert.equal(res.dataDir, join(newRoot, server.dataDir));
      assert.ok(restored?.running);
      const inv = invariant(restored);
      assert.ok(inv.rows > 0, 'the restored server has no pgbench history: the backup was not taken while pgbench ran');
      assert.equal(inv.accounts, inv.history, 'pgbench invariant broken: sum(abalance) != sum(delta)');
      assert.equal(readlinkSync(join(res.dataDir, 'pg_tblspc', readdirSync(join(res.dataDir, 'pg_tblspc'))[0]!)), join(newRoot, tsDir), 'the restored server must use the restored tablespace, not the live one');
      const am = runPgTool(tools, 'pg_amcheck', [...restored.clientArgs, '--install-missing', '--heapallindexed', '-d', 'postgres']);
      assert.equal(am.status, 0, `pg_amcheck found problems: ${am.stdout}${am.stderr}`);
      console.log(`# postgres writer: restored server has ${inv.rows} history rows, balances ${inv.accounts} = deltas ${inv.history}`);
    } finally {
      restored?.stopSync();
      await writer.unsubscribe();
      await writer.engine.abort();
    }
  });
  it('restored in place through writer participation: PostRestore stops the live server with pg_ctl, swaps the restored directories in and starts it again', async () => {
    const writer = new PostgresWriter({ connection: server.url, pgCtl: join(tools.binDir, 'pg_ctl'), instanceName: 'inplace' });
    const backup = join(vol.dir, 'inplace-backup');
    try {
      await writer.subscribe({ stream: () => f.co.connectWriter(), reconnect: false });
      const during = runPgbench(tools, server, ['-n', '-c', '2', '-j', '2', '-T', '4']);
      await new Promise((r) => setTimeout(r, 1000));
      const session = await f.requester();
      const report = await runBackup(session, { to: backup, components: [{ writer: 'inplace' }], writerVerify: ['inplace'] });
      await session.release();
      await during;
      assert.deepEqual(report.components.map((c) => [c.component, c.succeeded]), [['postgresql\\data', true]]);
      // A change after the backup, which the restore must take away.
      server.psql('CREATE TABLE after_backup (x int)');

      const rr = await runRestore({ from: backup, stateDir: join(vol.dir, 'inplace-restore-state'), files: false, participation: new SessionRestoreParticipation({ open: () => f.requester() }) });
      assert.deepEqual(rr.steps.flatMap((s) => s.results.map((r) => [r.plan.definingComponent.fullPath, r.placement, r.error?.message])), [['postgresql\\data', 'alternate-mapping', undefined]]);
      assert.deepEqual(rr.steps.flatMap((s) => s.writerFailures ?? []), []);

      // The server answers on its old socket and port (pg_ctl reused the postmaster options),
      // holds the restored data, and the moved-aside directory keeps the pre-restore state.
      assert.equal(server.psql("SELECT to_regclass('after_backup') IS NULL"), 't', 'the table created after the backup survived: the restore was not swapped in');
      const inv = invariant(server);
      assert.ok(inv.rows > 0);
      assert.equal(inv.accounts, inv.history, 'pgbench invariant broken after the in-place restore');
      const am = runPgTool(tools, 'pg_amcheck', [...server.clientArgs, '--install-missing', '--heapallindexed', '-d', 'postgres']);
      assert.equal(am.status, 0, `pg_amcheck found problems: ${am.stdout}${am.stderr}`);
      const kept = readdirSync(join(server.dataDir, '..')).filter((n) => n.startsWith(`${server.dataDir.split('/').pop()}.pre-restore-`));
      assert.equal(kept.length, 1, 'the replaced data directory was not kept beside the restored one');
      console.log(`# postgres writer: restored in place through PostRestore (pg_ctl stop, swap, start); ${inv.rows} history rows, invariant holds`);
    } finally {
      await writer.unsubscribe();
      await writer.engine.abort();
    }
  });
});
