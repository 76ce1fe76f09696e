// Sequence rules in-process: out-of-order calls, writerless contexts, one creation at a time,
// participation, duplicate writers, status outside the sequence, a writer in two sessions,
// and time as data (an injected clock: the default and per-writer freeze windows, event deadlines).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { scriptedBackup } from '../../src/testing/scripted-requester.js';
import { BackupType, ComponentType, Guid, HRESULT, SnapshotContext, VssError, WriterState } from '../../src/vss/index.js';
import { TestWriter } from '../../src/testing/test-writer.js';
import { config, events, fixture, IDS, until } from './helpers.js';

const isCode = (code: string, re?: RegExp) => (e: unknown) => VssError.is(e) && e.code === code && (!re || re.test(e.message));

describe('call order', () => {
  test('out-of-order calls are VSS_E_BAD_STATE naming the call expected next', async () => {
    const f = await fixture();
    try {
      await f.writer({ writerId: IDS.a, name: 'A' });
      const bc = await f.requester();
      await assert.rejects(bc.gatherWriterMetadata().wait(), isCode('VSS_E_BAD_STATE', /initializeForBackup first/));
      await bc.initializeForBackup();
      await assert.rejects(bc.initializeForBackup(), isCode('VSS_E_BAD_STATE'));
      await assert.rejects(bc.startSnapshotSet(), isCode('VSS_E_BAD_STATE', /gatherWriterMetadata first/));
      await assert.rejects(bc.addComponent(Guid.random(), IDS.a, ComponentType.FILEGROUP, '', 'data'), isCode('VSS_E_BAD_STATE', /gatherWriterMetadata first/));
      await bc.gatherWriterMetadata();
      await assert.rejects(bc.disableWriterClasses([IDS.a]), isCode('VSS_E_BAD_STATE', /before gatherWriterMetadata/));
      const { instanceId } = bc.getWriterMetadata(0);
      await bc.addComponent(instanceId, IDS.a, ComponentType.FILEGROUP, '', 'data');
      await assert.rejects(bc.addComponent(instanceId, IDS.a, ComponentType.FILEGROUP, '', 'data'), isCode('VSS_E_OBJECT_ALREADY_EXISTS'));
      await assert.rejects(bc.addComponent(instanceId, IDS.a, ComponentType.FILEGROUP, '', 'nope'), isCode('VSS_E_OBJECT_NOT_FOUND'));
      await assert.rejects(bc.prepareForBackup().wait(), isCode('VSS_E_BAD_STATE', /setBackupState first/));
      await bc.setBackupState(true, false, BackupType.FULL);
      await assert.rejects(bc.prepareForBackup().wait(), isCode('VSS_E_BAD_STATE', /startSnapshotSet first/));
      await assert.rejects(bc.doSnapshotSet().wait(), isCode('VSS_E_BAD_STATE', /startSnapshotSet first/));
      await bc.startSnapshotSet();
      await assert.rejects(bc.setContext(SnapshotContext.APP_ROLLBACK), isCode('VSS_E_BAD_STATE', /before the snapshot set is started/));
      await assert.rejects(bc.doSnapshotSet().wait(), isCode('VSS_E_BAD_STATE', /prepareForBackup first/));
      await assert.rejects(bc.backupComplete().wait(), isCode('VSS_E_BAD_STATE', /doSnapshotSet first/));
      await assert.rejects(bc.setBackupSucceeded(instanceId, IDS.a, ComponentType.FILEGROUP, '', 'data', true), isCode('VSS_E_BAD_STATE', /doSnapshotSet first/));
      await bc.prepareForBackup();
      await assert.rejects(bc.addComponent(instanceId, IDS.a, ComponentType.FILEGROUP, '', 'data'), isCode('VSS_E_BAD_STATE', /before prepareForBackup/));
      await bc.doSnapshotSet();
      await assert.rejects(bc.doSnapshotSet().wait(), isCode('VSS_E_BAD_STATE', /already called/));
      await bc.backupComplete();
      await bc.release();
      await assert.rejects(bc.saveAsXml(), isCode('VSS_E_BAD_STATE', /released/));
    } finally {
      await f.close();
    }
  });

  test('writerless contexts reject component calls and send writers nothing', async () => {
    const f = await fixture();
    try {
      const w = await f.writer({ writerId: IDS.a, name: 'A' });
      const bc = await f.requester();
      await bc.initializeForBackup();
      await bc.setContext(SnapshotContext.FILE_SHARE_BACKUP);
      await bc.setBackupState(true, false, BackupType.FULL);
      await bc.startSnapshotSet();
      await assert.rejects(bc.addComponent(Guid.random(), IDS.a, ComponentType.FILEGROUP, '', 'data'), isCode('VSS_E_BAD_STATE', /no writers/));
      await assert.rejects(bc.prepareForBackup().wait(), isCode('VSS_E_BAD_STATE', /no writers/));
      await bc.doSnapshotSet();
      await assert.rejects(bc.backupComplete().wait(), isCode('VSS_E_BAD_STATE', /no writers/));
      await bc.release();
      assert.deepEqual(events(w), []);
    } finally {
      await f.close();
    }
  });

  test('one snapshot set in creation at a time: VSS_E_SNAPSHOT_SET_IN_PROGRESS until doSnapshotSet returns', async () => {
    const f = await fixture();
    try {
      await f.writer({ writerId: IDS.a, name: 'A' });
      const one = await f.requester();
      const two = await f.requester();
      for (const bc of [one, two]) {
        await bc.initializeForBackup();
        await bc.setBackupState(false, false, BackupType.FULL);
        await bc.gatherWriterMetadata();
      }
      await one.startSnapshotSet();
      await assert.rejects(two.startSnapshotSet(), isCode('VSS_E_SNAPSHOT_SET_IN_PROGRESS'));
      await one.prepareForBackup();
      await one.doSnapshotSet();
      await two.startSnapshotSet();
    } finally {
      await f.close();
    }
  });

  test('a writer with no explicit component gets no event after Identify; disabled classes get none at all', async () => {
    const f = await fixture();
    try {
      const a = await f.writer({ writerId: IDS.a, name: 'A' });
      const b = await f.writer({ writerId: IDS.b, name: 'B' });
      const c = await f.writer({ writerId: IDS.c, name: 'C' });
      const bc = await f.requester();
      await bc.initializeForBackup();
      await bc.setBackupState(true, false, BackupType.FULL);
      await bc.disableWriterClasses([IDS.c]);
      await bc.gatherWriterMetadata();
      assert.equal(bc.getWriterMetadataCount(), 2);
      const ma = [0, 1].map((i) => bc.getWriterMetadata(i)).find((m) => m.metadata.identity.writerId.equals(IDS.a))!;
      await bc.addComponent(ma.instanceId, IDS.a, ComponentType.FILEGROUP, '', 'data');
      await bc.startSnapshotSet();
      await bc.prepareForBackup();
      await bc.doSnapshotSet();
      await bc.backupComplete();
      await bc.release();
      assert.deepEqual(events(a), ['Identify', 'PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot', 'BackupComplete', 'BackupShutdown']);
      assert.deepEqual(events(b), ['Identify']);
      assert.deepEqual(events(c), []);
    } finally {
      await f.close();
    }
  });

  test('a second live writer with the same class id and instance name is refused; another instance name is fine', async () => {
    const f = await fixture();
    try {
      await f.writer({ writerId: IDS.a, name: 'A', instanceName: 'x' });
      await assert.rejects(f.writer({ writerId: IDS.a, name: 'A', instanceName: 'x' }), isCode('VSS_E_WRITER_ALREADY_SUBSCRIBED', /instance name "x"/));
      await f.writer({ writerId: IDS.a, name: 'A', instanceName: 'y' });
      assert.equal(f.co.listWriters().length, 2);
    } finally {
      await f.close();
    }
  });

  test('a writer whose Identify fails has no status record; status outside a sequence point says it is unreliable', async () => {
    const f = await fixture();
    try {
      await f.writer({ writerId: IDS.a, name: 'A' });
      await f.writer({ writerId: IDS.b, name: 'B', faults: [{ event: 'Identify', action: 'veto' }] });
      const bc = await f.requester();
      await bc.initializeForBackup();
      await bc.setBackupState(true, false, BackupType.FULL);
      await bc.gatherWriterMetadata();
      await bc.gatherWriterStatus();
      assert.equal(bc.getWriterStatusCount(), 1);
      assert.equal(bc.isWriterStatusReliable(), false);
      assert.equal(f.co.listWriters().find((w) => w.writerId === IDS.b)!.state, WriterState.FAILED_AT_IDENTIFY);
      const { instanceId } = bc.getWriterMetadata(0);
      await bc.addComponent(instanceId, IDS.a, ComponentType.FILEGROUP, '', 'data');
      await bc.startSnapshotSet();
      await bc.prepareForBackup();
      await bc.gatherWriterStatus();
      assert.equal(bc.isWriterStatusReliable(), true);
      assert.throws(() => bc.getWriterStatus(5), isCode('VSS_E_OBJECT_NOT_FOUND'));
    } finally {
      await f.close();
    }
  });

  test('a writer in two sessions at once gets each session\'s own snapshot set id', async () => {
    const f = await fixture();
    try {
      const w = await f.writer({ writerId: IDS.a, name: 'A' });
      const one = await f.requester();
      const two = await f.requester();
      const r1 = await scriptedBackup(one);
      const r2 = await scriptedBackup(two);
      assert.notEqual(r1.snapshotSetId.toString(), r2.snapshotSetId.toString());
      await one.release();
      await two.release();
      for (const [bc, r] of [[one, r1], [two, r2]] as const) {
        const mine = w.lines.filter((l) => l.sessionId === bc.sessionId);
        for (const l of mine.filter((x) => x.event === 'Freeze' || x.event === 'PostSnapshot')) assert.equal(l.currentSnapshotSetId, r.snapshotSetId.toString());
        assert.equal(mine.filter((x) => x.event === 'BackupShutdown').length, 1);
      }
    } finally {
      await f.close();
    }
  });

  test('a writer that disconnects between events is failed at the next one with VSS_E_WRITER_NOT_RESPONDING', async () => {
    const f = await fixture();
    try {
      const a = await f.writer({ writerId: IDS.a, name: 'A' });
      const b = await f.writer({ writerId: IDS.b, name: 'B' });
      const bc = await f.requester();
      const r = await scriptedBackup(bc, {
        onStep: async (step) => {
          if (step === 'prepareForBackup') await a.unsubscribe();
        },
      });
      assert.equal(r.outcome, 'completed');
      const sa = r.statuses.find((s) => s.writerId.equals(IDS.a))!;
      assert.equal(sa.state, WriterState.FAILED_AT_PREPARE_SNAPSHOT);
      assert.equal(sa.hrWriterFailure, HRESULT.VSS_E_WRITER_NOT_RESPONDING);
      assert.ok(events(b).includes('BackupComplete'));
    } finally {
      await f.close();
    }
  });

  test('setWriterFailureEx carries the application message to getWriterStatus', async () => {
    const f = await fixture();
    try {
      await f.writer({ writerId: IDS.a, name: 'A', faults: [{ event: 'PostSnapshot', action: 'fail', error: 'VSS_E_WRITERERROR_OUTOFRESOURCES', message: 'disk full on /srv' }] });
      const bc = await f.requester();
      const r = await scriptedBackup(bc);
      assert.equal(r.outcome, 'completed');
      const s = bc.getWriterStatus(0);
      assert.equal(s.state, WriterState.FAILED_AT_POST_SNAPSHOT);
      assert.equal(s.hrWriterFailure, HRESULT.VSS_E_WRITERERROR_OUTOFRESOURCES);
      assert.equal(s.applicationMessage, 'disk full on /srv');
    } finally {
      await f.close();
    }
  });
});

