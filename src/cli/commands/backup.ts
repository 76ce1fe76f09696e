// shadowcopy backup --to DIR [PATH...]: an application-consistent backup into a directory.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { runBackup, type ComponentChoice } from '../../backup/run-backup.js';
import { BackupType, backupTypeCodec, VssError } from '../../vss/index.js';
import { addCoordinatorOptions, coordinatorAccess, type CoordinatorCliOptions } from '../coordinator-options.js';
import { formatBytes, ProgressReporter } from '../progress.js';
import { EXIT } from '../exit-codes.js';

interface BackupCliOptions extends CoordinatorCliOptions {
  to: string;
  component: string[];
  writerVerify: string[];
  writerExclude: string[];
  type: string;
  previous?: string;
  bestEffort?: boolean;
  json?: boolean;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** `WRITER[:LOGICAL\PATH]`: a writer id or name, optionally one of its components. */
export function parseComponentChoice(text: string): ComponentChoice {
  const i = text.indexOf(':');
  return i < 0 ? { writer: text } : { writer: text.slice(0, i), path: text.slice(i + 1) };
}

export function registerBackup(program: Command): void {
  const cmd = program
    .command('backup')
    .description('Back up paths and writers\' components, application-consistently, into a directory')
    .argument('[paths...]', 'back up every component with files under these paths, and the other files under them (crash-consistent)')
    .requiredOption('--to <dir>', 'the backup directory (new or empty)')
    .option('--component <writer[:path]>', 'a writer (id or name) or one of its components (WRITER:LOGICAL\\PATH\\NAME); repeatable', collect, [])
    .option('--writer-verify <id>', 'this writer must take part, or the backup fails; repeatable', collect, [])
    .option('--writer-exclude <id>', 'leave this writer out; repeatable', collect, [])
    .option('--type <type>', 'full, incremental, differential, log or copy', 'full')
    .option('--previous <dir>', 'the backup an incremental or differential one builds on')
    .option('--best-effort', 'a writer\'s failure marks its components failed instead of failing the backup')
    .option('--json', 'print the result as JSON');
  addCoordinatorOptions(cmd).action(async (paths: string[], o: BackupCliOptions) => {
    const backupType = backupTypeCodec.fromToken(o.type);
    if (backupType === undefined || backupType === BackupType.UNDEFINED || backupType === BackupType.OTHER) {
      throw new VssError('E_INVALIDARG', `--type ${o.type}: expected full, incremental, differential, log or copy`);
    }
    const progress = ProgressReporter.for(Boolean(o.json));
    const abort = new AbortController();
    const onSigint = (): void => abort.abort();
    process.once('SIGINT', onSigint);
    const access = await coordinatorAccess(o);
    try {
      const session = await access.backupComponents();
      let report;
      try {
        report = await runBackup(session, {
          to: o.to,
          paths,
          components: o.component.map(parseComponentChoice),
          writerVerify: o.writerVerify,
          writerExclude: o.writerExclude,
          backupType,
          ...(o.previous ? { previous: o.previous } : {}),
          bestEffort: Boolean(o.bestEffort),
          onProgress: progress.update,
          signal: abort.signal,
        });
      } finally {
        progress.done();
        await session.release();
      }
      // The session's timeline, now that BackupShutdown is in it.
      try {
        const admin = await access.admin();
        writeFileSync(join(report.dir, 'trace.json'), JSON.stringify(await admin.trace(report.snapshotSetId), null, 1), { mode: 0o600 });
        admin.close();
      } catch (e) {
        report.warnings.push(`the session timeline could not be saved: ${(e as Error).message}`);
      }
      const failed = report.components.filter((c) => !c.succeeded);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ dir: report.dir, id: report.manifest.id, snapshotSetId: report.snapshotSetId, backupType: report.manifest.backupType, chain: report.manifest.chain, totals: report.manifest.totals, components: report.components, warnings: report.warnings }, null, 2)}\n`);
      } else {
        const t = report.manifest.totals;
        const lines = [
          `Backup ${report.manifest.id} complete in ${report.dir}`,
          `  type ${report.manifest.backupType}, snapshot set ${report.snapshotSetId}`,
          `  ${t.files} entries, ${formatBytes(t.bytes)} of files, ${formatBytes(t.bytesStored)} stored`,
          ...report.components.map((c) => `  ${c.succeeded ? 'ok    ' : 'FAILED'} ${c.component}${c.error ? `: ${c.error}` : ''}`),
          ...report.warnings.map((w) => `  warning: ${w}`),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      if (failed.length) process.exitCode = EXIT.PARTIAL;
    } catch (e) {
      if (abort.signal.aborted) {
        process.stderr.write('shadowcopy: interrupted; the partial backup has no manifest and will be refused\n');
        process.exitCode = EXIT.INTERRUPTED;
        return;
      }
      throw e;
    } finally {
      process.off('SIGINT', onSigint);
      await access.close();
    }
  });
}
