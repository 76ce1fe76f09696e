// Child process for the kill test: builds a scenario of many files, changes them all and
// removes one directory (which the restore builds whole and renames in), says READY with
// its root, then restores the backup over them until killed or done.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RestoreExecutor } from '../../src/backup/restore-executor.js';
import { Scenario } from './restore-scenario.js';

const files: Record<string, string> = {};
for (let i = 0; i < 300; i++) files[`data/d${i % 10}/f${i}.db`] = `OLD-${i}-`.padEnd(4096, 'o');
const s = new Scenario({ files });
for (const rel of Object.keys(files)) writeFileSync(join(s.live, rel), 'NEW');
rmSync(join(s.live, 'data/d9'), { recursive: true });
s.select(['data']);
const set = s.restoreSet();
process.stdout.write(`READY ${s.root}\n`);
process.stdin.once('data', async () => {
  const [r] = await new RestoreExecutor({ stateDir: s.stateDir }).restore(set, s.source);
  process.stdout.write(`DONE ${r!.status}\n`);
});
