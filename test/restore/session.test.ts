// The restore session in-process (spec §5): a requester restores from stored documents while
// test writers take part over the same JSON-RPC protocol as the daemon's sockets. No files
// are put back here (that is test/restore/run-restore.test.ts); this is the protocol.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { BackupComponents } from '../../src/requester/index.js';
import type { TestWriterConfig } from '../../src/testing/test-writer.js';
import { BackupSchema, BackupType, ComponentType, FileRestoreStatus, RestoreTarget, RollForwardType, VssError, WriterState, writeWriterMetadata } from '../../src/vss/index.js';
import { rejectsVss } from '../support/assert.js';
import { events, fixture, IDS, until, type Fixture } from '../coordinator/helpers.js';

const FG = ComponentType.FILEGROUP;

/** A writer with a component tree: db (with a selectable-for-restore child "db\\logs") and conf. */
function appWriter(writerRestore: string, extra: Partial<TestWriterConfig> = {}): Partial<TestWriterConfig> & { writerId: string; name: string } {
  return {
    writerId: IDS.a,
    name: 'App Writer',
    restoreMethod: { method: 'RESTORE_IF_CAN_BE_REPLACED', writerRestore, rebootRequired: false },
    backupSchema: BackupSchema.WRITER_SUPPORTS_NEW_TARGET | BackupSchema.ROLLFORWARD_RESTORE,
    components: [
      { logicalPath: '', name: 'db', files: [{ path: '/srv/app/db', filespec: '*.db', recursive: false }] },
      { logicalPath: 'db', name: 'logs', selectable: false, selectableForRestore: true, files: [{ path: '/srv/app/logs', filespec: '*', recursive: true }] },
      { logicalPath: '', name: 'conf', files: [{ path: '/srv/app/conf', filespec: '*', recursive: false }] },
    ],
    alternateLocationMappings: [{ path: '/srv/app/conf', filespec: '*', recursive: false, destination: '/srv/app/conf.restored' }],
    ...extra,
  } as never;
}

/** A stored backup of `components` (genuine BCD from a backup session, WMDs as gathered). */
async function storedBackup(f: Fixture, components: { writerId: string; name: string }[]): Promise<{ bcdXml: string; wmds: string[] }> {
  const r = await f.requester();
  await r.initializeForBackup();
  await r.setBackupState(true, false, BackupType.FULL);
  await r.gatherWriterMetadata();
  const wmds: string[] = [];
  for (let i = 0; i < r.getWriterMetadataCount(); i++) {
    const { instanceId, metadata } = r.getWriterMetadata(i);
    const mine = components.filter((c) => metadata.identity.writerId.equals(c.writerId));
    if (!mine.length) continue;
    wmds.push(writeWriterMetadata(metadata));
    for (const c of mine) await r.addComponent(instanceId, c.writerId, FG, '', c.name);
  }
  const bcdXml = await r.saveAsXml();
  await r.release();
  return { bcdXml, wmds };
}

