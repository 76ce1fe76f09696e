// shadowcopy run [--volume PATH]... -- COMMAND [ARGS]: like vshadow's exec. Makes an
// application-consistent snapshot set, exposes each snapshot read-only, runs COMMAND with
// the snapshot paths in its environment, marks the backup successful only if COMMAND
// exits 0, completes, cleans up, and exits with COMMAND's status.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { completeBackup, componentKey, snapshotForBackup } from '../../backup/run-backup.js';
import { VssError } from '../../vss/index.js';
import { addCoordinatorOptions, coordinatorAccess, type CoordinatorCliOptions } from '../coordinator-options.js';
import { EXIT } from '../exit-codes.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

interface RunCliOptions extends CoordinatorCliOptions {
  volume: string[];
  writerVerify: string[];
  writerExclude: string[];
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description('Snapshot volumes application-consistently, expose them read-only and run a command on them (like vshadow -exec)')
    .argument('<command...>', 'the command and its arguments (put them after --)')
    .option('--volume <path>', 'a volume (any path on it) to snapshot; repeatable', collect, [])
    .option('--writer-verify <id>', 'this writer must take part; repeatable', collect, [])
    .option('--writer-exclude <id>', 'leave this writer out; repeatable', collect, []);
  addCoordinatorOptions(cmd).action(async (command: string[], o: RunCliOptions) => {
    if (o.volume.length === 0) throw new VssError('E_INVALIDARG', 'name at least one volume with --volume PATH');
    const access = await coordinatorAccess(o);
    const exposeRoot = mkdtempSync(join(tmpdir(), 'shadowcopy-run-'));
    const exposed: string[] = [];
    let status: number;
    try {
      const session = await access.backupComponents();
      const admin = await access.admin();
      try {
        const prepared = await snapshotForBackup(session, { paths: o.volume, writerVerify: o.writerVerify, writerExclude: o.writerExclude });
        const roots: Record<string, string> = {};
        for (const [i, s] of prepared.snapshots.entries()) {
          const at = join(exposeRoot, String(i));
          mkdirSync(at);
          roots[s.originalVolumeName] = await admin.exposeSnapshot(s.snapshotId, at);
          exposed.push(s.snapshotId.value);
        }
        const paths = Object.values(roots);
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          SHADOWCOPY_SNAPSHOT_SET_ID: prepared.snapshotSetId.value,
          SHADOWCOPY_ROOT: paths[0],
          SHADOWCOPY_ROOTS: JSON.stringify(roots),
          ...Object.fromEntries(paths.map((p, i) => [`SHADOWCOPY_ROOT_${i}`, p])),
        };
        for (const w of prepared.warnings) process.stderr.write(`shadowcopy: warning: ${w}\n`);
        status = await runChild(command, env);
        // The backup succeeded only if the command did: every component says so.
        const failures = new Map<string, string>();
        if (status !== 0) {
          for (const w of prepared.chosen.writers) for (const c of w.components) failures.set(componentKey(w.metadata.identity.writerId.value, c.node.fullPath), `${command[0]} exited with status ${status}`);
        }
        await completeBackup(session, prepared.chosen, failures, true);
      } finally {
        for (const id of exposed) await admin.unexposeSnapshot(id).catch(() => undefined);
        admin.close();
        await session.release();
      }
    } finally {
      rmSync(exposeRoot, { recursive: true, force: true });
      await access.close();
    }
    process.exitCode = status;
  });
}

/** Runs the command with inherited stdio; its exit status (128 + signal number when killed). */
function runChild(command: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env });
    // Ctrl-C reaches the child through the terminal; we wait for it to finish.
    const ignore = (): void => undefined;
    process.on('SIGINT', ignore);
    child.once('error', (e) => {
      process.off('SIGINT', ignore);
      reject(new VssError('VSS_E_OBJECT_NOT_FOUND', `cannot run ${command[0]}: ${e.message}`, { cause: e }));
    });
    child.once('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : EXIT.FAILED));
    });
  });
}
