// shadowcopy apply-reboot-restores: puts in place the files that RESTORE_AT_REBOOT restores
// staged (spec §14.1). Meant for a boot-time unit ordered before the services it restores:
//   [Unit] DefaultDependencies=no  Before=sysinit.target  After=local-fs.target
//   [Service] Type=oneshot  ExecStart=/usr/bin/shadowcopy apply-reboot-restores
import type { Command } from 'commander';
import { applyRebootRestores } from '../../backup/restore-executor.js';
import { stateDir } from '../coordinator-options.js';
import { EXIT } from '../exit-codes.js';

export function registerApplyRebootRestores(program: Command): void {
  program
    .command('apply-reboot-restores')
    .description('Put in place the files staged by restores that wait for a reboot (run at boot, before services start)')
    .option('--state-dir <dir>', 'where the staged files are (default $SHADOWCOPY_STATE_DIR or /var/lib/shadowcopy)')
    .option('--json', 'print the result as JSON')
    .action(async (o: { stateDir?: string; json?: boolean }) => {
      const r = await applyRebootRestores(stateDir(o.stateDir));
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ applied: r.applied, failed: r.failed.map((f) => ({ component: f.component, error: f.error.message })) }, null, 2)}\n`);
      } else {
        for (const c of r.applied) process.stdout.write(`applied: ${c}\n`);
        for (const f of r.failed) process.stderr.write(`shadowcopy: ${f.component}: ${f.error.message}\n`);
        if (!r.applied.length && !r.failed.length) process.stdout.write('nothing staged\n');
      }
      if (r.failed.length) process.exitCode = EXIT.FAILED;
    });
}
