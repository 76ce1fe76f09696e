// The PostgreSQL engine on a real private server with pgbench writing: what the writer will
// do around a snapshot (backup start, a file copy standing in for the snapshot, backup
// stop), then the restore on a copy started as a second server.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VssError } from '../../src/vss/index.js';
import {
  decodeBackupMetadata,
  encodeBackupMetadata,
  PostgresEngine,
  prepareRestoredDataDir,
  walFilesBetween,
} from '../../src/writers/postgres/engine.js';
import { createCluster, giveToPostgres, PgServer, pgTempDir, postgresUnavailable, runPgbench, runPgTool, type PgCluster } from '../../src/testing/postgres.js';
import { postmasterOptions } from '../../src/writers/postgres/service.js';

const why = postgresUnavailable(['pgbench', 'psql']);
if (why) console.log(`# skipping PostgreSQL engine tests: ${why}`);

/** The "snapshot": cp -a, tolerating files the running server removes while we copy. */
function copyTree(src: string, dest: string): void {
  const r = spawnSync('cp', ['-a', src, dest], { encoding: 'utf8' });
  const real = r.stderr.split('\n').filter((l) => l && !/No such file or directory/.test(l));
  if (r.status !== 0 && real.length) throw new Error(`cp -a ${src} ${dest}: ${real.join('; ')}`);
}


function invariant(s: PgServer): { accounts: string; history: string; rows: number } {
  const [accounts, history, rows] = s.psql('SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT coalesce(sum(delta), 0) FROM pgbench_history), (SELECT count(*) FROM pgbench_history)').split('|');
  return { accounts: accounts!, history: history!, rows: Number(rows) };
}

describe('pg_ctl service control', () => {
  it('reads the server options back from postmaster.opts, without the program and -D', () => {
    const opts = '/usr/lib/postgresql/15/bin/postgres "-D" "/srv/pg data" "-k" "/tmp/sock dir" "-p" "5433" "-c" "listen_addresses="\n';
    assert.deepEqual(postmasterOptions(opts), ['-k', '/tmp/sock dir', '-p', '5433', '-c', 'listen_addresses=']);
    assert.deepEqual(postmasterOptions('/usr/bin/postgres "-D/x"\n'), []);
  });
});

describe('WAL segment names', () => {
  it('lists the segments from start to stop across a log-id boundary', () => {
    assert.deepEqual(walFilesBetween('0000000100000000000000FE', '000000010000000100000001', 16 * 1024 * 1024), [
      '0000000100000000000000FE',
      '0000000100000000000000FF',
      '000000010000000100000000',
      '000000010000000100000001',
    ]);
    assert.throws(() => walFilesBetween('000000010000000000000001', '000000020000000000000002', 16 * 1024 * 1024), (e) => VssError.is(e, 'VSS_E_WRITERERROR_NONRETRYABLE'));
  });
});

