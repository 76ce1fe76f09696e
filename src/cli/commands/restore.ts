// shadowcopy restore --from DIR: checks every checksum, then restores the backup chain in order.
import type { Command } from 'commander';
import { runRestore } from '../../backup/run-restore.js';
import { SystemdServiceManager } from '../../backup/service-manager.js';
import { fileRestoreStatusCodec, FileRestoreStatus } from '../../vss/index.js';
import { stateDir } from '../coordinator-options.js';
import { EXIT } from '../exit-codes.js';
import { formatBytes, ProgressReporter } from '../progress.js';
import { parseComponentChoice } from './backup.js';

interface RestoreCliOptions {
  from: string;
  component: string[];
  to?: string;
  files: boolean;
  dryRun?: boolean;
  json?: boolean;
  stateDir?: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerRestore(program: Command): void {
  program
    .command('restore')
    .description('Restore a backup directory (and the chain it builds on), after checking every file\'s checksum')
    .requiredOption('--from <dir>', 'the backup directory (the newest of a chain)')
    .option('--component <writer[:path]>', 'restore only this writer\'s components, or this one (WRITER:LOGICAL\\PATH\\NAME); repeatable', collect, [])
    .option('--to <dir>', 'restore under this directory instead of the original places')
    .option('--no-files', 'leave out the crash-consistent files (restore writers\' components only)')
    .option('--dry-run', 'print what would go where; change nothing')
    .option('--state-dir <dir>', 'where interrupted restores are journaled (default $SHADOWCOPY_STATE_DIR or /var/lib/shadowcopy)')
    .option('--json', 'print the result as JSON')
    .action(async (o: RestoreCliOptions) => {
      const progress = ProgressReporter.for(Boolean(o.json));
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
          onProgress: progress.update,
        });
      } finally {
        progress.done();
      }
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
        process.stdout.write(`${JSON.stringify({ verifiedFiles: report.verifiedFiles, steps: report.steps.map((s) => ({ backupId: s.backupId, backupType: s.backupType, components: s.results.map(result) })), ...(report.files ? { files: result(report.files) } : {}) }, null, 2)}\n`);
      } else {
        const lines = [`${o.dryRun ? 'Dry run: nothing changed. ' : ''}Checked ${report.verifiedFiles} files against their checksums.`];
        for (const s of report.steps) {
          lines.push(`Backup ${s.backupId} (${s.backupType}):`);
          for (const r of s.results) lines.push(describe(r, Boolean(o.dryRun)));
        }
        if (report.files) lines.push('Crash-consistent files:', describe(report.files, Boolean(o.dryRun)));
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      if (failed.length) process.exitCode = EXIT.PARTIAL;
    });
}

function describe(r: Awaited<ReturnType<typeof runRestore>>['steps'][number]['results'][number], dryRun: boolean): string {
  const head = `  ${r.plan.definingComponent.fullPath}: `;
  if (r.error) return `${head}FAILED, nothing changed: ${r.error.message}`;
  if (r.skippedReason) return `${head}skipped: ${r.skippedReason}`;
  if (dryRun) return [`${head}would restore ${r.writes.length} entries (${r.placement})`, ...r.writes.slice(0, 50).map((w) => `    ${w.entry.path} -> ${w.destination}`), ...(r.writes.length > 50 ? [`    … and ${r.writes.length - 50} more`] : [])].join('\n');
  return `${head}${r.filesRestored} entries, ${formatBytes(r.bytesRestored)} restored (${r.placement})`;
}
