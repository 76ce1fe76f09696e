// shadowcopy writer sqlite|postgres …: the built-in writers as processes subscribed to the
// daemon. Each runs until SIGTERM/SIGINT, then releases whatever it holds and unsubscribes.
import type { Command } from 'commander';
import type { Writer } from '../../writer/index.js';
import { PostgresWriter } from '../../writers/postgres/writer.js';
import { SqliteWriter } from '../../writers/sqlite/writer.js';

/** Subscribes, logs connection changes on stderr, and waits for a stop signal. */
async function serve(name: string, w: Writer, socketDir: string | undefined, close: () => Promise<void>): Promise<void> {
  w.on('subscribed', (id) => process.stderr.write(`${name}: subscribed as instance ${String(id)}\n`));
  w.on('disconnected', () => process.stderr.write(`${name}: daemon gone, reconnecting\n`));
  await w.subscribe({ ...(socketDir ? { socketDir } : {}) });
  await new Promise<void>((resolve) => {
    const stop = (): void => void close().finally(resolve);
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export function registerWriter(program: Command): void {
  const writer = program.command('writer').description('Run a built-in writer (sqlite, postgres) subscribed to the daemon');

  writer
    .command('sqlite')
    .description('Hold SQLite databases consistent across snapshots: checkpoint and write lock during Freeze, integrity_check after restore')
    .requiredOption('--db <path>', 'a database file (repeat for several); its -wal, -shm and -journal come along', collect)
    .option('--socket-dir <dir>', 'the daemon\'s socket directory (default $SHADOWCOPY_SOCKET_DIR or /run/shadowcopy)')
    .option('--instance <name>', 'instance name, when more than one SQLite writer runs')
    .option('--busy-timeout-ms <ms>', 'longest wait for another connection\'s write lock at Freeze (10000)', (v) => Number(v))
    .option('--freeze-window-ms <ms>', 'locks are released by themselves after this long (60000)', (v) => Number(v))
    .action(async (opts: { db: string[]; socketDir?: string; instance?: string; busyTimeoutMs?: number; freezeWindowMs?: number }) => {
      const w = new SqliteWriter({
        databases: opts.db,
        ...(opts.instance ? { instanceName: opts.instance } : {}),
        ...(opts.busyTimeoutMs ? { busyTimeoutMs: opts.busyTimeoutMs } : {}),
        ...(opts.freezeWindowMs ? { freezeWindowMs: opts.freezeWindowMs } : {}),
      });
      await serve('writer sqlite', w, opts.socketDir, () => w.close());
    });

  writer
    .command('postgres')
    .description('Back up a running PostgreSQL server: pg_backup_start/stop around the snapshot, WAL through the stop spooled and read live, restore swapped in by PostRestore')
    .requiredOption('--connection <url>', 'libpq URL of a superuser on the database host, e.g. postgresql://postgres@/postgres?host=/run/postgresql')
    .option('--service <unit>', 'systemd unit PostRestore stops and starts (default postgresql)')
    .option('--pg-ctl <path>', 'stop and start the server with this pg_ctl on its data directory (as the directory\'s owner) instead of systemctl; for hosts without systemd')
    .option('--spool-dir <dir>', 'where the WAL through pg_backup_stop waits for the requester (default <PGDATA>.shadowcopy-wal; keep it on a volume the backup covers)')
    .option('--socket-dir <dir>', 'the daemon\'s socket directory (default $SHADOWCOPY_SOCKET_DIR or /run/shadowcopy)')
    .option('--instance <name>', 'instance name, when more than one PostgreSQL writer runs')
    .action(async (opts: { connection: string; service?: string; pgCtl?: string; spoolDir?: string; socketDir?: string; instance?: string }) => {
      const w = new PostgresWriter({
        connection: opts.connection,
        ...(opts.service ? { service: opts.service } : {}),
        ...(opts.pgCtl ? { pgCtl: opts.pgCtl } : {}),
        ...(opts.spoolDir ? { spoolDir: opts.spoolDir } : {}),
        ...(opts.instance ? { instanceName: opts.instance } : {}),
      });
      await serve('writer postgres', w, opts.socketDir, async () => {
        await w.unsubscribe();
        await w.engine.abort();
      });
    });
}
