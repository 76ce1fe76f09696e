// The backup sequence in-process: event order, levels, participation, status, BCD access.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { scriptedBackup } from '../../src/testing/scripted-requester.js';
import { Guid, WriterState } from '../../src/vss/index.js';
import { events, fixture, IDS } from './helpers.js';

const FULL = ['Identify', 'PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot', 'BackupComplete', 'BackupShutdown'];

describe('backup sequence (in-process)', () => {
  test('a successful backup: every writer sees the spec order, status ends STABLE', async () => {
    const f = await fixture();
    try {
      const a = await f.writer({ writerId: IDS.a, name: 'A', level: 'FRONT_END' });
      const b = await f.writer({ writerId: IDS.b, name: 'B', level: 'BACK_END' });
      const bc = await f.requester();
      const r = await scriptedBackup(bc);
      assert.equal(r.outcome, 'completed');
      assert.deepEqual(r.statuses.map((s) => s.state), [WriterState.STABLE, WriterState.STABLE]);
      await bc.release();
      assert.deepEqual(events(a), FULL);
      assert.deepEqual(events(b), FULL);
      // No snapshot was made (empty set): BackupShutdown carries the null GUID.
      assert.equal(a.lines.at(-1)!.snapshotSetId, Guid.NULL.toString());
      // getCurrentSnapshotSetId: the set id from PrepareForBackup through PostSnapshot, an error after.
      const cur = Object.fromEntries(a.lines.map((l) => [l.event, l.currentSnapshotSetId]));
      for (const e of ['PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot']) assert.equal(cur[e], r.snapshotSetId.toString(), e);
      assert.equal(cur.BackupShutdown, 'VSS_E_BAD_STATE');
      assert.equal(cur.BackupComplete, 'VSS_E_BAD_STATE');
      assert.equal(cur.Identify, 'VSS_E_BAD_STATE');
    } finally {
      await f.close();
    }
  });
});

describe('freeze order', () => {
  test('Freeze by level FRONT_END, BACK_END, SYSTEM; Thaw in reverse; the timeline is kept by set id', async () => {
    const f = await fixture();
    try {
      await f.writer({ writerId: IDS.c, name: 'Sys', level: 'SYSTEM' });
      await f.writer({ writerId: IDS.b, name: 'Back', level: 'BACK_END' });
      await f.writer({ writerId: IDS.a, name: 'Front', level: 'FRONT_END' });
      const bc = await f.requester();
      const r = await scriptedBackup(bc);
      await bc.release();
      const t = await f.co.trace(r.snapshotSetId.toString());
      const order = (name: string): string[] => t.entries.filter((e) => e.kind === 'event' && e.name === name).map((e) => e.writerName!);
      assert.deepEqual(order('Freeze'), ['Front', 'Back', 'Sys']);
      assert.deepEqual(order('Thaw'), ['Sys', 'Back', 'Front']);
      assert.ok(t.endedAt);
      // Saved in the state directory, found again by session id.
      const again = await f.co.trace(t.sessionId);
      assert.equal(again.entries.length, t.entries.length);
    } finally {
      await f.close();
    }
  });
});
