// A restore killed at any moment leaves every file of a component either old or new,
// never a mix, once recovery has run (the daemon and every restore run it first).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { recoverRestores } from '../../src/backup/restore-executor.js';

const child = join(dirname(fileURLToPath(import.meta.url)), 'restore-child.ts');

async function killDuringRestore(delayMs: number): Promise<{ root: string; finished: boolean }> {
  const p = spawn(process.execPath, ['--import', 'tsx', child], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const root = await new Promise<string>((resolve, reject) => {
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+)\n/.exec(out);
      if (m) resolve(m[1]!);
    });
    p.once('exit', (code) => reject(new Error(`child exited (${code}) before it was ready`)));
  });
  p.stdin.write('go\n');
  await new Promise((r) => setTimeout(r, delayMs));
  p.kill('SIGKILL');
  await new Promise((r) => p.once('exit', r));
  return { root, finished: out.includes('DONE') };
}

test('SIGKILL during a restore, then recovery: each component all old or all new', async () => {
  const outcomes: string[] = [];
  for (const delay of [0, 3, 8, 15, 30, 60, 120]) {
    const { root, finished } = await killDuringRestore(delay);
    try {
      const stateDir = join(root, 'state');
      const journals = existsSync(join(stateDir, 'restore-journal')) ? readdirSync(join(stateDir, 'restore-journal')) : [];
      recoverRestores(stateDir);
      const live = join(root, 'live', 'data');
      const contents = readdirSync(live, { recursive: true, encoding: 'utf8' })
        .filter((n) => n.endsWith('.db'))
        .map((n) => readFileSync(join(live, n), 'utf8'));
      const fresh = contents.filter((c) => c.startsWith('OLD-')).length; // the backup's content
      assert.ok(fresh === 0 || fresh === 300, `after a kill at ${delay} ms: ${fresh} of 300 files restored, a mix`);
      // All new: every file, d9 back whole. All old: d9 (removed before the restore) still absent.
      assert.equal(contents.length, fresh === 300 ? 300 : 270, 'no file lost or duplicated');
      if (fresh === 0) assert.ok(!existsSync(join(live, 'd9')), 'the new directory d9 is gone again');
      assert.deepEqual(readdirSync(live, { recursive: true, encoding: 'utf8' }).filter((n) => n.includes('.shadowcopy-')), [], 'no staged or kept files left');
      outcomes.push(`${delay}ms:${finished ? 'finished' : journals.length ? 'mid-swap' : fresh ? 'restored' : 'before-swap'}`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  // Where the kills landed, for the reader of the test log.
  console.log(`kill outcomes: ${outcomes.join(' ')}`);
});
