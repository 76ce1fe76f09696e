// README's first command must keep working: `npm run demo` backs up a running application,
// restores it elsewhere and verifies it.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

test('npm run demo: backup, restore, verification and trace', { skip: process.getuid?.() === 0 ? false : 'the demo mounts a tmpfs volume, which needs root' }, () => {
  // The demo keeps its work directory for the user to look at; the test's goes with the test.
  const tmp = mkdtempSync(join(tmpdir(), 'shadowcopy-demo-test-'));
  let r: SpawnSyncReturns<string>;
  try {
    r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'demo.ts')], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, TMPDIR: tmp } });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, new RegExp(`Everything is in ${tmp}/shadowcopy-demo-`));
  assert.match(r.stdout, /components: ledger ok/);
  assert.match(r.stdout, /(\d+) of \1 restored files match their sha256/);
  assert.match(r.stdout, /ledger: (\d+) transfers in accounts\.json and \1 in journal\.log; the total is still 1,000,000/);
  assert.match(r.stdout, /Freeze +Demo Ledger +ok/);
  assert.match(r.stdout, /Frozen \(Freeze to Thaw\):/);
});
