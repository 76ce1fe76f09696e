// shadowcopy restore --from DIR: checks every checksum, then restores the backup chain in order.
import type { Command } from 'commander';
import { SessionRestoreParticipation } from '../../backup/restore-participation.js';
import { runRestore } from '../../backup/run-restore.js';
import { SystemdServiceManager } from '../../backup/service-manager.js';
import { type BackupComponentsDocument, fileRestoreStatusCodec, FileRestoreStatus, VssError, type WriterMetadata } from '../../vss/index.js';
import { addCoordinatorOptions, coordinatorAccess, type CoordinatorCliOptions, stateDir } from '../coordinator-options.js';
import { EXIT } from '../exit-codes.js';
import { formatBytes, ProgressReporter } from '../progress.js';
import { parseComponentChoice } from './backup.js';

interface RestoreCliOptions extends CoordinatorCliOptions {
  from: string;
  component: string[];
  subcomponent: string[];
  restoreOptions: string[];
  to?: string;
  files: boolean;
  dryRun?: boolean;
  json?: boolean;
}

/** The explicit component of `bcd` that `path` (LOGICAL\PATH\NAME) is, or lies under: the longest match. */
function definingComponent(bcd: BackupComponentsDocument, wmds: readonly WriterMetadata[], writer: string, path: string) {
  const lower = path.toLowerCase();
  // A writer is named by class id, instance name or (from the stored metadata) its name.
  const named = (w: BackupComponentsDocument['writers'][number]): boolean =>
    w.writerId.equals(writer) || (w.instanceName !== '' && w.instanceName === writer) || wmds.some((m) => m.identity.instanceId.equals(w.instanceId) && m.identity.writerName === writer);
  let best: { c: BackupComponentsDocument['writers'][number]['components'][number]; len: number } | undefined;
  for (const w of bcd.writers) {
    if (!named(w)) continue;
    for (const c of w.components) {
      const fp = c.fullPath.toLowerCase();
      if ((lower === fp || lower.startsWith(`${fp}\\`)) && fp.length > (best?.len ?? -1)) best = { c, len: fp.length };
    }
  }
  return best?.c;
}

