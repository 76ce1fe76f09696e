// Over the real daemon sockets with test-writer processes: the event order of a successful
// backup, and for a veto, a failure and a hang at each event from PrepareForBackup to
// BackupComplete, the writer states, the Abort (or its absence) and BackupShutdown of spec
// §7–§8, with no snapshot left. Hangs end by short configured deadlines, never by waiting minutes.
// As root the set holds a tmpfs volume (copy provider); otherwise the set is empty.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { scriptedBackup, type ScriptResult } from '../../src/testing/scripted-requester.js';
import { Guid, HRESULT, WriterState } from '../../src/vss/index.js';
import type { TestWriterConfig } from '../../src/testing/test-writer.js';
import { E2E, IS_ROOT, killHard, type WriterProc } from './e2e.js';

const A_ID = 'aaaaaaaa-0000-4000-8000-00000000000a';
const B_ID = 'bbbbbbbb-0000-4000-8000-00000000000b';
const DEADLINE = 1500;

type Ev = 'PrepareForBackup' | 'PrepareForSnapshot' | 'Freeze' | 'Thaw' | 'PostSnapshot' | 'BackupComplete';
type Action = 'veto' | 'fail' | 'hang';

const FULL = ['Identify', 'PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot', 'BackupComplete', 'BackupShutdown'];

interface Expect {
  /** What writer A (faulty, FRONT_END) logs. */
  a: string[];
  /** What writer B (healthy, BACK_END) logs. */
  b: string[];
  aState: WriterState;
  aHr: number;
  outcome: ScriptResult['outcome'];
}