describe('PostgreSQL engine', { skip: why }, () => {
  let c: PgCluster;
  let tsDir: string;
  let tsOid: number;

  before(() => {
    c = createCluster();
    tsDir = join(c.dir.path, 'ts1');
    mkdirSync(tsDir, { mode: 0o700 });
    giveToPostgres(c.tools, tsDir);
    c.server.psql(`CREATE TABLESPACE ts1 LOCATION '${tsDir}'`);
    tsOid = Number(c.server.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'"));
    // Tables in the data directory, their indexes in the tablespace: both must come back.
    const r = runPgTool(c.tools, 'pgbench', [...c.server.clientArgs, '-i', '-s', '5', '--index-tablespace=ts1', '-q', 'postgres']);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => c?.cleanup());

  it('describes the data directory and each tablespace as components restored with the server stopped', async () => {
    const engine = new PostgresEngine({ connection: c.server.connection, service: 'postgresql@15-main' });
    const layout = await engine.discover();
    assert.equal(layout.dataDir, c.server.dataDir);
    assert.deepEqual(layout.tablespaces, [{ oid: tsOid, name: 'ts1', location: tsDir }]);
    assert.equal(layout.walIsSymlink, false);
    assert.equal(layout.walSegmentSize, 16 * 1024 * 1024);
    const wmd = await engine.metadata();
    assert.deepEqual(
      wmd.components.map((x) => [x.logicalPath, x.componentName, x.files.map((f) => `${f.path}/${f.filespec}${f.recursive ? ' -r' : ''}`)]),
      [
        ['postgresql', 'data', [`${c.server.dataDir}/* -r`]],
        ['postgresql\\data', 'tablespace-ts1', [`${tsDir}/* -r`]],
      ],
    );
    const rm = wmd.getRestoreMethod();
    assert.equal(rm.method, 3 /* STOP_RESTORE_START */);
    assert.equal(rm.service, 'postgresql@15-main');
    assert.ok(wmd.excludeFiles.some((x) => x.path === c.server.dataDir && x.filespec === 'postmaster.pid'));
  });

  it('a backup copied while pgbench runs restores into a new directory as a working, consistent server', async () => {
    const engine = new PostgresEngine({ connection: c.server.url });
    const work = pgTempDir(c.tools, 'shadowcopy-pg-restore-');
    const copy = join(work.path, 'copy');
    const bare = join(work.path, 'bare');
    mkdirSync(copy);
    mkdirSync(bare);
    let restored: PgServer | undefined;
    let bareServer: PgServer | undefined;
    try {
      // -n: no vacuum, which would truncate pgbench_history and break the invariant.
      const baseline = await runPgbench(c.tools, c.server, ['-n', '-c', '4', '-j', '2', '-T', '4']);
      const during = runPgbench(c.tools, c.server, ['-n', '-c', '4', '-j', '2', '-T', '8']);
      await new Promise((r) => setTimeout(r, 1500));
      const started = await engine.startBackup('shadowcopy test');
      assert.equal(engine.inBackup, true);
      assert.equal(started.walReserved, true, 'the temporary replication slot was not created');
      copyTree(c.server.dataDir, join(copy, 'data'));
      copyTree(tsDir, join(copy, 'ts1'));
      // A second copy, restored with the label only: the control showing why WAL is collected.
      copyTree(c.server.dataDir, join(bare, 'data'));
      copyTree(tsDir, join(bare, 'ts1'));
      await new Promise((r) => setTimeout(r, 500));
      const stopped = await engine.stopBackup({ walDir: join(copy, 'wal-archive') });
      assert.equal(engine.inBackup, false);
      const { tps } = await during;
      console.log(`# postgres: pgbench ${baseline.tps.toFixed(0)} tps alone, ${tps.toFixed(0)} tps with a backup (${(tps / baseline.tps).toFixed(2)}x); backup ${stopped.startLsn}..${stopped.stopLsn}, ${stopped.walFiles.length} WAL segment(s)`);
      assert.match(stopped.backupLabel, /^START WAL LOCATION: /m);
      assert.match(stopped.tablespaceMap, new RegExp(`^${tsOid} ${tsDir}$`, 'm'));

      // What the BCD carries is enough to restore.
      const meta = decodeBackupMetadata(encodeBackupMetadata(stopped));
      prepareRestoredDataDir({
        dataDir: join(copy, 'data'),
        backupLabel: meta.backupLabel,
        tablespaceMap: meta.tablespaceMap,
        walArchiveDir: join(copy, 'wal-archive'),
        walFiles: meta.walFiles,
        tablespaceLocations: { [tsOid]: join(copy, 'ts1') },
      });
      giveToPostgres(c.tools, copy, true);
      restored = new PgServer(c.tools, join(copy, 'data'), work.path);
      restored.start();
      const live = invariant(c.server);
      assert.equal(live.accounts, live.history, 'the invariant does not even hold on the source server');
      const inv = invariant(restored);
      assert.ok(inv.rows > 0, 'the restored copy has no pgbench history: the copy was not taken while pgbench ran');
      assert.equal(inv.accounts, inv.history, 'pgbench invariant broken: sum(abalance) != sum(delta)');
      assert.equal(readlinkSync(join(copy, 'data', 'pg_tblspc', String(tsOid))), join(copy, 'ts1'), 'the restored server must use the restored tablespace, not the original');
      assert.equal(restored.psql("SELECT count(*) FROM pg_indexes i JOIN pg_tablespace t ON t.spcname = i.tablespace WHERE t.spcname = 'ts1'"), '3');
      const am = runPgTool(c.tools, 'pg_amcheck', [...restored.clientArgs, '--install-missing', '--heapallindexed', '-d', 'postgres']);
      if (am.status === null && /ENOENT/.test(am.stderr)) console.log('# postgres: pg_amcheck not installed; corruption check skipped');
      else assert.equal(am.status, 0, `pg_amcheck found problems: ${am.stdout}${am.stderr}`);
      console.log(`# postgres: restored copy has ${inv.rows} history rows, balances ${inv.accounts} = deltas ${inv.history}`);

      // The control: the snapshot's own pg_wal ends before the backup-end record.
      prepareBare(join(bare, 'data'), stopped.backupLabel, tsOid, join(bare, 'ts1'));
      giveToPostgres(c.tools, bare, true);
      bareServer = new PgServer(c.tools, join(bare, 'data'), work.path);
      assert.throws(() => bareServer!.start(), /WAL ends before end of online backup/);
    } finally {
      await engine.abort();
      restored?.stopSync();
      bareServer?.stopSync('immediate');
      work.cleanup();
    }
  });

  it('abort ends the backup session and its WAL slot; stop without start is a bad state', async () => {
    const engine = new PostgresEngine({ connection: c.server.connection });
    await engine.startBackup('to be aborted');
    assert.equal(c.server.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'shadowcopy_%'"), '1');
    await engine.abort();
    await engine.abort();
    // The server notices the closed session asynchronously.
    for (let i = 0; i < 100 && c.server.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'shadowcopy_%'") !== '0'; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(c.server.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'shadowcopy_%'"), '0');
    await assert.rejects(engine.stopBackup(), (e) => VssError.is(e, 'VSS_E_BAD_STATE'));
    // A new backup can start at once.
    await engine.startBackup('after abort');
    const s = await engine.stopBackup();
    assert.ok(s.walFiles.length >= 1);
  });

  it('fails as retryable when the server cannot be reached', async () => {
    const engine = new PostgresEngine({ connection: { ...c.server.connection, port: c.server.port + 1 } });
    await assert.rejects(engine.startBackup('x'), (e) => VssError.is(e, 'VSS_E_WRITERERROR_RETRYABLE'));
    assert.equal(engine.inBackup, false);
  });
});

/** Only the label, as if the snapshot's pg_wal were enough (it is not). */
function prepareBare(dataDir: string, label: string, tsOid: number, tsCopy: string): void {
  rmSync(join(dataDir, 'postmaster.pid'), { force: true });
  writeFileSync(join(dataDir, 'backup_label'), label);
  // Point the tablespace at its copy: replay must never write into the live server's files.
  const link = join(dataDir, 'pg_tblspc', String(tsOid));
  rmSync(link);
  symlinkSync(tsCopy, link);
}
