// shadowcopy create [--persistent] [--nowriters] [--writer-include W]... [--writer-exclude W]...
// [--save-bcd FILE] [--json] PATH...: vshadow's default action. A full backup-context sequence:
// GatherWriterMetadata, AddComponent for every component of the taking-part writers whose files
// are on the given volumes (all components of an --writer-include writer; required ones always),
// StartSnapshotSet, AddToSnapshotSet per volume, PrepareForBackup, DoSnapshotSet, the BCD saved
// if asked, BackupComplete. Without --persistent the snapshots are auto-release: they vanish when
// the command ends (useful with --save-bcd, or for testing).
import { writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { resolveVolume } from '../../providers/index.js';
import type { BackupComponents, WriterStatus } from '../../requester/index.js';
import {
  BackupSelection,
  BackupType,
  Guid,
  HRESULT,
  hresultName,
  isFailedWriterState,
  ObjectType,
  snapshotContextCodec,
  VssError,
  type SnapshotProperties,
  type VssErrorName,
  type WriterMetadata,
} from '../../vss/index.js';
import { createContext, matchesWriter, snapshotJson, writerStateLabel } from '../admin-format.js';
import { addCoordinatorOptions, coordinatorAccess, type CoordinatorCliOptions } from '../coordinator-options.js';

interface CreateOptions extends CoordinatorCliOptions {
  persistent?: boolean;
  /** commander's spelling of --nowriters. */
  nowriters?: boolean;
  writerInclude: string[];
  writerExclude: string[];
  saveBcd?: string;
  json?: boolean;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** A chosen component, as AddComponent takes it. */
interface Chosen {
  instanceId: Guid;
  metadata: WriterMetadata;
  components: { type: number; logicalPath: string; componentName: string }[];
}

/** The volume root of `path`, or of its closest existing ancestor (files a writer names may not exist yet). */
async function volumeRootOf(path: string, cache: Map<string, string | undefined>): Promise<string | undefined> {
  if (cache.has(path)) return cache.get(path);
  let root: string | undefined;
  try {
    root = (await resolveVolume(path)).root;
  } catch (e) {
    const parent = dirname(path);
    if (VssError.is(e) && e.code === 'VSS_E_OBJECT_NOT_FOUND' && parent !== path) root = await volumeRootOf(parent, cache);
  }
  cache.set(path, root);
  return root;
}

function vssName(hr: number): VssErrorName {
  const name = hresultName(hr);
  return (name in HRESULT && (HRESULT[name as VssErrorName] >>> 0) >= 0x80000000 ? name : 'VSS_E_UNEXPECTED_WRITER_ERROR') as VssErrorName;
}

/** The first failed status of a taking-part writer, as an error naming it. */
async function failedWriter(session: BackupComponents, participants: Set<string>, after: string): Promise<VssError | undefined> {
  await session.gatherWriterStatus();
  const bad = session.getWriterStatuses().filter((s: WriterStatus) => participants.has(s.instanceId.toString()) && isFailedWriterState(s.state));
  if (!bad.length) return undefined;
  const text = bad.map((s) => `writer "${s.writerName}"${s.instanceName ? ` (instance "${s.instanceName}")` : ''}: [${s.state}] ${writerStateLabel(s.state)}, ${hresultName(s.hrWriterFailure)}${s.applicationMessage ? ` (${s.applicationMessage})` : ''}`);
  return new VssError(vssName(bad[0]!.hrWriterFailure || HRESULT.VSS_E_UNEXPECTED_WRITER_ERROR), `${after}: ${text.join('; ')}`);
}

export function registerCreate(program: Command): void {
  const cmd = program
    .command('create')
    .description('Create a snapshot set of the volumes holding PATHs, with the writers taking part (like vshadow)')
    .argument('<paths...>', 'a path on each volume to snapshot (a mount point, a btrfs subvolume or a directory on one)')
    .option('--persistent', 'keep the snapshots after the command ends (VSS_CTX_APP_ROLLBACK, or VSS_CTX_NAS_ROLLBACK with --nowriters)')
    .option('--nowriters', 'no writers: a crash-consistent snapshot (VSS_CTX_FILE_SHARE_BACKUP, or VSS_CTX_NAS_ROLLBACK with --persistent)')
    .option('--writer-include <writer>', 'this writer (class id, instance id or name) must take part with all its components; repeatable', collect, [])
    .option('--writer-exclude <writer>', 'leave this writer (class id, instance id or name) out; repeatable', collect, [])
    .option('--save-bcd <file>', 'save the Backup Components Document (genuine XML) after the snapshot is made')
    .option('--json', 'print the result as JSON');
  addCoordinatorOptions(cmd).action(async (paths: string[], o: CreateOptions) => {
    const noWriters = Boolean(o.nowriters);
    const persistent = Boolean(o.persistent);
    if (noWriters && (o.writerInclude.length || o.writerExclude.length)) {
      cmd.error('shadowcopy create: --writer-include and --writer-exclude make no sense with --nowriters', { exitCode: 2, code: 'shadowcopy.usage' });
    }
    const both = o.writerInclude.filter((w) => o.writerExclude.some((x) => x.toLowerCase() === w.toLowerCase()));
    if (both.length) cmd.error(`shadowcopy create: ${both.join(', ')} is both included and excluded`, { exitCode: 2, code: 'shadowcopy.usage' });
    const context = createContext(persistent, noWriters);
    const cache = new Map<string, string | undefined>();
    // One snapshot per volume, whatever the number of paths on it.
    const roots: string[] = [];
    for (const p of paths) {
      const root = (await resolveVolume(p)).root;
      cache.set(p, root);
      if (!roots.includes(root)) roots.push(root);
    }

    const access = await coordinatorAccess(o);
    let session: BackupComponents | undefined;
    let result: { snapshotSetId: Guid; snapshots: SnapshotProperties[]; writers: Chosen[]; warnings: string[] };
    try {
      session = await access.backupComponents();
      const s = session;
      await s.initializeForBackup();
      await s.setContext(context);
      const chosen: Chosen[] = [];
      if (!noWriters) {
        // COPY, as diskshadow's default: a snapshot that is not a backup must not move any writer's backup history.
        await s.setBackupState(true, false, BackupType.COPY, false);
        await s.gatherWriterMetadata();
        const all = Array.from({ length: s.getWriterMetadataCount() }, (_, i) => s.getWriterMetadata(i));
        const who = (w: (typeof all)[number]) => ({ writerId: w.metadata.identity.writerId, instanceId: w.instanceId, writerName: w.metadata.identity.writerName, instanceName: w.metadata.identity.instanceName });
        for (const spec of o.writerInclude) {
          if (!all.some((w) => matchesWriter(spec, who(w)))) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `--writer-include ${spec}: no such writer answered Identify; \`shadowcopy writers\` lists the subscribed writers`);
        }
        const selection = new BackupSelection(all.map((w) => w.metadata));
        for (const w of selection.writers) {
          const id = w.metadata.identity;
          const ident = { writerId: id.writerId, instanceId: id.instanceId, writerName: id.writerName, instanceName: id.instanceName };
          if (o.writerExclude.some((x) => matchesWriter(x, ident))) continue;
          const forced = o.writerInclude.some((x) => matchesWriter(x, ident));
          for (const node of w.tree.nodes) {
            // Only top-level choices: a selectable component brings its subtree, a required one itself.
            if (node.kind !== 'optional-top' && node.kind !== 'required') continue;
            let take = forced;
            if (!take) {
              const files = w.tree.componentSet(node).flatMap((m) => [...m.component.files, ...m.component.databaseFiles, ...m.component.logFiles]);
              for (const f of files) {
                const root = await volumeRootOf(f.path, cache);
                if (root !== undefined && roots.includes(root)) {
                  take = true;
                  break;
                }
              }
            }
            if (take) selection.addComponent({ writerId: id.writerId, instanceId: id.instanceId, logicalPath: node.component.logicalPath, componentName: node.component.componentName });
          }
        }
        selection.addRequiredComponents();
        for (const w of selection.result().writers) {
          const id = w.metadata.identity;
          const c: Chosen = { instanceId: id.instanceId, metadata: w.metadata, components: [] };
          for (const sc of w.components) {
            const comp = sc.node.component;
            await s.addComponent(id.instanceId, id.writerId, comp.type, comp.logicalPath, comp.componentName);
            c.components.push({ type: comp.type, logicalPath: comp.logicalPath, componentName: comp.componentName });
          }
          chosen.push(c);
        }
      }
      const participants = new Set(chosen.map((c) => c.instanceId.toString()));
      const snapshotSetId = await s.startSnapshotSet();
      try {
        const ids: Guid[] = [];
        for (const root of roots) ids.push(await s.addToSnapshotSet(root));
        if (!noWriters) {
          await s.prepareForBackup();
          const bad = await failedWriter(s, participants, 'a writer failed PrepareForBackup; no snapshot was made');
          if (bad) throw bad;
        }
        await s.doSnapshotSet();
        if (!noWriters) {
          const bad = await failedWriter(s, participants, 'a writer failed while the snapshot was made, so it is not consistent for that writer and was deleted');
          if (bad) {
            await s.deleteSnapshots(snapshotSetId, ObjectType.SNAPSHOT_SET).catch(() => undefined);
            throw bad;
          }
        }
        const snapshots = [];
        for (const id of ids) snapshots.push(await s.getSnapshotProperties(id));
        if (o.saveBcd) writeFileSync(o.saveBcd, `${await s.saveAsXml()}\n`, { mode: 0o600 });
        const warnings: string[] = [];
        if (!noWriters) {
          for (const c of chosen) {
            for (const comp of c.components) await s.setBackupSucceeded(c.instanceId, c.metadata.identity.writerId, comp.type as never, comp.logicalPath, comp.componentName, true);
          }
          await s.backupComplete();
          const bad = await failedWriter(s, participants, 'BackupComplete');
          if (bad) warnings.push(`the snapshots were made, but ${bad.message.slice(bad.code.length + 2)}`);
        }
        result = { snapshotSetId, snapshots, writers: chosen, warnings };
      } catch (e) {
        await s.abortBackup().catch(() => undefined);
        throw e;
      }
    } finally {
      // BackupShutdown; auto-release snapshots are deleted now.
      await session?.release().catch(() => undefined);
      await access.close();
    }

    const ctxName = snapshotContextCodec.nameOf(context)!;
    if (o.json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            snapshotSetId: result.snapshotSetId.toString(),
            context: ctxName,
            persistent,
            deletedOnExit: !persistent,
            snapshots: result.snapshots.map(snapshotJson),
            writers: result.writers.map((c) => ({
              writerId: c.metadata.identity.writerId.toString(),
              instanceId: c.instanceId.toString(),
              writerName: c.metadata.identity.writerName,
              instanceName: c.metadata.identity.instanceName,
              components: c.components.map((x) => (x.logicalPath ? `${x.logicalPath}\\${x.componentName}` : x.componentName)),
            })),
            ...(o.saveBcd ? { bcdFile: o.saveBcd } : {}),
            warnings: result.warnings,
          },
          null,
          2,
        )}\n`,
      );
    } else {
      const lines = [
        `Snapshot set {${result.snapshotSetId.toString()}} created (${ctxName}, ${persistent ? 'persistent' : 'auto-release'})`,
        ...result.snapshots.flatMap((p) => [`  Snapshot {${p.snapshotId.toString()}}`, `    Original volume: ${p.originalVolumeName}`, `    Snapshot path:   ${p.snapshotDeviceObject}`]),
        noWriters ? '  Writers: none (--nowriters: crash-consistent)' : result.writers.length ? '  Writers taking part:' : '  Writers taking part: none (no writer has components on these volumes)',
        ...result.writers.map((c) => `    ${c.metadata.identity.writerName}${c.metadata.identity.instanceName ? ` (${c.metadata.identity.instanceName})` : ''}: ${c.components.map((x) => (x.logicalPath ? `${x.logicalPath}\\${x.componentName}` : x.componentName)).join(', ')}`),
        ...(o.saveBcd ? [`  Backup Components Document saved to ${o.saveBcd}`] : []),
        ...result.warnings.map((w) => `  warning: ${w}`),
        ...(persistent
          ? []
          : ['', 'These snapshots were auto-release: they were deleted when this command ended (use --persistent to keep them).']),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    if (result.warnings.length) process.exitCode = 3;
  });
}