/** Applies --subcomponent and --restore-options to a step's document (before PreRestore). */
function restoreChoices(o: RestoreCliOptions): (bcd: BackupComponentsDocument, step: { wmds: readonly WriterMetadata[] }) => void {
  return (bcd, { wmds }) => {
    for (const text of o.subcomponent) {
      const i = text.indexOf(':');
      if (i < 0) throw new VssError('E_INVALIDARG', `--subcomponent ${text}: expected WRITER:LOGICAL\\PATH\\NAME`);
      const [writer, path] = [text.slice(0, i), text.slice(i + 1)];
      const c = definingComponent(bcd, wmds, writer, path);
      if (!c || c.fullPath.toLowerCase() === path.toLowerCase()) {
        throw new VssError('VSS_E_OBJECT_NOT_FOUND', `--subcomponent ${text}: no component backed up explicitly by writer ${writer} contains "${path}"; name a component below one that is in the backup`);
      }
      const j = path.lastIndexOf('\\');
      c.setSelectedForRestore(true);
      if (!c.restoreSubcomponents.some((x) => `${x.logicalPath}\\${x.componentName}`.toLowerCase() === path.toLowerCase())) c.addRestoreSubcomponent(path.slice(0, j), path.slice(j + 1));
    }
    for (const text of o.restoreOptions) {
      const eq = text.indexOf('=');
      const target = eq < 0 ? '' : text.slice(0, eq);
      const colon = target.indexOf(':');
      if (eq < 0 || colon < 0) throw new VssError('E_INVALIDARG', `--restore-options ${text}: expected WRITER:LOGICAL\\PATH\\NAME=OPTIONS`);
      const c = definingComponent(bcd, wmds, target.slice(0, colon), target.slice(colon + 1));
      if (!c || c.fullPath.toLowerCase() !== target.slice(colon + 1).toLowerCase()) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `--restore-options: writer ${target.slice(0, colon)} has no explicit component "${target.slice(colon + 1)}" in the backup`);
      c.setRestoreOptions(text.slice(eq + 1));
    }
  };
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerRestore(program: Command): void {
  const cmd = program
    .command('restore')
    .description('Restore a backup directory (and the chain it builds on), after checking every file\'s checksum')
    .requiredOption('--from <dir>', 'the backup directory (the newest of a chain)')
    .option('--component <writer[:path]>', 'restore only this writer\'s components, or this one (WRITER:LOGICAL\\PATH\\NAME); repeatable', collect, [])
    .option('--subcomponent <writer:path>', 'restore only this part of a component that was backed up whole (it must be selectable for restore); repeatable', collect, [])
    .option('--restore-options <writer:path=options>', 'restore options for a component, e.g. \'W:db="Roll Forward"="None"\'; repeatable', collect, [])
    .option('--to <dir>', 'restore under this directory instead of the original places')
    .option('--no-files', 'leave out the crash-consistent files (restore writers\' components only)')
    .option('--dry-run', 'print what would go where; change nothing')
    .option('--json', 'print the result as JSON');
  // Writers take part through the daemon; --standalone restores without writer participation (spec §14.7).
  addCoordinatorOptions(cmd).action(async (o: RestoreCliOptions) => {
      const progress = ProgressReporter.for(Boolean(o.json));
      const access = o.dryRun || o.standalone ? undefined : await coordinatorAccess(o);
      let report;
      try {
        report = await runRestore({
          from: o.from,
          components: o.component.map(parseComponentChoice),
          ...(o.to ? { to: o.to } : {}),
          files: o.files,
          dryRun: Boolean(o.dryRun),
          stateDir: stateDir(o.stateDir),
          serviceManager: new SystemdServiceManager(),
          ...(access ? { participation: new SessionRestoreParticipation({ open: () => access.backupComponents() }) } : {}),
          onSelect: restoreChoices(o),
          onProgress: progress.update,
        });
      } finally {
        progress.done();
        await access?.close();
      }
      const writerFailures = report.steps.flatMap((s) => s.writerFailures ?? []);
      const all = [...report.steps.flatMap((s) => s.results), ...(report.files ? [report.files] : [])];
      const failed = all.filter((r) => r.status !== FileRestoreStatus.ALL && !r.skippedReason);
      if (o.json) {
        const result = (r: (typeof all)[number]) => ({
          component: r.plan.definingComponent.fullPath,
          writer: r.plan.writerName,
          status: fileRestoreStatusCodec.nameOf(r.status),
          placement: r.placement,
          files: r.filesRestored,
          bytes: r.bytesRestored,
          ...(r.skippedReason ? { skipped: r.skippedReason } : {}),
          ...(r.error ? { error: r.error.message } : {}),
          ...(o.dryRun ? { writes: r.writes.map((w) => ({ path: w.entry.path, destination: w.destination, via: w.via })) } : {}),
        });
        process.stdout.write(`${JSON.stringify({ verifiedFiles: report.verifiedFiles, steps: report.steps.map((s) => ({ backupId: s.backupId, backupType: s.backupType, components: s.results.map(result), writerFailures: (s.writerFailures ?? []).map((f) => ({ ...f, error: f.error?.message })) })), ...(report.files ? { files: result(report.files) } : {}) }, null, 2)}\n`);
      } else {
        const lines = [`${o.dryRun ? 'Dry run: nothing changed. ' : ''}Checked ${report.verifiedFiles} files against their checksums.`];
        for (const s of report.steps) {
          lines.push(`Backup ${s.backupId} (${s.backupType}):`);
          for (const r of s.results) lines.push(describe(r, Boolean(o.dryRun)));
        }
        if (report.files) lines.push('Crash-consistent files:', describe(report.files, Boolean(o.dryRun)));
        for (const f of writerFailures) lines.push(`Writer failure: ${f.error?.message ?? JSON.stringify(f)}`);
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      if (failed.length || writerFailures.length) process.exitCode = EXIT.PARTIAL;
  });
}

function describe(r: Awaited<ReturnType<typeof runRestore>>['steps'][number]['results'][number], dryRun: boolean): string {
  const head = `  ${r.plan.definingComponent.fullPath}: `;
  if (r.error) return `${head}FAILED, nothing changed: ${r.error.message}`;
  if (r.skippedReason) return `${head}skipped: ${r.skippedReason}`;
  if (dryRun) return [`${head}would restore ${r.writes.length} entries (${r.placement})`, ...r.writes.slice(0, 50).map((w) => `    ${w.entry.path} -> ${w.destination}`), ...(r.writes.length > 50 ? [`    … and ${r.writes.length - 50} more`] : [])].join('\n');
  return `${head}${r.filesRestored} entries, ${formatBytes(r.bytesRestored)} restored (${r.placement})`;
}
