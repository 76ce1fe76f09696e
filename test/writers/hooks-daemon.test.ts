// Script-hook writers hosted by `shadowcopy daemon --config-dir DIR` (DIR/writers.d/*.json),
// through real backups over the daemon's sockets: a failing freeze hook vetoes and its thaw
// still runs; a hanging hook is killed, with whatever it started, at its timeout.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runBackup } from '../../src/backup/run-backup.js';
import { tmpfsUnavailable } from '../../src/testing/tmpfs.js';
import { WriterState } from '../../src/vss/index.js';
import { E2E } from '../coordinator/e2e.js';

const skip = tmpfsUnavailable();

const FAILING = '5e0c1a2b-0000-4000-8000-00000000f001';
const HANGING = '5e0c1a2b-0000-4000-8000-00000000f002';

/** A process is gone when /proc has no entry for it or it is a zombie waiting for init. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('script-hook writers in the daemon', { skip, timeout: 180_000 }, () => {
  let e: E2E;
  let logDir: string;
  const log = (name: string): string[] => (existsSync(join(logDir, name)) ? readFileSync(join(logDir, name), 'utf8').trim().split('\n').filter(Boolean) : []);

  before(async () => {
    e = await E2E.start({
      volume: true,
      configure: (cfg, volume) => {
        logDir = join(cfg, '..', 'hook-logs');
        mkdirSync(logDir);
        mkdirSync(join(cfg, 'writers.d'));
        const files = [{ path: `${volume}/app`, filespec: '*', recursive: true }];
        const rec = (file: string, what: string) => `echo ${what} >> '${join(logDir, file)}'`;
        writeFileSync(
          join(cfg, 'writers.d', '10-failing.json'),
          JSON.stringify({
            writerId: FAILING,
            writerName: 'Failing Freeze',
            components: [{ name: 'data', logicalPath: 'app', files }],
            hooks: {
              freeze: { command: `${rec('failing', 'freeze')}; echo quiesce failed >&2; exit 3`, timeoutMs: 20_000 },
              thaw: { command: rec('failing', 'thaw'), timeoutMs: 20_000 },
            },
          }),
        );
        writeFileSync(
          join(cfg, 'writers.d', '20-hanging.json'),
          JSON.stringify({
            writerId: HANGING,
            writerName: 'Hanging Freeze',
            components: [{ name: 'data', logicalPath: 'app', files }],
            hooks: {
              // Starts a background child and waits forever: the whole group must die.
              freeze: { command: `${rec('hanging', 'freeze')}; sleep 600 & echo $! > '${join(logDir, 'bg.pid')}'; echo $$ > '${join(logDir, 'fg.pid')}'; wait`, timeoutMs: 1500 },
              thaw: { command: rec('hanging', 'thaw'), timeoutMs: 20_000 },
            },
          }),
        );
        // Not a definition: only *.json files are read.
        writeFileSync(join(cfg, 'writers.d', 'README'), 'hook writers live here');
      },
    });
  });
  after(async () => {
    await e?.close();
  });

  it('lists the hook writers as subscribed writers', async () => {
    const a = await e.admin();
    try {
      const names = (await a.listWriters()).map((w) => w.writerName).sort();
      assert.deepEqual(names, ['Failing Freeze', 'Hanging Freeze']);
    } finally {
      a.close();
    }
  });

  it('a failing freeze hook vetoes the backup, and its thaw hook still runs', async () => {
    const session = await e.requester();
    try {
      await assert.rejects(runBackup(session, { to: join(e.dir, 'backup-failing'), components: [{ writer: 'Failing Freeze' }] }), /VSS_E_WRITERERROR_RETRYABLE|freeze hook exited with status 3/);
      await session.gatherWriterStatus();
      const st = session.getWriterStatuses().find((s) => s.writerName === 'Failing Freeze');
      assert.equal(st?.state, WriterState.FAILED_AT_FREEZE);
      assert.equal(st?.hrWriterFailure, 0x800423f3, 'VSS_E_WRITERERROR_RETRYABLE, the file\'s default failure');
      assert.match(st?.applicationMessage ?? '', /the freeze hook exited with status 3: quiesce failed/);
    } finally {
      await session.release();
    }
    assert.deepEqual(log('failing'), ['freeze', 'thaw']);
    assert.deepEqual(log('hanging'), [], 'the other hook writer had no component in the backup and must not be called');
  });

  it('a hanging freeze hook is killed at its timeout with what it started; the backup fails with TIMEOUT and the thaw runs', async () => {
    const session = await e.requester();
    try {
      await assert.rejects(runBackup(session, { to: join(e.dir, 'backup-hanging'), components: [{ writer: 'Hanging Freeze' }] }), /TIMEOUT|did not finish within 1500 ms/);
      await session.gatherWriterStatus();
      const st = session.getWriterStatuses().find((s) => s.writerName === 'Hanging Freeze');
      assert.equal(st?.state, WriterState.FAILED_AT_FREEZE);
      assert.equal(st?.hrWriterFailure, 0x800423f2, 'VSS_E_WRITERERROR_TIMEOUT');
      assert.match(st?.applicationMessage ?? '', /did not finish within 1500 ms and was killed/);
    } finally {
      await session.release();
    }
    const fg = Number(readFileSync(join(logDir, 'fg.pid'), 'utf8'));
    const bg = Number(readFileSync(join(logDir, 'bg.pid'), 'utf8'));
    assert.equal(alive(fg), false, 'the hook itself still runs');
    assert.equal(alive(bg), false, 'the hook\'s background child still runs: the process group was not killed');
    assert.deepEqual(log('hanging'), ['freeze', 'thaw']);
    assert.ok(e.leftoverSnapshots().length === 0, 'no snapshot may be left after a vetoed backup');
  });
});
