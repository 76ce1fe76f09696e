// Killing the requester process (SIGKILL) at each step: every writer that took part gets
// BackupShutdown, frozen writers get Abort at once (not when their freeze window ends), and the
// auto-release snapshots are deleted. Over the real daemon sockets, with test-writer processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Guid, SnapshotContext } from '../../src/vss/index.js';
import type { TestWriterConfig } from '../../src/testing/test-writer.js';
import { E2E, killHard, spawnTracked, waitFor, type WriterProc } from './e2e.js';

const CHILD = join(import.meta.dirname, 'fixtures', 'requester-child.ts');

function cfg(id: string, name: string, level: string, instanceName: string, volume: string | undefined, extra: Partial<TestWriterConfig> = {}): TestWriterConfig {
  return { writerId: id, name, instanceName, level, components: [{ name: 'data', files: [{ path: volume ? `${volume}/app` : '/srv/app', filespec: '*', recursive: true }] }], ...extra } as TestWriterConfig;
}

/** Starts the requester child and resolves with the set id when it reports the step. */
function startRequester(e: E2E, step: string): { proc: ChildProcess; reached: Promise<string> } {
  const proc = spawnTracked(['--import', 'tsx', CHILD, e.sockDir, step, ...(e.volume ? [e.volume] : [])], { stdout: 'pipe' });
  const reached = new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /STEP (\S+) (\S*)\n/.exec(out);
      if (m) resolve(m[2]!);
    });
    proc.once('exit', (code) => reject(new Error(`requester exited (${code}) before ${step}: ${(proc as ChildProcess & { stderrText: () => string }).stderrText()}`)));
  });
  return { proc, reached };
}

const ev = (w: WriterProc, from: number): string[] => w.lines().slice(from).map((l) => (l.answer === 'ok' ? l.event : `${l.event}:${l.answer}`));

describe('requester killed with SIGKILL', { timeout: 300_000 }, () => {
  let e: E2E;
  let a: WriterProc;
  let b: WriterProc;
  before(async () => {
    e = await E2E.start({ volume: true });
    a = await e.writer(cfg('aaaaaaaa-1111-4000-8000-00000000000a', 'Writer A', 'FRONT_END', 'a', e.volume));
    b = await e.writer(cfg('bbbbbbbb-1111-4000-8000-00000000000b', 'Writer B', 'BACK_END', 'b', e.volume));
  });
  after(async () => {
    await e?.close();
  });

  /** A new session can start a set: the dead one released the creation slot. */
  const slotFree = async (): Promise<void> => {
    await waitFor(async () => {
      const bc = await e.requester();
      try {
        await bc.initializeForBackup();
        // A writerless context: the probe itself sends the writers nothing.
        await bc.setContext(SnapshotContext.FILE_SHARE_BACKUP);
        await bc.startSnapshotSet();
        return true;
      } catch {
        return undefined;
      } finally {
        await bc.release();
      }
    }, 'the creation slot to be free');
  };

  const cases: { step: string; expect: string[]; setMade: boolean }[] = [
    { step: 'initialize', expect: [], setMade: false },
    { step: 'gatherWriterMetadata', expect: ['Identify'], setMade: false },
    { step: 'startSnapshotSet', expect: ['Identify'], setMade: false },
    { step: 'prepareForBackup', expect: ['Identify', 'PrepareForBackup', 'Abort', 'BackupShutdown'], setMade: false },
    { step: 'doSnapshotSet', expect: ['Identify', 'PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot', 'BackupShutdown'], setMade: true },
    { step: 'backupComplete', expect: ['Identify', 'PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot', 'BackupComplete', 'BackupShutdown'], setMade: true },
  ];
  for (const c of cases) {
    test(`killed after ${c.step}`, async () => {
      const fromA = a.lines().length;
      const fromB = b.lines().length;
      const r = startRequester(e, c.step);
      const setId = await r.reached;
      if (c.setMade && e.volume) {
        const admin = await e.admin();
        assert.equal((await admin.query()).length, 1, 'the snapshot exists while the requester lives');
        admin.close();
      }
      await killHard(r.proc);
      if (c.expect.includes('BackupShutdown')) {
        await waitFor(() => ev(a, fromA).includes('BackupShutdown') && ev(b, fromB).includes('BackupShutdown'), 'BackupShutdown');
        const shutdown = a.lines().slice(fromA).find((l) => l.event === 'BackupShutdown')!;
        assert.equal(shutdown.snapshotSetId, c.setMade && e.volume ? setId : Guid.NULL.toString());
      } else await slotFree();
      assert.deepEqual(ev(a, fromA), c.expect);
      assert.deepEqual(ev(b, fromB), c.expect);
      const admin = await e.admin();
      try {
        await waitFor(async () => ((await admin.query()).length === 0 ? true : undefined), 'auto-release snapshots to be deleted');
      } finally {
        admin.close();
      }
      assert.deepEqual(e.leftoverSnapshots(), []);
    });
  }

  test('killed while writers are frozen: Abort at once, then BackupShutdown', async () => {
    // C (SYSTEM level) hangs in Freeze with a 10-minute window: A and B stay frozen until the
    // requester dies. The test would time out long before that window if Abort waited for it.
    const c = await e.writer(cfg('cccccccc-1111-4000-8000-00000000000c', 'Writer C', 'SYSTEM', 'c', e.volume, { freezeTimeoutMs: 600_000, faults: [{ event: 'Freeze', action: 'hang' }] }));
    try {
      const fromA = a.lines().length;
      const fromB = b.lines().length;
      const r = startRequester(e, 'doSnapshotSet-running');
      await r.reached;
      await waitFor(() => c.lines().some((l) => l.event === 'Freeze') || undefined, 'C to receive Freeze');
      assert.deepEqual(ev(a, fromA).slice(-1), ['Freeze'], 'A is frozen');
      assert.deepEqual(ev(b, fromB).slice(-1), ['Freeze'], 'B is frozen');
      await killHard(r.proc);
      for (const w of [a, b, c]) await waitFor(() => w.lines().some((l, i) => i >= (w === a ? fromA : w === b ? fromB : 0) && l.event === 'BackupShutdown') || undefined, 'BackupShutdown');
      const tail = ['Identify', 'PrepareForBackup', 'PrepareForSnapshot', 'Freeze', 'Abort', 'BackupShutdown'];
      assert.deepEqual(ev(a, fromA), tail);
      assert.deepEqual(ev(b, fromB), tail);
      assert.deepEqual(ev(c, 0), ['Identify', 'PrepareForBackup', 'PrepareForSnapshot', 'Freeze:hang', 'Abort', 'BackupShutdown']);
      assert.equal(a.lines().at(-1)!.snapshotSetId, Guid.NULL.toString());
      const admin = await e.admin();
      try {
        assert.deepEqual(await admin.query(), []);
      } finally {
        admin.close();
      }
      assert.deepEqual(e.leftoverSnapshots(), []);
    } finally {
      await killHard(c.proc);
    }
  });
});
