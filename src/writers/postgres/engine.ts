// What the PostgreSQL writer does at each event, as plain async methods (the Writer subclass
// is a thin layer over this). A snapshot of a running server is made restorable with the
// low-level backup API: pg_backup_start before the snapshot, pg_backup_stop after it, in one
// session held open across it; the label, tablespace map and the WAL written up to the stop
// are what recovery needs on top of the snapshot's files (see docs/writers.md for why the
// snapshot's own pg_wal is not enough).
import { appendFileSync, copyFileSync, existsSync, mkdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import {
  ComponentType,
  RestoreMethod,
  SourceType,
  UsageType,
  VssError,
  WriterMetadataBuilder,
  WriterRestore,
  type WriterIdentityInput,
  type WriterMetadata,
} from '../../vss/index.js';

/** The PostgreSQL writer's class id: the same on every host, as VSS writer ids are. */
export const POSTGRES_WRITER_ID = 'b3d4c2e1-7a9f-4e62-8c15-94d0e6a3f217';

export interface PostgresTablespace {
  oid: number;
  name: string;
  /** Where the tablespace's files are (the target of pg_tblspc/<oid>). */
  location: string;
}

export interface PostgresLayout {
  /** server_version_num, e.g. 150018. */
  versionNum: number;
  dataDir: string;
  /** pg_wal's real location (a symlink when initdb -X put it elsewhere). */
  walDir: string;
  walIsSymlink: boolean;
  tablespaces: PostgresTablespace[];
  walSegmentSize: number;
}

export interface BackupStarted {
  label: string;
  startLsn: string;
  startWalFile: string;
  /** True when a temporary replication slot keeps the server from recycling needed WAL. */
  walReserved: boolean;
}

export interface BackupStopped extends BackupStarted {
  stopLsn: string;
  stopWalFile: string;
  /** Contents for <restored PGDATA>/backup_label. */
  backupLabel: string;
  /** Contents for <restored PGDATA>/tablespace_map ('' when there are no tablespaces). */
  tablespaceMap: string;
  /** WAL segments from the start's to the stop's: recovery needs every one of them. */
  walFiles: string[];
  /** Where they were copied (stopBackup's walDir), if anywhere. */
  walCopiedTo?: string;
}

export interface PostgresEngineOptions {
  /** libpq URL or node-postgres settings of a superuser (or a role with pg_backup rights). */
  connection: string | pg.ClientConfig;
  logicalPath?: string;
  /** Service the restore stops and starts (default "postgresql"). */
  service?: string;
}

/** Splits 'X/Y' into a 64-bit number. */
export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn);
  if (!m) throw new VssError('E_INVALIDARG', `"${lsn}" is not a WAL location (X/Y)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** The WAL segment file names from `first` to `last` inclusive (same timeline), in order. */
export function walFilesBetween(first: string, last: string, segmentSize: number): string[] {
  const re = /^[0-9A-F]{24}$/;
  if (!re.test(first) || !re.test(last)) throw new VssError('E_INVALIDARG', `"${first}" or "${last}" is not a WAL segment file name`);
  if (first.slice(0, 8) !== last.slice(0, 8)) {
    throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `the server changed timeline during the backup (${first} to ${last}); retry the backup`);
  }
  const perId = 0x1_0000_0000n / BigInt(segmentSize);
  const segno = (name: string) => BigInt(`0x${name.slice(8, 16)}`) * perId + BigInt(`0x${name.slice(16, 24)}`);
  const out: string[] = [];
  for (let s = segno(first); s <= segno(last); s++) {
    out.push(first.slice(0, 8) + (s / perId).toString(16).toUpperCase().padStart(8, '0') + (s % perId).toString(16).toUpperCase().padStart(8, '0'));
  }
  return out;
}

function writerError(e: unknown, what: string, retryable: boolean): VssError {
  if (VssError.is(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new VssError(retryable ? 'VSS_E_WRITERERROR_RETRYABLE' : 'VSS_E_WRITERERROR_NONRETRYABLE', `${what}: ${msg}`, { cause: e });
}

export class PostgresEngine {
  readonly connection: string | pg.ClientConfig;
  readonly logicalPath: string;
  readonly service: string;
  private session: pg.Client | undefined;
  private started: BackupStarted | undefined;
  private layoutCache: PostgresLayout | undefined;

  constructor(opts: PostgresEngineOptions) {
    this.connection = opts.connection;
    this.logicalPath = opts.logicalPath ?? 'postgresql';
    this.service = opts.service ?? 'postgresql';
  }

  static identity(instanceName = ''): WriterIdentityInput {
    return { writerId: POSTGRES_WRITER_ID, writerName: 'PostgreSQL Writer', instanceName, usage: UsageType.USERDATA, source: SourceType.TRANSACTEDDB, versionMajor: 1, versionMinor: 0 };
  }

  /** True between startBackup() and stopBackup()/abort(). */
  get inBackup(): boolean {
    return this.started !== undefined;
  }

  private async connect(): Promise<pg.Client> {
    const c = new pg.Client(typeof this.connection === 'string' ? { connectionString: this.connection } : this.connection);
    // A dropped session ends the backup on the server side; we notice at stop.
    c.on('error', () => undefined);
    try {
      await c.connect();
    } catch (e) {
      throw writerError(e, 'cannot connect to PostgreSQL; check the connection URL and that the server is running', true);
    }
    return c;
  }

  /** Identify (and PrepareForBackup): the data directory, WAL directory and tablespaces. */
  async discover(): Promise<PostgresLayout> {
    const c = await this.connect();
    try {
      const v = await c.query<{ v: string; d: string; s: string }>(
        "SELECT current_setting('server_version_num') AS v, current_setting('data_directory') AS d, current_setting('wal_segment_size') AS s",
      );
      const row = v.rows[0]!;
      const ts = await c.query<{ oid: number; spcname: string; location: string }>(
        "SELECT oid::int AS oid, spcname, pg_tablespace_location(oid) AS location FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid",
      );
      const dataDir = row.d;
      const walLink = join(dataDir, 'pg_wal');
      const layout: PostgresLayout = {
        versionNum: Number(row.v),
        dataDir,
        walDir: realpathSync(walLink),
        walIsSymlink: realpathSync(walLink) !== join(realpathSync(dataDir), 'pg_wal'),
        tablespaces: ts.rows.map((r) => ({ oid: r.oid, name: r.spcname, location: r.location })),
        walSegmentSize: parseWalSegmentSize(row.s),
      };
      this.layoutCache = layout;
      return layout;
    } catch (e) {
      throw writerError(e, 'cannot read the server layout (data_directory, pg_tablespace); the writer must run on the database host as a superuser', false);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /**
   * Identify: components "data" (PGDATA less pg_wal and run-time files), one per tablespace,
   * and "wal". Restored with the server stopped (STOP_RESTORE_START).
   */
  describe(builder: WriterMetadataBuilder, layout: PostgresLayout): WriterMetadataBuilder {
    const lp = this.logicalPath;
    builder.setRestoreMethod(RestoreMethod.STOP_RESTORE_START, this.service, undefined, WriterRestore.ALWAYS, false);
    builder.addComponent({ type: ComponentType.FILEGROUP, logicalPath: lp, componentName: 'data', caption: `PostgreSQL data directory ${layout.dataDir}`, selectable: true, selectableForRestore: true, restoreMetadata: true });
    builder.addFilesToFileGroup(lp, 'data', layout.dataDir, '*', true);
    // Run-time files a restored server must not see (PostgreSQL's own backup docs list them).
    builder.addExcludeFiles(layout.dataDir, 'postmaster.pid', false);
    builder.addExcludeFiles(layout.dataDir, 'postmaster.opts', false);
    for (const d of ['pg_replslot', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_stat_tmp', 'pg_subtrans']) {
      builder.addExcludeFiles(join(layout.dataDir, d), '*', true);
    }
    for (const t of layout.tablespaces) {
      const name = `tablespace-${t.name}`;
      builder.addComponent({ type: ComponentType.FILEGROUP, logicalPath: `${lp}\\data`, componentName: name, caption: `tablespace ${t.name} (${t.location})`, selectable: false });
      builder.addFilesToFileGroup(`${lp}\\data`, name, t.location, '*', true);
    }
    // pg_wal inside PGDATA comes with "data"; one that initdb -X put elsewhere (a symlink,
    // which the data file set does not follow) is a component of its own in the same set.
    if (layout.walIsSymlink) {
      builder.addComponent({ type: ComponentType.FILEGROUP, logicalPath: `${lp}\\data`, componentName: 'wal', caption: `write-ahead log ${layout.walDir}`, selectable: false });
      builder.addFilesToFileGroup(`${lp}\\data`, 'wal', layout.walDir, '*', true);
    }
    return builder;
  }

  async metadata(instanceName = ''): Promise<WriterMetadata> {
    const layout = await this.discover();
    return this.describe(new WriterMetadataBuilder(PostgresEngine.identity(instanceName)), layout).build();
  }

  /**
   * PrepareForSnapshot: pg_backup_start(label, fast) in a session kept open until
   * stopBackup(). A temporary replication slot (dropped with the session) keeps the WAL the
   * backup needs from being recycled meanwhile.
   */
  async startBackup(label: string): Promise<BackupStarted> {
    if (this.session) throw new VssError('VSS_E_BAD_STATE', 'a backup is already in progress in this writer; stop or abort it first');
    const layout = this.layoutCache ?? (await this.discover());
    const c = await this.connect();
    this.session = c;
    try {
      let walReserved = false;
      try {
        await c.query('SELECT pg_create_physical_replication_slot($1, true, true)', [`shadowcopy_${process.pid}_${Date.now()}`]);
        walReserved = true;
      } catch {
        // No free slot or wal_level=minimal: go on; stopBackup checks every segment is there.
      }
      const fn = layout.versionNum >= 150000 ? 'pg_backup_start($1, true)' : 'pg_start_backup($1, true, false)';
      const r = await c.query<{ lsn: string; file: string }>(`SELECT lsn::text AS lsn, pg_walfile_name(lsn) AS file FROM ${fn} AS lsn`, [label]);
      const row = r.rows[0]!;
      this.started = { label, startLsn: row.lsn, startWalFile: row.file, walReserved };
      return this.started;
    } catch (e) {
      await this.abort();
      throw writerError(e, 'pg_backup_start failed', true);
    }
  }

  /**
   * PostSnapshot: pg_backup_stop(wait_for_archive := false). Returns the label and map the
   * restore writes, and the WAL segment names recovery needs; with `walDir`, copies those
   * segments there from the live pg_wal (they include the backup-end record, written after
   * the snapshot). Ends the session whatever happens.
   */
  async stopBackup(opts: { walDir?: string } = {}): Promise<BackupStopped> {
    const c = this.session;
    const started = this.started;
    if (!c || !started) throw new VssError('VSS_E_BAD_STATE', 'no backup in progress: startBackup() first (or it was aborted)');
    const layout = this.layoutCache!;
    try {
      const fn = layout.versionNum >= 150000 ? 'pg_backup_stop(false)' : 'pg_stop_backup(false, false)';
      const r = await c.query<{ lsn: string; file: string; labelfile: string; spcmapfile: string | null }>(
        `SELECT s.lsn::text AS lsn, pg_walfile_name(s.lsn) AS file, s.labelfile, s.spcmapfile FROM ${fn} AS s`,
      );
      const row = r.rows[0]!;
      const walFiles = walFilesBetween(started.startWalFile, row.file, layout.walSegmentSize);
      const result: BackupStopped = {
        ...started,
        stopLsn: row.lsn,
        stopWalFile: row.file,
        backupLabel: row.labelfile,
        tablespaceMap: row.spcmapfile ?? '',
        walFiles,
      };
      if (opts.walDir) {
        // Still inside the session: the slot keeps these segments until we have them.
        copyWal(layout.walDir, walFiles, opts.walDir);
        result.walCopiedTo = opts.walDir;
      }
      return result;
    } catch (e) {
      throw writerError(e, 'pg_backup_stop failed; the snapshot cannot be restored, retry the backup', true);
    } finally {
      this.started = undefined;
      this.session = undefined;
      await c.end().catch(() => undefined);
    }
  }

  /** Abort / BackupShutdown: end the session, which ends a non-exclusive backup. Idempotent. */
  async abort(): Promise<void> {
    const c = this.session;
    this.session = undefined;
    this.started = undefined;
    if (c) await c.end().catch(() => undefined);
  }
}

function parseWalSegmentSize(s: string): number {
  const m = /^(\d+)\s*(kB|MB|GB)?$/.exec(s.trim());
  if (!m) throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `unexpected wal_segment_size "${s}"`);
  return Number(m[1]) * ({ kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m[2] as 'kB' | 'MB' | 'GB'] ?? 1);
}

function copyWal(walDir: string, files: string[], dest: string): void {
  mkdirSync(dest, { recursive: true });
  const missing = files.filter((f) => !existsSync(join(walDir, f)));
  if (missing.length) {
    throw new VssError('VSS_E_WRITERERROR_RETRYABLE', `WAL segment(s) ${missing.join(', ')} were recycled before the backup could copy them; retry, and give the writer a replication slot (max_replication_slots) or raise wal_keep_size`);
  }
  for (const f of files) copyFileSync(join(walDir, f), join(dest, f));
}

/** What the writer stores as backup metadata in the BCD (a string, per VSS). */
export function encodeBackupMetadata(b: BackupStopped): string {
  const { label, startLsn, stopLsn, startWalFile, stopWalFile, backupLabel, tablespaceMap, walFiles } = b;
  return JSON.stringify({ v: 1, label, startLsn, stopLsn, startWalFile, stopWalFile, backupLabel, tablespaceMap, walFiles });
}

export function decodeBackupMetadata(s: string): Pick<BackupStopped, 'label' | 'startLsn' | 'stopLsn' | 'startWalFile' | 'stopWalFile' | 'backupLabel' | 'tablespaceMap' | 'walFiles'> {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(s) as Record<string, unknown>;
  } catch (e) {
    throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', 'the PostgreSQL backup metadata in the BCD is not JSON; the backup was not made by this writer', { cause: e });
  }
  if (o.v !== 1 || typeof o.backupLabel !== 'string' || !Array.isArray(o.walFiles)) {
    throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', 'the PostgreSQL backup metadata in the BCD lacks the backup label or WAL list; restore from a backup made by this writer');
  }
  return o as unknown as ReturnType<typeof decodeBackupMetadata>;
}

export interface PrepareRestoreOptions {
  /** The restored data directory (the server must be stopped). */
  dataDir: string;
  backupLabel: string;
  tablespaceMap: string;
  /** Directory holding the WAL segments stopBackup() listed (its walDir, restored). */
  walArchiveDir: string;
  /** New locations of tablespaces restored elsewhere, by oid. */
  tablespaceLocations?: Record<number, string>;
  /** WAL segment names that must be in walArchiveDir (checked before anything is written). */
  walFiles?: string[];
}

/**
 * Restore, between putting the files back and starting the server: write backup_label,
 * tablespace_map (with moved tablespaces), recovery.signal and a restore_command that reads
 * the backup's WAL, so the server replays through the backup's end before it opens.
 */
export function prepareRestoredDataDir(o: PrepareRestoreOptions): void {
  if (!statSync(o.dataDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `restored data directory ${o.dataDir} does not exist; restore the data component first`);
  }
  const missing = (o.walFiles ?? []).filter((f) => !existsSync(join(o.walArchiveDir, f)));
  if (missing.length) {
    throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `WAL segment(s) ${missing.join(', ')} are not in ${o.walArchiveDir}; the server could not finish recovery, so restore them from the backup first`);
  }
  // A stale pid file would make pg_ctl think a server runs here.
  rmSync(join(o.dataDir, 'postmaster.pid'), { force: true });
  writeFileSync(join(o.dataDir, 'backup_label'), o.backupLabel, { mode: 0o600 });
  const map = o.tablespaceMap
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const sp = l.indexOf(' ');
      const oid = Number(l.slice(0, sp));
      return `${oid} ${o.tablespaceLocations?.[oid] ?? l.slice(sp + 1)}`;
    });
  if (map.length) writeFileSync(join(o.dataDir, 'tablespace_map'), `${map.join('\n')}\n`, { mode: 0o600 });
  else rmSync(join(o.dataDir, 'tablespace_map'), { force: true });
  writeFileSync(join(o.dataDir, 'recovery.signal'), '', { mode: 0o600 });
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
  // postgresql.auto.conf takes the last value of a setting; appending overrides older ones.
  appendFileSync(
    join(o.dataDir, 'postgresql.auto.conf'),
    `# added by shadowcopy restore: replay the backup's WAL\nrestore_command = ${q(`cp "${o.walArchiveDir}/%f" "%p"`)}\n`,
  );
  // pg_wal is excluded nowhere, but a WAL component restored elsewhere leaves no directory.
  mkdirSync(join(o.dataDir, 'pg_wal'), { recursive: true, mode: 0o700 });
}
