// Restores with writer participation, end to end in-process: runBackup makes real backups of a
// tmpfs volume through a coordinator with test writers; runRestore puts the files back with
// SessionRestoreParticipation (a restore session of the requester SDK), so writers hear
// PreRestore and PostRestore, redirect files, and read what was restored.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SessionRestoreParticipation } from '../../src/backup/restore-participation.js';
import { runBackup } from '../../src/backup/run-backup.js';
import { runRestore, type RestoreOptions } from '../../src/backup/run-restore.js';
import type { ServiceManager } from '../../src/backup/service-manager.js';
import { makeTmpfs, tmpfsUnavailable, type TmpfsVolume } from '../../src/testing/tmpfs.js';
import type { TestWriter, TestWriterConfig } from '../../src/testing/test-writer.js';
import { BackupSchema, BackupType, FileRestoreStatus, VssError, WriterState } from '../../src/vss/index.js';
import { rejectsVss } from '../support/assert.js';
import { events, fixture, IDS, type Fixture } from '../coordinator/helpers.js';

const skip = tmpfsUnavailable();

describe('runRestore with writer participation', { skip }, () => {
  let vol: TmpfsVolume;
  let n = 0;
  before(() => {
    vol = makeTmpfs(128);
  });
  after(() => {
    vol?.cleanup();
  });

  /** One test's world: its own coordinator, an application directory with db/ and conf/, a writer. */
  async function world(extra: Partial<TestWriterConfig> | ((app: string, dir: string) => Partial<TestWriterConfig>) = {}): Promise<{ f: Fixture; w: TestWriter; app: string; dir: string; close: () => Promise<void> }> {
    const dir = join(vol.mountPoint, `t${++n}`);
    const app = join(dir, 'app');
    mkdirSync(join(app, 'db', 'logs'), { recursive: true });
    mkdirSync(join(app, 'conf'), { recursive: true });
    writeFileSync(join(app, 'db', 'main.db'), 'main v1');
    writeFileSync(join(app, 'db', 'logs', 'l1.log'), 'log v1');
    writeFileSync(join(app, 'conf', 'app.conf'), 'conf v1');
    const writer = typeof extra === 'function' ? extra(app, dir) : extra;
    const f = await fixture();
    const w = await f.writer({
      writerId: IDS.a,
      name: 'App',
      restoreMethod: { method: 'RESTORE_IF_CAN_BE_REPLACED', writerRestore: 'always', rebootRequired: false },
      backupSchema: BackupSchema.WRITER_SUPPORTS_NEW_TARGET,
      components: [
        { name: 'db', files: [{ path: join(app, 'db'), filespec: '*.db', recursive: false }] },
        { logicalPath: 'db', name: 'logs', selectable: false, selectableForRestore: true, files: [{ path: join(app, 'db', 'logs'), filespec: '*', recursive: true }] },
        { name: 'conf', files: [{ path: join(app, 'conf'), filespec: '*', recursive: false }] },
      ],
      alternateLocationMappings: [
        { path: join(app, 'db'), filespec: '*.db', recursive: false, destination: join(dir, 'alt', 'db') },
        { path: join(app, 'db', 'logs'), filespec: '*', recursive: true, destination: join(dir, 'alt', 'logs') },
        { path: join(app, 'conf'), filespec: '*', recursive: false, destination: join(dir, 'alt', 'conf') },
      ],
      ...writer,
    } as never);
    return { f, w, app, dir, close: () => f.close() };
  }

  async function backup(f: Fixture, to: string, extra: { backupType?: BackupType; previous?: string } = {}): Promise<void> {
    const r = await f.requester();
    try {
      const report = await runBackup(r, { to, components: [{ writer: 'App' }], ...extra });
      assert.ok(report.components.every((c) => c.succeeded), JSON.stringify(report.components));
    } finally {
      await r.release();
    }
  }

  function restore(f: Fixture, from: string, dir: string, extra: Partial<RestoreOptions> = {}): ReturnType<typeof runRestore> {
    return runRestore({ from, stateDir: join(dir, 'state'), files: false, participation: new SessionRestoreParticipation({ open: () => f.requester() }), ...extra });
  }

  const read = (p: string): string => readFileSync(p, 'utf8');

  /** Changes the live files after the backup. */
  function touch(app: string): void {
    writeFileSync(join(app, 'db', 'main.db'), 'main v2');
    writeFileSync(join(app, 'db', 'logs', 'l1.log'), 'log v2');
    writeFileSync(join(app, 'conf', 'app.conf'), 'conf v2');
  }

  test('RESTORE_IF_CAN_REPLACE in place: PreRestore then PostRestore for the writer with something selected only', async () => {
    const t = await world();
    try {
      const other = await t.f.writer({ writerId: IDS.b, name: 'Other', restoreMethod: { method: 'RESTORE_IF_CAN_BE_REPLACED', writerRestore: 'always', rebootRequired: false }, components: [{ name: 'x', files: [{ path: join(t.dir, 'other'), filespec: '*', recursive: false }] }] } as never);
      await backup(t.f, join(t.dir, 'b'));
      touch(t.app);
      t.w.lines.length = 0;
      other.lines.length = 0;
      const report = await restore(t.f, join(t.dir, 'b'), t.dir);
      assert.deepEqual(report.steps[0]!.results.map((r) => [r.plan.definingComponent.fullPath, r.status, r.placement]), [
        ['db', FileRestoreStatus.ALL, 'original'],
        ['conf', FileRestoreStatus.ALL, 'original'],
      ]);
      assert.deepEqual(report.steps[0]!.writerFailures, []);
      assert.equal(read(join(t.app, 'db', 'main.db')), 'main v1');
      assert.equal(read(join(t.app, 'db', 'logs', 'l1.log')), 'log v1');
      assert.equal(read(join(t.app, 'conf', 'app.conf')), 'conf v1');
      assert.deepEqual(events(t.w), ['Identify', 'PreRestore', 'PostRestore']);
      assert.deepEqual(events(other), ['Identify'], 'nothing of it selected: no restore event');
      const post = t.w.lines[2]!.restore!;
      assert.deepEqual(post.map((v) => [v.component, v.selected, v.fileRestoreStatus, v.additionalRestores]), [
        ['db', true, 'VSS_RS_ALL', false],
        ['conf', true, 'VSS_RS_ALL', false],
      ]);
    } finally {
      await t.close();
    }
  });

  test('RESTORE_IF_NOT_THERE: files present go to the alternate location mapping (the writer reads it in PostRestore); absent ones in place', async () => {
    const t = await world({ restoreMethod: { method: 'RESTORE_IF_NONE_THERE', writerRestore: 'always', rebootRequired: false } } as never);
    try {
      await backup(t.f, join(t.dir, 'b'));
      touch(t.app);
      rmSync(join(t.app, 'conf', 'app.conf'));
      t.w.lines.length = 0;
      const report = await restore(t.f, join(t.dir, 'b'), t.dir);
      assert.deepEqual(report.steps[0]!.results.map((r) => [r.plan.definingComponent.fullPath, r.status, r.placement]), [
        ['db', FileRestoreStatus.ALL, 'alternate-mapping'],
        ['conf', FileRestoreStatus.ALL, 'original'],
      ]);
      assert.equal(read(join(t.app, 'db', 'main.db')), 'main v2', 'what is there is left alone');
      assert.equal(read(join(t.dir, 'alt', 'db', 'main.db')), 'main v1');
      assert.equal(read(join(t.dir, 'alt', 'logs', 'l1.log')), 'log v1', 'the implicit member goes with its set');
      assert.equal(read(join(t.app, 'conf', 'app.conf')), 'conf v1');
      const db = t.w.lines.find((l) => l.event === 'PostRestore')!.restore!.find((v) => v.component === 'db')!;
      assert.deepEqual(db.mappings, [
        { path: join(t.app, 'db'), filespec: '*.db', recursive: false, destination: join(t.dir, 'alt', 'db') },
        { path: join(t.app, 'db', 'logs'), filespec: '*', recursive: true, destination: join(t.dir, 'alt', 'logs') },
      ]);
    } finally {
      await t.close();
    }
  });

  test('RESTORE_TO_ALTERNATE_LOCATION, and a writer that sets VSS_RT_ORIGINAL_LOCATION in PreRestore for one component', async () => {
    const t = await world({
      restoreMethod: { method: 'RESTORE_TO_ALTERNATE_LOCATION', writerRestore: 'always', rebootRequired: false },
      restore: { preRestore: [{ component: 'conf', target: 'ORIGINAL_LOCATION' }], postRestore: [] },
    } as never);
    try {
      await backup(t.f, join(t.dir, 'b'));
      touch(t.app);
      const report = await restore(t.f, join(t.dir, 'b'), t.dir);
      assert.deepEqual(report.steps[0]!.results.map((r) => [r.plan.definingComponent.fullPath, r.placement]), [
        ['db', 'alternate-mapping'],
        ['conf', 'original'],
      ]);
      assert.equal(read(join(t.dir, 'alt', 'db', 'main.db')), 'main v1');
      assert.equal(read(join(t.app, 'db', 'main.db')), 'main v2');
      assert.equal(read(join(t.app, 'conf', 'app.conf')), 'conf v1');
      // The mappings the requester used are recorded for the writer (AddAlternativeLocationMapping).
      assert.deepEqual(report.steps[0]!.results.map((r) => r.mappingsUsed.map((m) => m.destination)), [[join(t.dir, 'alt', 'db'), join(t.dir, 'alt', 'logs')], []]);
    } finally {
      await t.close();
    }
  });

  test('the writer redirects a component to its alternate location (VSS_RT_ALTERNATE) and records restore metadata', async () => {
    const t = await world({ restore: { preRestore: [{ component: 'db', target: 'ALTERNATE', restoreMetadata: 'redirected' }], postRestore: [] } } as never);
    try {
      await backup(t.f, join(t.dir, 'b'));
      touch(t.app);
      t.w.lines.length = 0;
      const report = await restore(t.f, join(t.dir, 'b'), t.dir);
      const db = report.steps[0]!.results[0]!;
      assert.equal(db.placement, 'alternate-mapping');
      assert.equal(db.plan.restoreTarget, 2 /* VSS_RT_ALTERNATE */);
      assert.equal(read(join(t.dir, 'alt', 'db', 'main.db')), 'main v1');
      assert.equal(read(join(t.app, 'db', 'main.db')), 'main v2');
      const post = t.w.lines.find((l) => l.event === 'PostRestore')!.restore!.find((v) => v.component === 'db')!;
      assert.equal(post.restoreMetadata, 'redirected', 'what the writer set in PreRestore is in the document at PostRestore');
      assert.equal(post.restoreTarget, 'VSS_RT_ALTERNATE');
    } finally {
      await t.close();
    }
  });

  test('a directed target with byte ranges', async () => {
    // In PreRestore the writer directs "main" (bytes 0..3 of the backed-up file) onto bytes 5..8 of the live file.
    const t = await world((app) => ({
      restore: {
        preRestore: [{ component: 'db', target: 'DIRECTED', directedTargets: [{ sourcePath: join(app, 'db'), sourceFilename: 'main.db', sourceRanges: '0:4', destinationPath: join(app, 'db'), destinationFilename: 'main.db', destinationRanges: '5:4' }] }],
        postRestore: [],
      },
    }) as never);
    try {
      await backup(t.f, join(t.dir, 'b'));
      writeFileSync(join(t.app, 'db', 'main.db'), 'MAIN V2 AND MORE');
      t.w.lines.length = 0;
      const report = await restore(t.f, join(t.dir, 'b'), t.dir, { components: [{ writer: 'App', path: 'db' }] });
      const db = report.steps[0]!.results[0]!;
      assert.equal(db.status, FileRestoreStatus.ALL, db.error?.message);
      assert.equal(db.placement, 'directed');
      assert.equal(read(join(t.app, 'db', 'main.db')), 'MAIN mainND MORE');
      assert.deepEqual(events(t.w), ['Identify', 'PreRestore', 'PostRestore']);
    } finally {
      await t.close();
    }
  });

  test('a restore subcomponent, restore options and a new target reach the writer; only the subcomponent\'s files go back', async () => {
    const t = await world();
    try {
      await backup(t.f, join(t.dir, 'b'));
      touch(t.app);
      t.w.lines.length = 0;
      const report = await restore(t.f, join(t.dir, 'b'), t.dir, {
        components: [{ writer: 'App', path: 'db' }],
        onSelect: (bcd) => {
          const db = bcd.writers[0]!.findComponent('', 'db')!;
          db.addRestoreSubcomponent('db', 'logs');
          db.setRestoreOptions('"logs":"Roll Forward"="None","Verify"="yes"');
          db.addNewTarget(join(t.app, 'db', 'logs'), '*', true, join(t.dir, 'new-logs'));
        },
      });
      const db = report.steps[0]!.results[0]!;
      assert.equal(db.status, FileRestoreStatus.ALL, db.error?.message);
      assert.equal(db.placement, 'new-target');
      assert.equal(read(join(t.dir, 'new-logs', 'l1.log')), 'log v1');
      assert.equal(read(join(t.app, 'db', 'logs', 'l1.log')), 'log v2', 'restored to the new target, not in place');
      assert.equal(read(join(t.app, 'db', 'main.db')), 'main v2', 'not part of the subcomponent: not restored');
      const pre = t.w.lines.find((l) => l.event === 'PreRestore')!.restore!.find((v) => v.component === 'db')!;
      assert.deepEqual([pre.subcomponents, pre.options], [['db\\logs'], '"logs":"Roll Forward"="None","Verify"="yes"']);
      const post = t.w.lines.find((l) => l.event === 'PostRestore')!.restore!.find((v) => v.component === 'db')!;
      assert.deepEqual(post.newTargets, [{ path: join(t.app, 'db', 'logs'), filespec: '*', recursive: true, alternatePath: join(t.dir, 'new-logs') }]);
    } finally {
      await t.close();
    }
  });

  test('a restore under another root goes through new targets, which the writer hears of; the live files stay as they are', async () => {
    const t = await world();
    try {
      await backup(t.f, join(t.dir, 'b'));
      touch(t.app);
      t.w.lines.length = 0;
      const root = join(t.dir, 'private');
      mkdirSync(root);
      const report = await restore(t.f, join(t.dir, 'b'), t.dir, { to: root });
      assert.deepEqual(report.steps[0]!.results.map((r) => [r.plan.definingComponent.fullPath, r.status, r.placement]), [
        ['db', FileRestoreStatus.ALL, 'new-target'],
        ['conf', FileRestoreStatus.ALL, 'new-target'],
      ]);
      assert.equal(read(join(root, t.app, 'db', 'main.db')), 'main v1');
      assert.equal(read(join(root, t.app, 'db', 'logs', 'l1.log')), 'log v1', 'the implicit member\'s set has its own new target');
      assert.equal(read(join(root, t.app, 'conf', 'app.conf')), 'conf v1');
      assert.equal(read(join(t.app, 'db', 'main.db')), 'main v2');
      const pre = t.w.lines.find((l) => l.event === 'PreRestore')!.restore!.find((v) => v.component === 'db')!;
      assert.deepEqual(pre.newTargets, [
        { path: join(t.app, 'db'), filespec: '*.db', recursive: false, alternatePath: join(root, t.app, 'db') },
        { path: join(t.app, 'db', 'logs'), filespec: '*', recursive: true, alternatePath: join(root, t.app, 'db', 'logs') },
      ]);
    } finally {
      await t.close();
    }
  });

  test('bad restore-time choices are refused by the coordinator before anything is touched', async () => {
    const t = await world();
    try {
      await backup(t.f, join(t.dir, 'b'));
      touch(t.app);
      await rejectsVss(
        () => restore(t.f, join(t.dir, 'b'), t.dir, { components: [{ writer: 'App', path: 'db' }], onSelect: (bcd) => bcd.writers[0]!.findComponent('', 'db')!.setRestoreOptions('Verify=yes') }),
        'E_INVALIDARG',
        /quoted/,
      );
      await rejectsVss(() => restore(t.f, join(t.dir, 'b'), t.dir, { components: [{ writer: 'App', path: 'nosuch' }] }), 'VSS_E_OBJECT_NOT_FOUND', /none of the named components/);
      assert.equal(read(join(t.app, 'db', 'main.db')), 'main v2');
    } finally {
      await t.close();
    }
  });

  test('a full and an incremental backup: the writer sees additional restores true, then false', async () => {
    const t = await world();
    try {
      await backup(t.f, join(t.dir, 'full'));
      writeFileSync(join(t.app, 'db', 'main.db'), 'main v2');
      utimesSync(join(t.app, 'db', 'main.db'), new Date(), new Date(Date.now() + 5000));
      await backup(t.f, join(t.dir, 'incr'), { backupType: BackupType.INCREMENTAL, previous: join(t.dir, 'full') });
      writeFileSync(join(t.app, 'db', 'main.db'), 'main v3');
      t.w.lines.length = 0;
      const report = await restore(t.f, join(t.dir, 'incr'), t.dir, { components: [{ writer: 'App', path: 'db' }] });
      assert.deepEqual(report.steps.map((s) => s.backupType), ['full', 'incremental']);
      assert.equal(read(join(t.app, 'db', 'main.db')), 'main v2');
      assert.deepEqual(events(t.w), ['Identify', 'PreRestore', 'PostRestore', 'Identify', 'PreRestore', 'PostRestore']);
      const seen = t.w.lines.filter((l) => l.event !== 'Identify').map((l) => [l.event, l.restore!.find((v) => v.component === 'db')!.additionalRestores]);
      assert.deepEqual(seen, [
        ['PreRestore', true],
        ['PostRestore', true],
        ['PreRestore', false],
        ['PostRestore', false],
      ]);
    } finally {
      await t.close();
    }
  });

  test('STOP_RESTORE_START and RESTORE_STOP_START: the service stops and starts where spec §14.1 says', async () => {
    for (const [method, expected] of [
      ['STOP_RESTART_SERVICE', ['PreRestore', 'stop', 'start', 'PostRestore']],
      ['RESTORE_STOP_START', ['PreRestore', 'PostRestore', 'stop', 'start']],
    ] as const) {
      const t = await world({ restoreMethod: { method, service: 'app.service', writerRestore: 'always', rebootRequired: false } } as never);
      try {
        await backup(t.f, join(t.dir, 'b'));
        touch(t.app);
        t.w.lines.length = 0;
        const order: string[] = [];
        const services: ServiceManager = {
          stop: (s) => (assert.equal(s, 'app.service'), order.push(...t.w.lines.splice(0).filter((l) => l.event !== 'Identify').map((l) => l.event), 'stop'), Promise.resolve()),
          start: () => (order.push(...t.w.lines.splice(0).filter((l) => l.event !== 'Identify').map((l) => l.event), 'start'), Promise.resolve()),
        };
        await restore(t.f, join(t.dir, 'b'), t.dir, { serviceManager: services, components: [{ writer: 'App', path: 'db' }] });
        order.push(...t.w.lines.filter((l) => l.event !== 'Identify').map((l) => l.event));
        assert.deepEqual(order, expected, method);
        assert.equal(read(join(t.app, 'db', 'main.db')), 'main v1');
      } finally {
        await t.close();
      }
    }
  });

  test('REPLACE_AT_REBOOT stages the files; CUSTOM leaves them to the writer; both writers still take part', async () => {
    for (const [method, placement] of [
      ['REPLACE_AT_REBOOT', 'staged-for-reboot'],
      ['CUSTOM', 'skipped'],
    ] as const) {
      const t = await world({ restoreMethod: { method, writerRestore: 'always', rebootRequired: method === 'REPLACE_AT_REBOOT' } } as never);
      try {
        await backup(t.f, join(t.dir, 'b'));
        touch(t.app);
        t.w.lines.length = 0;
        const report = await restore(t.f, join(t.dir, 'b'), t.dir, { components: [{ writer: 'App', path: 'db' }] });
        assert.equal(report.steps[0]!.results[0]!.placement, placement, method);
        assert.equal(read(join(t.app, 'db', 'main.db')), 'main v2', `${method}: nothing replaced now`);
        assert.deepEqual(events(t.w), ['Identify', 'PreRestore', 'PostRestore']);
      } finally {
        await t.close();
      }
    }
  });

  test('a writer that vetoes PreRestore: its components stay as they were, the error and its status say why', async () => {
    const t = await world({ faults: [{ event: 'PreRestore', action: 'veto', error: 'VSS_E_WRITERERROR_RETRYABLE', message: 'the database is open' }] } as never);
    try {
      await backup(t.f, join(t.dir, 'b'));
      touch(t.app);
      t.w.lines.length = 0;
      const report = await restore(t.f, join(t.dir, 'b'), t.dir);
      for (const r of report.steps[0]!.results) {
        assert.equal(r.status, FileRestoreStatus.NONE);
        assert.ok(VssError.is(r.error, 'VSS_E_WRITERERROR_RETRYABLE'), r.error?.message);
        assert.match(r.error!.message, /writer "App" failed PreRestore \(the database is open\)/);
      }
      assert.deepEqual(report.steps[0]!.writerFailures!.map((w) => [w.event, w.state]), [['PreRestore', WriterState.FAILED_AT_PRE_RESTORE]]);
      assert.equal(read(join(t.app, 'db', 'main.db')), 'main v2');
      assert.equal(read(join(t.app, 'conf', 'app.conf')), 'conf v2');
      assert.deepEqual(events(t.w), ['Identify', 'PreRestore:veto']);
    } finally {
      await t.close();
    }
  });

  test('a file that cannot be replaced: that component fails whole, the IF_REPLACE_FAILS writer hears PostRestore with status NONE', async () => {
    const t = await world({ restoreMethod: { method: 'RESTORE_IF_CAN_BE_REPLACED', writerRestore: 'ifReplaceFails', rebootRequired: false }, alternateLocationMappings: [] } as never);
    try {
      await backup(t.f, join(t.dir, 'b'));
      touch(t.app);
      // A directory where the backed-up file was: it cannot be replaced by a file.
      rmSync(join(t.app, 'conf', 'app.conf'));
      mkdirSync(join(t.app, 'conf', 'app.conf'));
      t.w.lines.length = 0;
      const report = await restore(t.f, join(t.dir, 'b'), t.dir);
      const [db, conf] = report.steps[0]!.results;
      assert.equal(db!.status, FileRestoreStatus.ALL);
      assert.equal(conf!.status, FileRestoreStatus.NONE);
      assert.ok(VssError.is(conf!.error, 'E_ACCESSDENIED'), conf!.error?.message);
      assert.equal(read(join(t.app, 'db', 'main.db')), 'main v1');
      assert.ok(statSync(join(t.app, 'conf', 'app.conf')).isDirectory(), 'left as it was');
      assert.deepEqual(events(t.w), ['Identify', 'PreRestore', 'PostRestore']);
      const post = t.w.lines[2]!.restore!;
      assert.deepEqual(post.map((v) => [v.component, v.fileRestoreStatus]), [
        ['db', 'VSS_RS_ALL'],
        ['conf', 'VSS_RS_NONE'],
      ]);
    } finally {
      await t.close();
    }
  });

  test('a writer stopped between PreRestore and PostRestore (STOP_RESTORE_START of its own service): files restored, PostRestore reported lost', async () => {
    const t = await world({ restoreMethod: { method: 'STOP_RESTART_SERVICE', service: 'app.service', writerRestore: 'always', rebootRequired: false } } as never);
    try {
      await backup(t.f, join(t.dir, 'b'));
      touch(t.app);
      t.w.lines.length = 0;
      let restarted: TestWriter | undefined;
      // The writer lives in the service: stopping the service ends its connection, starting it subscribes a new instance.
      const services: ServiceManager = {
        stop: () => t.w.unsubscribe(),
        start: async () => {
          restarted = await t.f.writer({ ...t.w.config } as never);
        },
      };
      const report = await restore(t.f, join(t.dir, 'b'), t.dir, { serviceManager: services, components: [{ writer: 'App', path: 'db' }] });
      assert.equal(report.steps[0]!.results[0]!.status, FileRestoreStatus.ALL);
      assert.equal(read(join(t.app, 'db', 'main.db')), 'main v1');
      const lost = report.steps[0]!.writerFailures!;
      assert.equal(lost.length, 1);
      assert.equal(lost[0]!.event, 'PostRestore');
      assert.equal(lost[0]!.state, WriterState.FAILED_AT_POST_RESTORE);
      assert.ok(VssError.is(lost[0]!.error, 'VSS_E_WRITER_NOT_RESPONDING'), lost[0]!.error.message);
      assert.deepEqual(events(t.w), ['Identify', 'PreRestore'], 'the stopped instance missed PostRestore');
      assert.deepEqual(events(restarted!), [], 'the new instance was not part of this restore');
    } finally {
      await t.close();
    }
  });

  test('a stored writer document that does not match the BCD is refused before anything is touched', async () => {
    const t = await world();
    try {
      await backup(t.f, join(t.dir, 'b'));
      touch(t.app);
      const wmd = join(t.dir, 'b', 'writers', `${IDS.a}.xml`);
      writeFileSync(wmd, read(wmd).replace(/componentName="conf"/g, 'componentName="settings"'));
      await rejectsVss(() => restore(t.f, join(t.dir, 'b'), t.dir), 'VSS_E_OBJECT_NOT_FOUND', /"conf".*not from the same backup/);
      assert.equal(read(join(t.app, 'db', 'main.db')), 'main v2');
      assert.equal(read(join(t.app, 'conf', 'app.conf')), 'conf v2');
    } finally {
      await t.close();
    }
  });
});
