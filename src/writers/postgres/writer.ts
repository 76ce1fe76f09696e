// The PostgreSQL writer on the writer SDK, over PostgresEngine.
//
// Backup: pg_backup_start at PrepareForSnapshot in a session held across the snapshot;
// pg_backup_stop at PostSnapshot, whose label and tablespace map go into the BCD as the data
// component's backup metadata. The WAL from start to stop (the backup-end record is written
// after the snapshot, so no snapshot holds it) is spooled to <spool>/<snapshot set id>/, a
// file set whose mask has no *_SNAPSHOT_REQUIRED bit: the requester reads it from the live
// file system after PostSnapshot (spec §15). The spool is emptied at BackupComplete,
// BackupShutdown and Abort.
//
// Restore: RESTORE_TO_ALTERNATE_LOCATION, every file set mapped to a staging directory beside
// it, so nothing touches the live server while files are copied. PostRestore then stops the
// service, moves the old directories aside, moves the restored ones in, writes backup_label,
// tablespace_map, recovery.signal and a restore_command reading the restored WAL, and starts
// the service. (STOP_RESTORE_START would start the server before PostRestore, without
// backup_label: plain crash recovery on a fuzzy copy, which can corrupt silently.)
import { chmodSync, existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Writer, type HandlerResult } from '../../writer/index.js';
import {
  ApplicationLevel,
  ComponentType,
  FileSpecBackupType,
  RestoreMethod,
  VssError,
  WriterRestore,
  type Guid,
  type WriterComponents,
  type WriterMetadataBuilder,
} from '../../vss/index.js';
import { vetoOnFailure } from '../veto.js';
import { pgCtlServiceControl, systemctl, type PostgresServiceControl } from './service.js';
import { decodeBackupMetadata, encodeBackupMetadata, PostgresEngine, prepareRestoredDataDir, type PostgresEngineOptions, type PostgresLayout } from './engine.js';

export { systemctl, pgCtlServiceControl, type PostgresServiceControl } from './service.js';

export interface PostgresWriterOptions extends PostgresEngineOptions {
  instanceName?: string;
  /** Where WAL through pg_backup_stop waits for the requester (default `<PGDATA>.shadowcopy-wal`, on the data directory's volume). */
  spoolDir?: string;
  /** How PostRestore stops and starts the service (default: pg_ctl when `pgCtl` is given, else systemctl). */
  services?: PostgresServiceControl;
  /** PostRestore stops and starts the server with this pg_ctl on the data directory, instead of systemctl on `service`. */
  pgCtl?: string;
}

/** The backup metadata stored in the BCD: the engine's label, map and WAL list, plus where things were. */
export interface PostgresBackupMetadata extends ReturnType<typeof decodeBackupMetadata> {
  snapshotSetId: string;
  dataDir: string;
  tablespaces: { oid: number; location: string }[];
  walDir: string;
  walIsSymlink: boolean;
  spoolDir: string;
  /** Owner of PGDATA at backup: the restored directories are given back to it. */
  owner: { uid: number; gid: number };
}