describe('restore session', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await fixture();
  });
  afterEach(async () => {
    await f.close();
  });

  test('happy path: selections reach the writer in PreRestore, its edits reach the requester, statuses and mappings reach it in PostRestore', async () => {
    const writer = await f.writer(
      appWriter('always', {
        restore: {
          preRestore: [{ component: 'db', target: 'ALTERNATE', restoreMetadata: 'lsn=42', failureMsg: '' }],
          postRestore: [{ component: 'conf', failureMsg: 'conf reloaded with warnings' }],
        },
      } as never),
    );
    const bystander = await f.writer({ writerId: IDS.b, name: 'Bystander', restoreMethod: { method: 'RESTORE_IF_CAN_BE_REPLACED', writerRestore: 'always', rebootRequired: false } } as never);
    const stored = await storedBackup(f, [
      { writerId: IDS.a, name: 'db' },
      { writerId: IDS.a, name: 'conf' },
      { writerId: IDS.b, name: 'data' },
    ]);
    writer.lines.length = 0;
    bystander.lines.length = 0;

    const r = await f.requester();
    await r.initializeForRestore(stored.bcdXml, stored.wmds);
    assert.equal(r.getStoredWriterMetadata().length, 2);
    await r.gatherWriterMetadata();
    await r.setSelectedForRestore(IDS.a, FG, '', 'db', true);
    await r.addRestoreSubcomponent(IDS.a, FG, '', 'db', 'db', 'logs');
    await r.setRestoreOptions(IDS.a, FG, '', 'db', '"logs":"Roll Forward"="All","Mode"="fast"');
    await r.setAdditionalRestores(IDS.a, FG, '', 'db', true);
    await r.setRollForward(IDS.a, FG, '', 'db', RollForwardType.PARTIAL, 'lsn 7');
    await r.addNewTarget(IDS.a, FG, '', 'db', '/srv/app/db', '*.db', false, '/srv/new/db');
    await r.setSelectedForRestore(IDS.a, FG, '', 'conf', true);
    await r.preRestore();

    await r.gatherWriterStatus();
    assert.ok(r.isWriterStatusReliable(), 'status right after preRestore is reliable');
    assert.deepEqual(r.getWriterStatuses().map((s) => [s.writerName, s.state]), [['App Writer', WriterState.STABLE], ['Bystander', WriterState.STABLE]]);

    // GetWriterComponents again: the writer's PreRestore edits.
    assert.equal(await r.getWriterComponentsCount(), 2, 'counts writers, not components');
    const after = await r.getBackupComponentsDocument();
    const db = after.writers.find((w) => w.writerId.equals(IDS.a))!.findComponent('', 'db')!;
    assert.equal(db.getRestoreTarget(), RestoreTarget.ALTERNATE);
    assert.equal(db.getRestoreMetadata(), 'lsn=42');
    assert.deepEqual(db.getRollForward(), { type: RollForwardType.PARTIAL, point: 'lsn 7' });

    await r.setFileRestoreStatus(IDS.a, FG, '', 'db', FileRestoreStatus.ALL);
    await r.setFileRestoreStatus(IDS.a, FG, '', 'conf', FileRestoreStatus.ALL);
    await r.addAlternativeLocationMapping(IDS.a, FG, '', 'conf', '/srv/app/conf', '*', false, '/srv/app/conf.restored');
    await r.postRestore();
    await r.gatherWriterStatus();
    assert.ok(r.isWriterStatusReliable());
    const done = await r.getBackupComponentsDocument();
    assert.equal(done.writers.find((w) => w.writerId.equals(IDS.a))!.findComponent('', 'conf')!.getPostRestoreFailureMsg(), 'conf reloaded with warnings');
    await r.release();

    // Events only for the writer with something selected, in the order of spec §5.
    assert.deepEqual(events(writer), ['Identify', 'PreRestore', 'PostRestore']);
    assert.deepEqual(events(bystander), ['Identify']);
    const pre = writer.lines[1]!.restore!;
    assert.deepEqual(
      pre.map((v) => [v.component, v.selected, v.subcomponents, v.options, v.additionalRestores]),
      [
        ['db', true, ['db\\logs'], '"logs":"Roll Forward"="All","Mode"="fast"', true],
        ['conf', true, [], '', false],
      ],
    );
    assert.deepEqual(pre[0]!.newTargets, [{ path: '/srv/app/db', filespec: '*.db', recursive: false, alternatePath: '/srv/new/db' }]);
    const post = writer.lines[2]!.restore!;
    assert.deepEqual(post.map((v) => [v.component, v.fileRestoreStatus, v.restoreTarget]), [
      ['db', 'VSS_RS_ALL', 'VSS_RT_ALTERNATE'],
      ['conf', 'VSS_RS_ALL', 'VSS_RT_ORIGINAL'],
    ]);
    assert.deepEqual(post[1]!.mappings, [{ path: '/srv/app/conf', filespec: '*', recursive: false, destination: '/srv/app/conf.restored' }]);
  });

  test('sequence violations name the call expected', async () => {
    await f.writer(appWriter('always'));
    const stored = await storedBackup(f, [{ writerId: IDS.a, name: 'db' }]);
    const r = await f.requester();
    await rejectsVss(() => r.setSelectedForRestore(IDS.a, FG, '', 'db', true), 'VSS_E_BAD_STATE', /initializeForRestore first/);
    await r.initializeForRestore(stored.bcdXml, stored.wmds);
    await rejectsVss(() => r.initializeForBackup(), 'VSS_E_BAD_STATE', /after initializeForRestore/);
    await rejectsVss(() => r.startSnapshotSet(), 'VSS_E_BAD_STATE', /not part of a restore/);
    await rejectsVss(() => r.setSelectedForRestore(IDS.a, FG, '', 'db', true), 'VSS_E_BAD_STATE', /call gatherWriterMetadata first/);
    await rejectsVss(() => r.preRestore().wait(), 'VSS_E_BAD_STATE', /call gatherWriterMetadata first/);
    await r.gatherWriterMetadata();
    await rejectsVss(() => r.setAdditionalRestores(IDS.a, FG, '', 'db', true), 'VSS_E_BAD_STATE', /call setSelectedForRestore first/);
    await rejectsVss(() => r.postRestore().wait(), 'VSS_E_BAD_STATE', /call preRestore first/);
    await r.setSelectedForRestore(IDS.a, FG, '', 'db', true);
    await rejectsVss(() => r.setFileRestoreStatus(IDS.a, FG, '', 'db', FileRestoreStatus.ALL), 'VSS_E_BAD_STATE', /call preRestore first/);
    await rejectsVss(() => r.abortBackup(), 'VSS_E_BAD_STATE', /restores cannot be aborted/);
    await r.preRestore();
    await rejectsVss(() => r.setSelectedForRestore(IDS.a, FG, '', 'conf', true), 'VSS_E_BAD_STATE', /before preRestore/);
    await rejectsVss(() => r.preRestore().wait(), 'VSS_E_BAD_STATE', /already called/);
    await r.postRestore();
    await rejectsVss(() => r.setFileRestoreStatus(IDS.a, FG, '', 'db', FileRestoreStatus.ALL), 'VSS_E_BAD_STATE', /before calling postRestore/);
    await rejectsVss(() => r.postRestore().wait(), 'VSS_E_BAD_STATE', /already called/);

    // A restore call in a backup session.
    const b = await f.requester();
    await b.initializeForBackup();
    await rejectsVss(() => b.setSelectedForRestore(IDS.a, FG, '', 'db', true), 'VSS_E_BAD_STATE', /initialized for backup/);
  });

  test('selection rules: not in the document, implicit, not selectable for restore, writer not running, schema gates', async () => {
    await f.writer(appWriter('always'));
    await f.writer({ writerId: IDS.b, name: 'Gone Soon' } as never);
    const stored = await storedBackup(f, [
      { writerId: IDS.a, name: 'db' },
      { writerId: IDS.b, name: 'data' },
    ]);
    const r = await f.requester();
    await r.initializeForRestore(stored.bcdXml, stored.wmds);
    await r.disableWriterClasses([IDS.b]); // as if it were not running
    await r.gatherWriterMetadata();
    await rejectsVss(() => r.setSelectedForRestore(IDS.a, FG, '', 'conf', true), 'VSS_E_OBJECT_NOT_FOUND', /not explicitly backed up/);
    await rejectsVss(() => r.setSelectedForRestore(IDS.a, FG, 'db', 'logs', true), 'VSS_E_OBJECT_NOT_FOUND', /part of "db".*addRestoreSubcomponent/);
    await rejectsVss(() => r.setSelectedForRestore(IDS.b, FG, '', 'data', true), 'VSS_E_OBJECT_NOT_FOUND', /not running now/);
    await r.setSelectedForRestore(IDS.a, FG, '', 'db', true);
    await rejectsVss(() => r.setAuthoritativeRestore(IDS.a, FG, '', 'db', true), 'E_INVALIDARG', /VSS_BS_AUTHORITATIVE_RESTORE/);
    await rejectsVss(() => r.setRestoreName(IDS.a, FG, '', 'db', 'db2'), 'E_INVALIDARG', /VSS_BS_RESTORE_RENAME/);
    await rejectsVss(() => r.addNewTarget(IDS.a, FG, '', 'db', '/srv/app/db', '*', false, '/x'), 'VSS_E_OBJECT_NOT_FOUND', /matches no file set/);
  });

  test('restore options: the quoted syntax and subcomponent scopes are checked, and set once', async () => {
    await f.writer(appWriter('always'));
    const stored = await storedBackup(f, [{ writerId: IDS.a, name: 'db' }]);
    const r = await f.requester();
    await r.initializeForRestore(stored.bcdXml, stored.wmds);
    await r.gatherWriterMetadata();
    await r.setSelectedForRestore(IDS.a, FG, '', 'db', true);
    await rejectsVss(() => r.setRestoreOptions(IDS.a, FG, '', 'db', 'Mode=fast'), 'E_INVALIDARG', /expected a quoted option name.*character 1/);
    await rejectsVss(() => r.setRestoreOptions(IDS.a, FG, '', 'db', '"Mode"="fast" "X"="y"'), 'E_INVALIDARG', /expected a comma/);
    await rejectsVss(() => r.setRestoreOptions(IDS.a, FG, '', 'db', '"Mode"="fast'), 'E_INVALIDARG', /not closed/);
    await rejectsVss(() => r.setRestoreOptions(IDS.a, FG, '', 'db', '"Roll Forward"="Sometimes"'), 'E_INVALIDARG', /"None", "All" or "Partial/);
    await rejectsVss(() => r.setRestoreOptions(IDS.a, FG, '', 'db', '"nosuch":"Mode"="fast"'), 'VSS_E_OBJECT_NOT_FOUND', /scoped to "nosuch"/);
    await r.setRestoreOptions(IDS.a, FG, '', 'db', ' "LOGS" : "Authoritative" = "Item:x" , "Mode"="fast"');
    await rejectsVss(() => r.setRestoreOptions(IDS.a, FG, '', 'db', '"Mode"="slow"'), 'VSS_E_OBJECT_ALREADY_EXISTS', /set them once/);
  });

  test('writerRestore: NEVER gets no events, IF_REPLACE_FAILS gets PostRestore only when an IF_CAN_REPLACE restore failed', async () => {
    const never = await f.writer({ ...appWriter('never'), writerId: IDS.a, name: 'Never' } as never);
    const ifFails = await f.writer({ writerId: IDS.b, name: 'IfFails', restoreMethod: { method: 'RESTORE_IF_CAN_BE_REPLACED', writerRestore: 'ifReplaceFails', rebootRequired: false } } as never);
    const ifFails2 = await f.writer({ writerId: IDS.c, name: 'IfFails2', restoreMethod: { method: 'RESTORE_IF_CAN_BE_REPLACED', writerRestore: 'ifReplaceFails', rebootRequired: false } } as never);
    const stored = await storedBackup(f, [
      { writerId: IDS.a, name: 'db' },
      { writerId: IDS.b, name: 'data' },
      { writerId: IDS.c, name: 'data' },
    ]);
    for (const w of [never, ifFails, ifFails2]) w.lines.length = 0;
    const r = await f.requester();
    await r.initializeForRestore(stored.bcdXml, stored.wmds);
    await r.gatherWriterMetadata();
    await r.setSelectedForRestore(IDS.a, FG, '', 'db', true);
    await r.setSelectedForRestore(IDS.b, FG, '', 'data', true);
    await r.setSelectedForRestore(IDS.c, FG, '', 'data', true);
    await r.preRestore();
    await r.setFileRestoreStatus(IDS.a, FG, '', 'db', FileRestoreStatus.ALL);
    await r.setFileRestoreStatus(IDS.b, FG, '', 'data', FileRestoreStatus.NONE);
    await r.setFileRestoreStatus(IDS.c, FG, '', 'data', FileRestoreStatus.ALL);
    await r.postRestore();
    await r.release();
    assert.deepEqual(events(never), ['Identify']);
    assert.deepEqual(events(ifFails), ['Identify', 'PreRestore', 'PostRestore']);
    assert.deepEqual(events(ifFails2), ['Identify', 'PreRestore']);
    assert.equal(ifFails.lines[2]!.restore![0]!.fileRestoreStatus, 'VSS_RS_NONE');
  });

  test('a veto at PreRestore: FAILED_AT_PRE_RESTORE with the writer\'s message, and no PostRestore', async () => {
    const w = await f.writer(appWriter('always', { faults: [{ event: 'PreRestore', action: 'veto', error: 'VSS_E_WRITERERROR_NONRETRYABLE', message: 'database is in use' }] } as never));
    const stored = await storedBackup(f, [{ writerId: IDS.a, name: 'db' }]);
    w.lines.length = 0;
    const r = await f.requester();
    await r.initializeForRestore(stored.bcdXml, stored.wmds);
    await r.gatherWriterMetadata();
    await r.setSelectedForRestore(IDS.a, FG, '', 'db', true);
    await r.preRestore();
    await r.gatherWriterStatus();
    const s = r.getWriterStatus(0);
    assert.equal(s.state, WriterState.FAILED_AT_PRE_RESTORE);
    assert.equal(s.applicationMessage, 'database is in use');
    await r.setFileRestoreStatus(IDS.a, FG, '', 'db', FileRestoreStatus.NONE);
    await r.postRestore();
    await r.release();
    assert.deepEqual(events(w), ['Identify', 'PreRestore:veto']);
  });

  test('release is refused while writers handle PostRestore; a dropped requester waits for it', async () => {
    const w = await f.writer(appWriter('always', { faults: [{ event: 'PostRestore', action: 'hang', ms: 300 }] } as never));
    const stored = await storedBackup(f, [{ writerId: IDS.a, name: 'db' }]);
    const r = await f.requester();
    await r.initializeForRestore(stored.bcdXml, stored.wmds);
    await r.gatherWriterMetadata();
    await r.setSelectedForRestore(IDS.a, FG, '', 'db', true);
    await r.preRestore();
    const post = r.postRestore();
    await until(() => w.lines.some((l) => l.event === 'PostRestore'), 'PostRestore to reach the writer');
    await rejectsVss(() => r.release(), 'VSS_E_BAD_STATE', /await postRestore\(\) first/);
    assert.equal(await post.cancel(), 'finished', 'restores cannot be aborted: cancel waits for the end');
    await r.release();

    // Over the wire: the daemon refuses too, and a requester that drops the connection mid-PostRestore lets the writer finish.
    const r2 = await BackupComponents.create({ stream: () => f.co.connectRequester() });
    await r2.initializeForRestore(stored.bcdXml, stored.wmds);
    await r2.gatherWriterMetadata();
    await r2.setSelectedForRestore(IDS.a, FG, '', 'db', true);
    await r2.preRestore();
    const session = f.co.session(r2.sessionId)!;
    const post2 = r2.postRestore();
    await until(() => w.lines.filter((l) => l.event === 'PostRestore').length === 2, 'the second PostRestore');
    await assert.rejects(session.requestRelease(), (e: unknown) => VssError.is(e, 'VSS_E_BAD_STATE'));
    const ended = session.release('the requester disconnected');
    assert.equal(session.isReleased, false, 'not released while the writer handles PostRestore');
    await ended;
    await post2.wait().catch(() => undefined);
    const t = await f.co.trace(r2.sessionId);
    assert.equal(t.entries.find((e) => e.name === 'PostRestore')?.answer, 'ok', 'the writer finished PostRestore');
    await r2.release().catch(() => undefined);
  });

  test('setSelectedForRestoreEx restores a backed-up instance to another running instance of the class', async () => {
    const one = await f.writer({ ...appWriter('always'), instanceName: 'one' } as never);
    const stored = await storedBackup(f, [{ writerId: IDS.a, name: 'db' }]);
    await one.unsubscribe();
    const two = await f.writer({ ...appWriter('always'), instanceName: 'two' } as never);
    const r = await f.requester();
    await r.initializeForRestore(stored.bcdXml, stored.wmds);
    await r.gatherWriterMetadata();
    await rejectsVss(() => r.setSelectedForRestore(IDS.a, FG, '', 'db', true), 'VSS_E_OBJECT_NOT_FOUND', /instance "one" is not running now/);
    await rejectsVss(() => r.setSelectedForRestoreEx(IDS.a, FG, '', 'db', true, IDS.b), 'VSS_E_OBJECT_NOT_FOUND', /neither a backed-up instance/);
    await r.setSelectedForRestoreEx(IDS.a, FG, '', 'db', true, two.instanceId!);
    await r.preRestore();
    await r.postRestore();
    await r.release();
    assert.deepEqual(events(two), ['Identify', 'PreRestore', 'PostRestore']);
    assert.deepEqual(two.lines[1]!.components, ['db'], 'it received the backed-up instance\'s part of the document');
  });

  test('documents that do not belong together are refused at initializeForRestore', async () => {
    await f.writer(appWriter('always'));
    await f.writer({ writerId: IDS.b, name: 'Other' } as never);
    const stored = await storedBackup(f, [
      { writerId: IDS.a, name: 'db' },
      { writerId: IDS.b, name: 'data' },
    ]);
    const r = await f.requester();
    await rejectsVss(() => r.initializeForRestore(stored.bcdXml, stored.wmds.slice(0, 1)), 'VSS_E_OBJECT_NOT_FOUND', /no stored writer metadata for writer/);
    const renamed = stored.bcdXml.replace('componentName="db"', 'componentName="dbx"');
    const r2 = await f.requester();
    await rejectsVss(() => r2.initializeForRestore(renamed, stored.wmds), 'VSS_E_OBJECT_NOT_FOUND', /"dbx".*not from the same backup/);
    const r3 = await f.requester();
    await rejectsVss(() => r3.initializeForRestore('<BACKUP_COMPONENTS', stored.wmds), 'VSS_E_INVALID_XML_DOCUMENT');
  });
});