describe('time as data (injected clock)', () => {
  /** Lets pending I/O on the in-memory streams settle. */
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };

  test('the default 60 s freeze window: no Abort at 59 s, Abort and VSS_E_WRITERERROR_TIMEOUT at 60 s', async () => {
    const f = await fixture({ manualClock: true });
    try {
      const a = await f.writer({ writerId: IDS.a, name: 'A', faults: [{ event: 'Freeze', action: 'hang' }] });
      const bc = await f.requester();
      const run = scriptedBackup(bc);
      await until(() => a.lines.some((l) => l.event === 'Freeze'), 'Freeze');
      f.clock!.advance(59_999);
      await settle();
      assert.ok(!a.lines.some((l) => l.event === 'Abort'), 'no Abort before the window ends');
      f.clock!.advance(1);
      const r = await run;
      assert.equal(r.outcome, 'snapshot-failed');
      assert.ok(VssError.is(r.error, 'VSS_E_WRITERERROR_TIMEOUT'));
      assert.equal(r.statuses[0]!.state, WriterState.FAILED_AT_FREEZE);
      assert.equal(r.statuses[0]!.hrWriterFailure, HRESULT.VSS_E_WRITERERROR_TIMEOUT);
      assert.deepEqual(events(a).slice(-2), ['Freeze:hang', 'Abort']);
    } finally {
      await f.close();
    }
  });

  test('the writer\'s own freeze timeout wins over the daemon\'s default', async () => {
    const f = await fixture({ manualClock: true, timeouts: { freezeWindowMs: 60_000 } });
    try {
      const a = await f.writer({ writerId: IDS.a, name: 'A', freezeTimeoutMs: 20_000, faults: [{ event: 'Thaw', action: 'hang' }] });
      const bc = await f.requester();
      const run = scriptedBackup(bc);
      await until(() => a.lines.some((l) => l.event === 'Thaw'), 'Thaw');
      f.clock!.advance(20_000);
      const r = await run;
      assert.equal(r.statuses[0]!.state, WriterState.FAILED_AT_THAW);
      assert.equal(r.statuses[0]!.hrWriterFailure, HRESULT.VSS_E_WRITERERROR_TIMEOUT);
    } finally {
      await f.close();
    }
  });

  test('an event deadline: a writer silent past it is VSS_E_WRITER_NOT_RESPONDING, the others go on', async () => {
    const f = await fixture({ manualClock: true, timeouts: { eventMs: { PrepareForSnapshot: 300_000 } } });
    try {
      const a = await f.writer({ writerId: IDS.a, name: 'A', faults: [{ event: 'PrepareForSnapshot', action: 'hang' }] });
      const b = await f.writer({ writerId: IDS.b, name: 'B' });
      const bc = await f.requester();
      const run = scriptedBackup(bc);
      await until(() => a.lines.some((l) => l.event === 'PrepareForSnapshot'), 'PrepareForSnapshot');
      f.clock!.advance(299_999);
      await settle();
      assert.ok(!b.lines.some((l) => l.event === 'Freeze'), 'Freeze waits for every PrepareForSnapshot answer');
      f.clock!.advance(1);
      const r = await run;
      assert.equal(r.outcome, 'completed');
      const sa = r.statuses.find((s) => s.writerId.equals(IDS.a))!;
      assert.equal(sa.state, WriterState.FAILED_AT_PREPARE_SNAPSHOT);
      assert.equal(sa.hrWriterFailure, HRESULT.VSS_E_WRITER_NOT_RESPONDING);
      assert.ok(events(b).includes('BackupComplete'));
    } finally {
      await f.close();
    }
  });
});

describe('writer SDK', () => {
  test('getCurrentSnapshotSetId and setWriterFailure outside a handler are VSS_E_BAD_STATE', () => {
    const w = new TestWriter(config(IDS.a, 'A'));
    assert.throws(() => w.getCurrentSnapshotSetId(), isCode('VSS_E_BAD_STATE', /outside an event handler/));
    assert.throws(() => w.setWriterFailure('VSS_E_WRITERERROR_RETRYABLE'), isCode('VSS_E_BAD_STATE'));
  });
});