export const STAGING_SUFFIX = '.restore';
export const RESTORED_WAL_SUFFIX = '.restore-wal';
// Directories the data file set excludes the contents of: a server will not start without them.
const RUNTIME_DIRS = ['pg_replslot', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_stat_tmp', 'pg_subtrans', 'pg_wal', 'pg_wal/archive_status'];

export function parsePostgresBackupMetadata(s: string): PostgresBackupMetadata {
  const m = decodeBackupMetadata(s) as PostgresBackupMetadata;
  if (typeof m.dataDir !== 'string' || typeof m.snapshotSetId !== 'string' || !Array.isArray(m.tablespaces)) {
    throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', 'the PostgreSQL backup metadata lacks the data directory or snapshot set id; restore from a backup made by the PostgreSQL writer');
  }
  return m;
}

export class PostgresWriter extends Writer {
  readonly engine: PostgresEngine;
  private readonly servicesOption: PostgresServiceControl | undefined;
  private readonly pgCtl: string | undefined;
  private readonly spoolOption: string | undefined;
  private layout: PostgresLayout | undefined;
  /** The snapshot set of the backup in progress (cached: BackupComplete cannot ask for it). */
  private setId: Guid | undefined;

  constructor(opts: PostgresWriterOptions) {
    const id = PostgresEngine.identity(opts.instanceName);
    super({ writerId: id.writerId, writerName: id.writerName, instanceName: id.instanceName ?? '', usage: id.usage, sourceType: id.source, level: ApplicationLevel.BACK_END });
    this.engine = new PostgresEngine(opts);
    this.servicesOption = opts.services;
    this.pgCtl = opts.pgCtl;
    this.spoolOption = opts.spoolDir;
  }

  spoolDir(layout: PostgresLayout): string {
    return this.spoolOption ?? `${layout.dataDir}.shadowcopy-wal`;
  }

  private async discover(): Promise<PostgresLayout> {
    try {
      this.layout = await this.engine.discover();
    } catch (e) {
      // Identify must answer even while the server is down (e.g. during a restore): the
      // layout seen last is still the truth about where the files are.
      if (!this.layout) throw e;
    }
    return this.layout;
  }

  override async onIdentify(md: WriterMetadataBuilder): Promise<void> {
    const layout = await this.discover();
    const lp = this.engine.logicalPath;
    this.engine.describe(md, layout);
    // pg_wal's files stay out of the snapshot and the backup: the spool below holds every
    // segment recovery needs (from the backup's checkpoint through pg_backup_stop) and is
    // what the restore replays, and PostgreSQL's backup docs let pg_wal/ be left out. Copying
    // it anyway (up to max_wal_size of old segments, often more than the data) was about half
    // of the copy provider's and the requester's work, taken from the running server.
    if (!layout.walIsSymlink) {
      md.addExcludeFiles(join(layout.dataDir, 'pg_wal'), '*', true);
      md.addExcludeFilesFromSnapshot(join(layout.dataDir, 'pg_wal'), '*', true);
    }
    // Restored beside the live directories, swapped in by PostRestore (see the file comment).
    md.setRestoreMethod(RestoreMethod.RESTORE_TO_ALTERNATE_LOCATION, this.engine.service, undefined, WriterRestore.ALWAYS, false);
    const spool = this.spoolDir(layout);
    md.addComponent({ type: ComponentType.FILEGROUP, logicalPath: `${lp}\\data`, componentName: 'wal-spool', caption: `WAL through pg_backup_stop, spooled in ${spool}`, selectable: false });
    // No *_SNAPSHOT_REQUIRED bit: these segments exist only after the snapshot.
    md.addFilesToFileGroup(`${lp}\\data`, 'wal-spool', spool, '*', true, undefined, FileSpecBackupType.ALL_BACKUP_REQUIRED);
    md.addAlternateLocationMapping(layout.dataDir, '*', true, `${layout.dataDir}${STAGING_SUFFIX}`);
    for (const t of layout.tablespaces) md.addAlternateLocationMapping(t.location, '*', true, `${t.location}${STAGING_SUFFIX}`);
    if (layout.walIsSymlink) md.addAlternateLocationMapping(layout.walDir, '*', true, `${layout.walDir}${STAGING_SUFFIX}`);
    md.addAlternateLocationMapping(spool, '*', true, `${layout.dataDir}${RESTORED_WAL_SUFFIX}`);
  }

  override onPrepareBackup(): HandlerResult {
    return vetoOnFailure(this, () => this.discover());
  }

  override onPrepareSnapshot(): HandlerResult {
    const setId = this.getCurrentSnapshotSetId();
    this.setId = setId;
    return vetoOnFailure(this, async () => {
      const layout = this.layout ?? (await this.discover());
      rmSync(join(this.spoolDir(layout), setId.value), { recursive: true, force: true });
      await this.engine.startBackup(`shadowcopy ${setId.value}`);
    });
  }

  override onPostSnapshot(components: WriterComponents | undefined): HandlerResult {
    const setId = this.getCurrentSnapshotSetId();
    return vetoOnFailure(this, async () => {
      const layout = this.layout!;
      const spool = this.spoolDir(layout);
      const stopped = await this.engine.stopBackup({ walDir: join(spool, setId.value) });
      const data = components?.components.find((c) => c.logicalPath === this.engine.logicalPath && c.componentName === 'data');
      if (!data) throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', 'the data component is not in the backup document, so the backup label has nowhere to go; select the PostgreSQL data component');
      const meta: PostgresBackupMetadata = {
        ...(JSON.parse(encodeBackupMetadata(stopped)) as ReturnType<typeof decodeBackupMetadata>),
        snapshotSetId: setId.value,
        dataDir: layout.dataDir,
        tablespaces: layout.tablespaces.map((t) => ({ oid: t.oid, location: t.location })),
        walDir: layout.walDir,
        walIsSymlink: layout.walIsSymlink,
        spoolDir: spool,
        owner: { uid: statSync(layout.dataDir).uid, gid: statSync(layout.dataDir).gid },
      };
      data.setBackupMetadata(JSON.stringify(meta));
      this.emit('stopped', stopped);
    });
  }

  override async onAbort(): Promise<boolean> {
    await this.engine.abort();
    this.cleanSpool();
    return true;
  }

  override onBackupComplete(): HandlerResult {
    // The requester has read the spool by now (it copies before BackupComplete).
    this.cleanSpool();
    return true;
  }

  override async onBackupShutdown(setId: Guid): Promise<boolean> {
    await this.engine.abort();
    this.cleanSpool(setId);
    this.setId = undefined;
    return true;
  }

  override onPostRestore(components: WriterComponents | undefined): HandlerResult {
    return vetoOnFailure(this, async () => {
      const data = components?.components.find((c) => c.logicalPath === this.engine.logicalPath && c.componentName === 'data' && c.selectedForRestore);
      if (!data) return;
      if (data.additionalRestores) return; // more restores follow: the last one starts the server
      const metadata = parsePostgresBackupMetadata(data.getBackupMetadata());
      await swapInRestoredServer({ metadata, service: this.engine.service, services: this.services(metadata.dataDir) });
    });
  }

  /** What PostRestore stops and starts the server of `dataDir` with. */
  services(dataDir: string): PostgresServiceControl {
    return this.servicesOption ?? (this.pgCtl ? pgCtlServiceControl(this.pgCtl, dataDir) : systemctl);
  }

  private cleanSpool(setId: Guid | undefined = this.setId): void {
    if (!setId || setId.isNull || !this.layout) return;
    rmSync(join(this.spoolDir(this.layout), setId.value), { recursive: true, force: true });
  }
}

export interface SwapOptions {
  metadata: PostgresBackupMetadata;
  /** A directory the whole restore was relocated under ('' or absent: the original places). */
  root?: string;
  service: string;
  services: PostgresServiceControl;
}

/**
 * PostRestore's procedure: with the service stopped, the restored (staging) directories
 * replace the live ones, which are kept beside them as `<dir>.pre-restore-<time>`; then
 * backup_label, tablespace_map, recovery.signal and restore_command are written and the
 * service started. On a failure before the start, the moves are undone and the old server
 * started again.
 */
export async function swapInRestoredServer(o: SwapOptions): Promise<{ dataDir: string; kept: string[] }> {
  const m = o.metadata;
  const at = (p: string): string => (o.root ? join(o.root, p) : p);
  const dataDir = at(m.dataDir);
  const staging = `${dataDir}${STAGING_SUFFIX}`;
  const walArchiveDir = join(`${dataDir}${RESTORED_WAL_SUFFIX}`, m.snapshotSetId);
  if (!statSync(staging, { throwIfNoEntry: false })?.isDirectory()) {
    throw new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `the restored data directory ${staging} is missing; restore the PostgreSQL data component (to its alternate location) first`);
  }
  // Whoever owned PGDATA at backup owns the restored directories: the requester made the
  // staging copy's directories, as root.
  const ownerOf = m.owner ?? lstatSync(existsSync(dataDir) ? dataDir : staging);
  const moves: [string, string][] = [[staging, dataDir]];
  for (const t of m.tablespaces) if (existsSync(`${at(t.location)}${STAGING_SUFFIX}`)) moves.push([`${at(t.location)}${STAGING_SUFFIX}`, at(t.location)]);
  if (m.walIsSymlink && existsSync(`${at(m.walDir)}${STAGING_SUFFIX}`)) moves.push([`${at(m.walDir)}${STAGING_SUFFIX}`, at(m.walDir)]);

  await o.services.stop(o.service);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const done: { from: string; to: string; kept?: string }[] = [];
  try {
    for (const [from, to] of moves) {
      let kept: string | undefined;
      if (existsSync(to)) {
        kept = `${to}.pre-restore-${stamp}`;
        renameSync(to, kept);
      }
      renameSync(from, to);
      done.push({ from, to, ...(kept ? { kept } : {}) });
    }
    for (const d of RUNTIME_DIRS) mkdirSync(join(dataDir, d), { recursive: true, mode: 0o700 });
    if (m.walIsSymlink) {
      // The restored pg_wal link names the original WAL directory; point it at the restored one.
      rmSync(join(dataDir, 'pg_wal'), { recursive: true, force: true });
      symlinkSync(at(m.walDir), join(dataDir, 'pg_wal'));
    }
    prepareRestoredDataDir({
      dataDir,
      backupLabel: m.backupLabel,
      tablespaceMap: m.tablespaceMap,
      walArchiveDir,
      walFiles: m.walFiles,
      tablespaceLocations: Object.fromEntries(m.tablespaces.map((t) => [t.oid, at(t.location)])),
    });
    if (process.getuid?.() === 0) {
      for (const { to } of done) chownTree(to, ownerOf.uid, ownerOf.gid);
      chownTree(`${dataDir}${RESTORED_WAL_SUFFIX}`, ownerOf.uid, ownerOf.gid);
    }
    // PostgreSQL refuses a data directory others can read.
    chmodSync(dataDir, 0o700);
  } catch (e) {
    for (const d of done.reverse()) {
      rmSync(d.from, { recursive: true, force: true });
      renameSync(d.to, d.from);
      if (d.kept) renameSync(d.kept, d.to);
    }
    await o.services.start(o.service).catch(() => undefined);
    throw VssError.is(e) ? e : new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `swapping in the restored PostgreSQL data directory failed: ${(e as Error).message}; the previous directories are back in place`, { cause: e });
  }
  await o.services.start(o.service);
  return { dataDir, kept: done.flatMap((d) => (d.kept ? [d.kept] : [])) };
}

function chownTree(path: string, uid: number, gid: number): void {
  if (!existsSync(path)) return;
  const stack = [path];
  while (stack.length) {
    const p = stack.pop()!;
    lchownSync(p, uid, gid);
    const st = lstatSync(p);
    if (st.isDirectory()) for (const n of readdirSync(p)) stack.push(join(p, n));
  }
}
