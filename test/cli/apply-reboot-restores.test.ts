// RESTORE_AT_REBOOT: the restore stages the files; the boot-time command puts them in place.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RestoreExecutor } from '../../src/backup/restore-executor.js';
import { RestoreMethod } from '../../src/vss/index.js';
import { Scenario } from '../backup/restore-scenario.js';
import { runCli } from '../support/cli.js';

test('shadowcopy apply-reboot-restores applies what a RESTORE_AT_REBOOT restore staged, once', async () => {
  const s = new Scenario({ method: RestoreMethod.RESTORE_AT_REBOOT });
  try {
    s.write('data/a.db', 'CHANGED');
    s.select(['data']);
    const [r] = await new RestoreExecutor({ stateDir: s.stateDir }).restore(s.restoreSet(), s.source);
    assert.equal(r!.placement, 'staged-for-reboot');
    assert.equal(readFileSync(join(s.live, 'data/a.db'), 'utf8'), 'CHANGED');
    const first = runCli(['apply-reboot-restores', '--state-dir', s.stateDir, '--json']);
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), { applied: ['data'], failed: [] });
    assert.equal(readFileSync(join(s.live, 'data/a.db'), 'utf8'), 'alpha');
    const again = runCli(['apply-reboot-restores', '--state-dir', s.stateDir]);
    assert.equal(again.stdout.trim(), 'nothing staged');
  } finally {
    s.cleanup();
  }
});