/** The expected outcome of each case, written out from spec §7.1 and §8 (see docs/architecture.md). */
function expected(ev: Ev, action: Action): Expect {
  const code = action === 'hang' ? (ev === 'Freeze' || ev === 'Thaw' ? HRESULT.VSS_E_WRITERERROR_TIMEOUT : HRESULT.VSS_E_WRITER_NOT_RESPONDING) : HRESULT.VSS_E_WRITERERROR_RETRYABLE;
  const mark = (list: string[]): string[] => list.map((e) => (e === ev ? `${e}:${action}` : e));
  const upTo = (e: string): string[] => mark(FULL.slice(0, FULL.indexOf(e) + 1));
  switch (ev) {
    case 'PrepareForBackup':
      // Any failure after PrepareForBackup: the requester calls abortBackup; Abort to both, no snapshot.
      return { a: [...upTo(ev), 'Abort', 'BackupShutdown'], b: ['Identify', 'PrepareForBackup', 'Abort', 'BackupShutdown'], aState: WriterState.FAILED_AT_PREPARE_BACKUP, aHr: code, outcome: 'aborted-after-prepare' };
    case 'PrepareForSnapshot':
    case 'PostSnapshot':
    case 'BackupComplete': {
      // No Abort (spec §8): the set is made; a writer that vetoed or did not answer gets nothing more but BackupShutdown.
      const state = { PrepareForSnapshot: WriterState.FAILED_AT_PREPARE_SNAPSHOT, PostSnapshot: WriterState.FAILED_AT_POST_SNAPSHOT, BackupComplete: WriterState.FAILED_AT_BACKUP_COMPLETE }[ev];
      return { a: action === 'fail' ? mark(FULL) : [...upTo(ev), 'BackupShutdown'], b: FULL, aState: state, aHr: code, outcome: 'completed' };
    }
    case 'Freeze':
    case 'Thaw': {
      const state = ev === 'Freeze' ? WriterState.FAILED_AT_FREEZE : WriterState.FAILED_AT_THAW;
      if (action === 'fail') return { a: mark(FULL), b: FULL, aState: state, aHr: code, outcome: 'completed' };
      // Veto or overrun of the freeze window: Abort to every writer, the set deleted, DoSnapshotSet fails.
      // B is BACK_END: frozen after A, thawed before A.
      const b = ev === 'Freeze' ? ['Identify', 'PrepareForBackup', 'PrepareForSnapshot', 'Abort', 'BackupShutdown'] : ['Identify', 'PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'Abort', 'BackupShutdown'];
      return { a: [...upTo(ev), 'Abort', 'BackupShutdown'], b, aState: state, aHr: code, outcome: 'snapshot-failed' };
    }
  }
}

function writerConfig(id: string, name: string, level: string, instanceName: string, volume: string | undefined, extra: Partial<TestWriterConfig> = {}): TestWriterConfig {
  return {
    writerId: id,
    name,
    instanceName,
    level,
    usage: 'USER_DATA',
    sourceType: 'OTHER',
    components: [{ name: 'data', files: [{ path: volume ? `${volume}/app` : '/srv/app', filespec: '*', recursive: true }] }],
    ...extra,
  } as TestWriterConfig;
}

describe('end to end over the daemon sockets', { timeout: 600_000 }, () => {
  let e: E2E;
  let b: WriterProc;
  before(async () => {
    e = await E2E.start({ volume: true, timeouts: { eventMs: { PrepareForBackup: DEADLINE, PrepareForSnapshot: DEADLINE, PostSnapshot: DEADLINE, BackupComplete: DEADLINE } } });
    b = await e.writer(writerConfig(B_ID, 'Writer B', 'BACK_END', 'b', e.volume));
  });
  after(async () => {
    await e?.close();
  });

  const run = async (a: WriterProc): Promise<{ r: ScriptResult; sessionId: string }> => {
    const bc = await e.requester();
    let r: ScriptResult;
    try {
      r = await scriptedBackup(bc, { volumes: e.volume ? [e.volume] : [] });
    } finally {
      await bc.release();
    }
    void a;
    return { r, sessionId: bc.sessionId };
  };

  test(`a successful backup with three writers: each logs the spec order${IS_ROOT ? '' : ' (not root: empty snapshot set)'}`, async () => {
    const a = await e.writer(writerConfig(A_ID, 'Writer A', 'FRONT_END', 'ok', e.volume));
    const c = await e.writer(writerConfig('cccccccc-0000-4000-8000-00000000000c', 'Writer C', 'SYSTEM', 'c', e.volume));
    try {
      const { r, sessionId } = await run(a);
      assert.equal(r.outcome, 'completed');
      assert.ok(r.statuses.every((s) => s.state === WriterState.STABLE && s.hrWriterFailure === 0));
      for (const w of [a, b, c]) assert.deepEqual(w.events(sessionId).slice(-8), FULL);
      const shutdown = a.lines().at(-1)!;
      assert.equal(shutdown.snapshotSetId, e.volume ? r.snapshotSetId.toString() : Guid.NULL.toString());
      if (e.volume) assert.equal(r.snapshots.length, 1);
      const admin = await e.admin();
      try {
        assert.deepEqual(await admin.query(), [], 'auto-release snapshots are gone after release');
      } finally {
        admin.close();
      }
      assert.deepEqual(e.leftoverSnapshots(), []);
    } finally {
      await killHard(a.proc);
      await killHard(c.proc);
    }
  });

  for (const ev of ['PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot', 'BackupComplete'] as Ev[]) {
    for (const action of ['veto', 'fail', 'hang'] as Action[]) {
      test(`${action} at ${ev}`, async () => {
        const a = await e.writer(
          writerConfig(A_ID, 'Writer A', 'FRONT_END', `${ev}-${action}`, e.volume, {
            freezeTimeoutMs: DEADLINE,
            faults: [{ event: ev, action, error: 'VSS_E_WRITERERROR_RETRYABLE' }],
          }),
        );
        try {
          const bLinesBefore = b.lines().length;
          const { r, sessionId } = await run(a);
          const x = expected(ev, action);
          assert.equal(r.outcome, x.outcome, r.error?.message);
          assert.deepEqual(a.events(sessionId), x.a);
          assert.deepEqual(b.lines().slice(bLinesBefore).map((l) => (l.answer === 'ok' ? l.event : `${l.event}:${l.answer}`)), x.b);
          const sa = r.statuses.find((s) => s.writerId.equals(A_ID))!;
          const sb = r.statuses.find((s) => s.writerId.equals(B_ID))!;
          assert.equal(sa.state, x.aState, `writer A state ${sa.state}`);
          assert.equal(sa.hrWriterFailure, x.aHr >>> 0, `writer A hr 0x${sa.hrWriterFailure.toString(16)}`);
          assert.equal(sb.state, WriterState.STABLE);
          assert.equal(sb.hrWriterFailure, 0);
          if (x.outcome === 'snapshot-failed') assert.match(r.error!.message, /Writer A/);
          // BackupShutdown carries the set id only when the snapshot was made (and not undone).
          const setId = x.outcome === 'completed' && e.volume ? r.snapshotSetId.toString() : Guid.NULL.toString();
          assert.equal(a.lines().filter((l) => l.event === 'BackupShutdown').at(-1)!.snapshotSetId, setId);
          const admin = await e.admin();
          try {
            assert.deepEqual(await admin.query(), []);
            const w = (await admin.listWriters()).find((i) => i.writerId === A_ID)!;
            assert.equal(w.state, x.aState, 'the daemon lists the writer\'s last state');
          } finally {
            admin.close();
          }
          assert.deepEqual(e.leftoverSnapshots(), []);
        } finally {
          await killHard(a.proc);
        }
      });
    }
  }
});
