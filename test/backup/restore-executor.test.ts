import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { CopyPool } from '../../src/backup/copy-pool.js';
import { applyRebootRestores, RestoreExecutor, recoverRestores } from '../../src/backup/restore-executor.js';
import { ProcessServiceManager } from '../../src/backup/service-manager.js';
import { encodeRangesFile, FileRestoreStatus, Guid, RestoreMethod, RestoreTarget } from '../../src/vss/index.js';
import { Scenario, WRITER_ID } from './restore-scenario.js';

const scenarios: Scenario[] = [];
function scenario(...args: ConstructorParameters<typeof Scenario>): Scenario {
  const s = new Scenario(...args);
  scenarios.push(s);
  return s;
}
afterEach(() => {
  for (const s of scenarios.splice(0)) s.cleanup();
});

const read = (p: string): string => readFileSync(p, 'utf8');

/** No staged, kept or journal files left anywhere. */
function assertNoLeftovers(s: Scenario): void {
  const walk = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true, encoding: 'utf8' }) : []);
  assert.deepEqual(walk(s.live).filter((n) => n.includes('.shadowcopy-')), []);
  assert.deepEqual(walk(join(s.stateDir, 'restore-journal')), []);
}

describe('restore executor', () => {
  test('RESTORE_IF_CAN_REPLACE puts back content, mode and mtime, and records ALL', async () => {
    const s = scenario();
    const mtime = statSync(join(s.live, 'data/a.db')).mtimeMs;
    s.write('data/a.db', 'CHANGED');
    chmodSync(join(s.live, 'data/a.db'), 0o600);
    unlinkSync(join(s.live, 'data/sub/b.db'));
    rmSync(join(s.live, 'data/empty'), { recursive: true });
    s.write('data/extra.tmp', 'not in the backup');
    s.select(['data']);
    const results = await new RestoreExecutor({ stateDir: s.stateDir }).restore(s.restoreSet(), s.source, s.bcd);
    assert.equal(results.length, 1);
    const r = results[0]!;
    assert.equal(r.error, undefined, r.error?.message);
    assert.equal(r.status, FileRestoreStatus.ALL);
    assert.equal(r.placement, 'original');
    assert.equal(read(join(s.live, 'data/a.db')), 'alpha');
    assert.equal(read(join(s.live, 'data/sub/b.db')), 'bravo');
    assert.ok(statSync(join(s.live, 'data/empty')).isDirectory(), 'empty directories of recursive sets come back');
    assert.equal(statSync(join(s.live, 'data/a.db')).mode & 0o777, 0o644);
    assert.equal(Math.round(statSync(join(s.live, 'data/a.db')).mtimeMs), Math.round(mtime));
    assert.equal(read(join(s.live, 'data/extra.tmp')), 'not in the backup', 'files outside the backup are left alone');
    assert.equal(s.bcd.getComponent(Guid.parse(WRITER_ID), undefined, '', 'data').getFileRestoreStatus(), FileRestoreStatus.ALL);
    assert.equal(s.bcd.getComponent(Guid.parse(WRITER_ID), undefined, '', 'conf').getFileRestoreStatus(), FileRestoreStatus.UNDEFINED, 'not selected, not touched');
    assertNoLeftovers(s);
  });

  test('RESTORE_IF_CAN_REPLACE: a file that cannot be replaced sends the set to the writer\'s mapping, recorded in the BCD', async () => {
    const s = scenario({ mappingTo: 'alt' });
    rmSync(join(s.live, 'data/sub/b.db'));
    mkdirSync(join(s.live, 'data/sub/b.db')); // a directory in the way cannot be replaced
    s.select(['data']);
    const [r] = await new RestoreExecutor({ stateDir: s.stateDir }).restore(s.restoreSet(), s.source, s.bcd);
    assert.equal(r!.status, FileRestoreStatus.ALL, r!.error?.message);
    assert.equal(r!.placement, 'alternate-mapping');
    assert.equal(read(join(s.root, 'alt/sub/b.db')), 'bravo');
    assert.equal(read(join(s.root, 'alt/a.db')), 'alpha');
    const c = s.bcd.getComponent(Guid.parse(WRITER_ID), undefined, '', 'data');
    assert.equal(c.getAlternateLocationMappingCount(), 1);
    assert.equal(c.getAlternateLocationMapping(0).destination, join(s.root, 'alt'));
  });

  test('RESTORE_IF_CAN_REPLACE without a mapping fails the component and changes nothing', async () => {
    const s = scenario();
    s.write('data/a.db', 'CHANGED');
    rmSync(join(s.live, 'data/sub/b.db'));
    mkdirSync(join(s.live, 'data/sub/b.db'));
    s.select(['data']);
    const [r] = await new RestoreExecutor({ stateDir: s.stateDir }).restore(s.restoreSet(), s.source, s.bcd);
    assert.equal(r!.status, FileRestoreStatus.NONE);
    assert.equal(r!.error?.code, 'E_ACCESSDENIED');
    assert.match(r!.error!.message, /cannot be replaced.*no alternate location/);
    assert.equal(read(join(s.live, 'data/a.db')), 'CHANGED');
  });

  test('RESTORE_IF_NOT_THERE skips a set some of whose files exist, and restores it once none do', async () => {
    const s = scenario({ method: RestoreMethod.RESTORE_IF_NOT_THERE });
    s.write('data/a.db', 'CHANGED');
    s.select(['data']);
    const ex = new RestoreExecutor({ stateDir: s.stateDir });
    const [skipped] = await ex.restore(s.restoreSet(), s.source);
    assert.equal(skipped!.status, FileRestoreStatus.NONE);
    assert.match(skipped!.skippedReason!, /already exist/);
    assert.equal(read(join(s.live, 'data/a.db')), 'CHANGED');
    rmSync(join(s.live, 'data'), { recursive: true });
    const [done] = await ex.restore(s.restoreSet(), s.source);
    assert.equal(done!.status, FileRestoreStatus.ALL, done!.error?.message);
    assert.equal(read(join(s.live, 'data/sub/c.log')), 'charlie');
  });

  test('STOP_RESTORE_START stops the service, restores, and starts it again', async () => {
    const s = scenario({ method: RestoreMethod.STOP_RESTORE_START, service: 'app.service' });
    s.write('conf/app.conf', 'setting=2');
    const sm = new ProcessServiceManager({ 'app.service': { command: 'sleep', args: ['600'] } });
    try {
      await sm.start('app.service');
      s.select(['conf']);
      const [r] = await new RestoreExecutor({ stateDir: s.stateDir, serviceManager: sm }).restore(s.restoreSet(), s.source);
      assert.equal(r!.status, FileRestoreStatus.ALL, r!.error?.message);
      assert.equal(read(join(s.live, 'conf/app.conf')), 'setting=1');
      assert.deepEqual(sm.calls.map((c) => c.verb), ['start', 'stop', 'start']);
      assert.ok(sm.isRunning('app.service'));
    } finally {
      await sm.stopAll();
    }
  });

  test('RESTORE_STOP_START restarts the service after PostRestore; without a service manager it fails clearly', async () => {
    const s = scenario({ method: RestoreMethod.RESTORE_STOP_START, service: 'app.service' });
    const sm = new ProcessServiceManager({ 'app.service': { command: 'sleep', args: ['600'] } });
    try {
      s.select(['conf']);
      const ex = new RestoreExecutor({ stateDir: s.stateDir, serviceManager: sm });
      const results = await ex.restore(s.restoreSet(), s.source);
      assert.equal(sm.calls.length, 0, 'nothing before PostRestore');
      await ex.afterPostRestore(results);
      assert.deepEqual(sm.calls.map((c) => c.verb), ['stop', 'start']);
      await assert.rejects(new RestoreExecutor({ stateDir: s.stateDir }).afterPostRestore(results), /VSS_E_NOT_SUPPORTED.*app\.service/);
    } finally {
      await sm.stopAll();
    }
  });

  test('RESTORE_AT_REBOOT stages the files; applying them at boot puts them in place', async () => {
    const s = scenario({ method: RestoreMethod.RESTORE_AT_REBOOT });
    s.write('data/a.db', 'CHANGED');
    s.select(['data']);
    const [r] = await new RestoreExecutor({ stateDir: s.stateDir }).restore(s.restoreSet(), s.source);
    assert.equal(r!.placement, 'staged-for-reboot');
    assert.equal(read(join(s.live, 'data/a.db')), 'CHANGED', 'nothing changes before the reboot');
    const applied = await applyRebootRestores(s.stateDir);
    assert.deepEqual(applied, { applied: ['data'], failed: [] });
    assert.equal(read(join(s.live, 'data/a.db')), 'alpha');
    assert.deepEqual(await applyRebootRestores(s.stateDir), { applied: [], failed: [] }, 'applied once');
    assertNoLeftovers(s);
  });

  test('RESTORE_AT_REBOOT_IF_CANNOT_REPLACE restores in place when it can', async () => {
    const s = scenario({ method: RestoreMethod.RESTORE_AT_REBOOT_IF_CANNOT_REPLACE });
    s.write('data/a.db', 'CHANGED');
    s.select(['data']);
    const [r] = await new RestoreExecutor({ stateDir: s.stateDir }).restore(s.restoreSet(), s.source);
    assert.equal(r!.placement, 'original');
    assert.equal(read(join(s.live, 'data/a.db')), 'alpha');
  });

  test('a new target sends the set to a new directory', async () => {
    const s = scenario({ newTargetSupport: true });
    s.select(['data'], (r) => r.addNewTarget({ writerId: WRITER_ID, componentName: 'data' }, join(s.live, 'data'), '*', true, join(s.root, 'elsewhere')));
    const [r] = await new RestoreExecutor({ stateDir: s.stateDir }).restore(s.restoreSet(), s.source);
    assert.equal(r!.placement, 'new-target', r!.error?.message);
    assert.equal(read(join(s.root, 'elsewhere/sub/b.db')), 'bravo');
  });

  test('a directed target writes byte ranges into the destination file', async () => {
    const s = scenario({ files: { 'data/big.db': '0123456789abcdefghij' } });
    writeFileSync(join(s.live, 'data/big.db'), 'XXXXXXXXXXXXXXXXXXXX');
    s.select(['data']);
    const c = s.bcd.getComponent(Guid.parse(WRITER_ID), undefined, '', 'data');
    c.setRestoreTarget(RestoreTarget.DIRECTED);
    // Bytes 2..5 of the backup go to offset 10, and 0x10..0x12 to offset 0.
    c.addDirectedTarget(join(s.live, 'data'), 'big.db', '2:4,0x10:3', join(s.live, 'data'), 'big.db', '10:4,0:3');
    const [r] = await new RestoreExecutor({ stateDir: s.stateDir }).restore(s.restoreSet(), s.source);
    assert.equal(r!.error, undefined, r!.error?.message);
    assert.equal(read(join(s.live, 'data/big.db')), 'ghiXXXXXXX2345XXXXXX');
  });

  test('ranges can come from a binary ranges file', async () => {
    const s = scenario({ files: { 'data/big.db': 'abcdefgh' } });
    writeFileSync(join(s.live, 'data/big.db'), '........');
    const rangesFile = join(s.root, 'ranges.bin');
    writeFileSync(rangesFile, encodeRangesFile([{ offset: 4n, length: 4n }]));
    s.select(['data']);
    const c = s.bcd.getComponent(Guid.parse(WRITER_ID), undefined, '', 'data');
    c.setRestoreTarget(RestoreTarget.DIRECTED);
    c.addDirectedTarget(join(s.live, 'data'), 'big.db', `File=${rangesFile}`, join(s.live, 'data'), 'big.db', '0:4');
    const [r] = await new RestoreExecutor({ stateDir: s.stateDir }).restore(s.restoreSet(), s.source);
    assert.equal(r!.error, undefined, r!.error?.message);
    assert.equal(read(join(s.live, 'data/big.db')), 'efgh....');
  });

  describe('no data lost', () => {
    test('a failure half-way puts every file of the component back as it was', async () => {
      const s = scenario();
      s.write('data/a.db', 'CHANGED-A');
      s.write('data/sub/c.log', 'CHANGED-C');
      s.select(['data']);
      let n = 0;
      const failing = { contentPath: (e: Parameters<typeof s.source.contentPath>[0]) => (++n === 3 ? join(s.root, 'missing') : s.source.contentPath(e)) };
      const [r] = await new RestoreExecutor({ stateDir: s.stateDir }).restore(s.restoreSet(), failing);
      assert.equal(r!.status, FileRestoreStatus.NONE);
      assert.ok(r!.error);
      assert.equal(read(join(s.live, 'data/a.db')), 'CHANGED-A');
      assert.equal(read(join(s.live, 'data/sub/c.log')), 'CHANGED-C');
      assertNoLeftovers(s);
    });

    test('staged on a pool of workers: the same restore, and a failure half-way puts everything back', async () => {
      const pool = new CopyPool(2);
      try {
        const s = scenario();
        const mtime = statSync(join(s.live, 'data/a.db')).mtimeMs;
        s.write('data/a.db', 'CHANGED-A');
        chmodSync(join(s.live, 'data/a.db'), 0o600);
        rmSync(join(s.live, 'data/sub'), { recursive: true });
        s.select(['data']);
        const [ok] = await new RestoreExecutor({ stateDir: s.stateDir, pool }).restore(s.restoreSet(), s.source);
        assert.equal(ok!.error, undefined, ok!.error?.message);
        assert.equal(read(join(s.live, 'data/a.db')), 'alpha');
        assert.equal(read(join(s.live, 'data/sub/b.db')), 'bravo', 'a missing directory comes back whole');
        assert.equal(statSync(join(s.live, 'data/a.db')).mode & 0o777, 0o644);
        assert.equal(Math.round(statSync(join(s.live, 'data/a.db')).mtimeMs), Math.round(mtime));
        assertNoLeftovers(s);

        s.write('data/a.db', 'CHANGED-A');
        rmSync(join(s.live, 'data/sub'), { recursive: true });
        let n = 0;
        const failing = { contentPath: (e: Parameters<typeof s.source.contentPath>[0]) => (++n === 3 ? join(s.root, 'missing') : s.source.contentPath(e)) };
        const [r] = await new RestoreExecutor({ stateDir: s.stateDir, pool }).restore(s.restoreSet(), failing);
        assert.equal(r!.status, FileRestoreStatus.NONE);
        assert.match(r!.error!.message, /ENOENT/);
        assert.equal(read(join(s.live, 'data/a.db')), 'CHANGED-A');
        assert.ok(!existsSync(join(s.live, 'data/sub')), 'the new directory was never put in place');
        assertNoLeftovers(s);
      } finally {
        await pool.close();
      }
    });

    test('a new directory caught mid-swap is removed whole by recovery; one still staged is removed', () => {
      const s = scenario();
      const placed = join(s.live, 'data/new');
      const staged = join(s.live, 'data/.shadowcopy-restore-y-t1');
      // Renamed into place before the kill, and another still under its staged name.
      mkdirSync(join(placed, 'deep'), { recursive: true });
      writeFileSync(join(placed, 'deep/f.db'), 'NEW');
      mkdirSync(staged);
      writeFileSync(join(staged, 'g.db'), 'NEW');
      mkdirSync(join(s.stateDir, 'restore-journal'), { recursive: true });
      const trees = [
        { destination: placed, staged: join(s.live, 'data/.shadowcopy-restore-y-t0') },
        { destination: join(s.live, 'data/other'), staged },
      ];
      writeFileSync(join(s.stateDir, 'restore-journal', 'y.json'), JSON.stringify({ component: 'data', state: 'swapping', entries: [], trees, createdDirs: [] }));
      assert.deepEqual(recoverRestores(s.stateDir), { rolledBack: ['data'], completed: [] });
      assert.ok(!existsSync(placed));
      assert.ok(!existsSync(join(s.live, 'data/other')));
      assert.equal(read(join(s.live, 'data/a.db')), 'alpha', 'what was there stays');
      assertNoLeftovers(s);
    });

    test('a swap interrupted by a crash is rolled back by recovery', () => {
      const s = scenario();
      const dest = join(s.live, 'data/a.db');
      const kept = join(s.live, 'data/.shadowcopy-old-x-0');
      const staged = join(s.live, 'data/.shadowcopy-restore-x-1');
      const createdDest = join(s.live, 'data/new.db');
      // The state a kill leaves between two renames: a.db moved aside and replaced; new.db created.
      writeFileSync(kept, 'OLD-A');
      writeFileSync(dest, 'NEW-A');
      writeFileSync(createdDest, 'NEW');
      mkdirSync(join(s.stateDir, 'restore-journal'), { recursive: true });
      writeFileSync(join(s.stateDir, 'restore-journal', 'x.json'), JSON.stringify({ component: 'data', state: 'swapping', entries: [{ destination: dest, staged: join(s.live, 'data/.shadowcopy-restore-x-0'), kept }, { destination: createdDest, staged }], createdDirs: [] }));
      assert.deepEqual(recoverRestores(s.stateDir), { rolledBack: ['data'], completed: [] });
      assert.equal(read(dest), 'OLD-A');
      assert.ok(!existsSync(createdDest));
      assertNoLeftovers(s);
    });
  });

  describe('untrusted documents', () => {
    test('a stored path climbing out of its file set is refused', async () => {
      const s = scenario();
      s.select(['data']);
      const set = s.restoreSet();
      const plan = set.plans[0]!;
      const f = plan.files[0]!;
      const evil = { ...plan, files: [{ ...f, entry: { ...f.entry, relativePath: '../../escape' }, destination: join(s.root, 'escape') }] };
      const r = await new RestoreExecutor({ stateDir: s.stateDir }).restoreComponent(evil, s.source);
      assert.equal(r.error?.code, 'E_ACCESSDENIED');
      assert.ok(!existsSync(join(s.root, 'escape')));
    });

    test('a symlink on the way to a destination is not followed', async () => {
      const s = scenario();
      const outside = join(s.root, 'outside');
      mkdirSync(outside);
      rmSync(join(s.live, 'data/sub'), { recursive: true });
      symlinkSync(outside, join(s.live, 'data/sub'));
      s.select(['data']);
      const [r] = await new RestoreExecutor({ stateDir: s.stateDir }).restore(s.restoreSet(), s.source);
      assert.equal(r!.error?.code, 'E_ACCESSDENIED');
      assert.match(r!.error!.message, /symlink/);
      assert.deepEqual(readdirSync(outside), []);
    });

    test('destinations outside the allowed roots are refused', async () => {
      const s = scenario();
      s.select(['data']);
      const [r] = await new RestoreExecutor({ stateDir: s.stateDir, allowedRoots: [join(s.root, 'only-here')] }).restore(s.restoreSet(), s.source);
      assert.equal(r!.error?.code, 'E_ACCESSDENIED');
      assert.match(r!.error!.message, /outside the allowed roots/);
    });
  });

  test('dry run says what would go where and writes nothing', async () => {
    const s = scenario();
    s.write('data/a.db', 'CHANGED');
    s.select(['data']);
    const [r] = await new RestoreExecutor({ stateDir: s.stateDir, dryRun: true }).restore(s.restoreSet(), s.source);
    assert.ok(r!.writes.some((w) => w.destination === join(s.live, 'data/a.db')));
    assert.equal(read(join(s.live, 'data/a.db')), 'CHANGED');
  });

  test('a writer with no restore method gets nothing restored, with a reason', async () => {
    const s = scenario();
    s.select(['data']);
    const set = s.restoreSet();
    const plan = { ...set.plans[0]!, copyMode: 'custom' as const };
    const r = await new RestoreExecutor({ stateDir: s.stateDir }).restoreComponent(plan, s.source);
    assert.equal(r.status, FileRestoreStatus.NONE);
    assert.match(r.skippedReason!, /VSS_RME_CUSTOM/);
  });
});
