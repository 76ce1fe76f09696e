// Restore with writer participation through a real `shadowcopy daemon` and `shadowcopy
// test-writer` processes (root: the backup snapshots a tmpfs volume): a writer process that
// crashes between PreRestore and PostRestore, and one that vetoes PreRestore.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SessionRestoreParticipation } from '../../src/backup/restore-participation.js';
import { runBackup } from '../../src/backup/run-backup.js';
import { runRestore } from '../../src/backup/run-restore.js';
import type { ServiceManager } from '../../src/backup/service-manager.js';
import type { TestWriterConfig } from '../../src/testing/test-writer.js';
import { tmpfsUnavailable } from '../../src/testing/tmpfs.js';
import { FileRestoreStatus, VssError, WriterState } from '../../src/vss/index.js';
import { E2E, killHard, type WriterProc } from '../coordinator/e2e.js';

const skip = tmpfsUnavailable();
const ID = '5e5e5e5e-0000-4000-8000-000000000001';

function config(volume: string, extra: Partial<TestWriterConfig> = {}): TestWriterConfig {
  return {
    writerId: ID,
    name: 'Service Writer',
    restoreMethod: { method: 'STOP_RESTART_SERVICE', service: 'app.service', writerRestore: 'always', rebootRequired: false },
    components: [{ name: 'data', files: [{ path: join(volume, 'app'), filespec: '*.db', recursive: false }] }],
    ...extra,
  } as TestWriterConfig;
}

describe('restore through the daemon with test-writer processes', { skip }, () => {
  let e: E2E;
  before(async () => {
    e = await E2E.start({ volume: true });
  });
  after(async () => {
    await e?.close();
  });

  async function backupTo(to: string): Promise<void> {
    const r = await e.requester();
    try {
      await runBackup(r, { to, components: [{ writer: 'Service Writer' }] });
    } finally {
      await r.release();
    }
  }

  test('a writer process killed between PreRestore and PostRestore: files restored whole, PostRestore reported lost, the new instance untouched', async () => {
    const vol = e.volume!;
    let w: WriterProc = await e.writer(config(vol));
    const first = w;
    await backupTo(join(e.dir, 'b1'));
    writeFileSync(join(vol, 'app', 'data.db'), 'pages v2');
    // The writer runs inside the service: stopping the service is a crash (SIGKILL), starting it runs a new process.
    const services: ServiceManager = {
      stop: () => killHard(w.proc),
      start: async () => {
        w = await e.writer(config(vol));
      },
    };
    const report = await runRestore({
      from: join(e.dir, 'b1'),
      stateDir: join(e.dir, 'restore-state'),
      files: false,
      serviceManager: services,
      participation: new SessionRestoreParticipation({ open: () => e.requester() }),
    });
    const step = report.steps[0]!;
    assert.equal(step.results[0]!.status, FileRestoreStatus.ALL);
    assert.equal(readFileSync(join(vol, 'app', 'data.db'), 'utf8'), 'pages');
    assert.equal(step.writerFailures!.length, 1);
    assert.equal(step.writerFailures![0]!.state, WriterState.FAILED_AT_POST_RESTORE);
    assert.ok(VssError.is(step.writerFailures![0]!.error, 'VSS_E_WRITER_NOT_RESPONDING'), step.writerFailures![0]!.error.message);
    const restoreEvents = first.lines().filter((l) => l.event === 'PreRestore' || l.event === 'PostRestore').map((l) => l.event);
    assert.deepEqual(restoreEvents, ['PreRestore'], 'the killed instance saw PreRestore and nothing after');
    assert.deepEqual(w.events().filter((x) => x !== 'Identify'), [], 'the restarted instance was not part of that restore');
    await killHard(w.proc);
  });

  test('a writer process that vetoes PreRestore: nothing restored, its error and state in the report', async () => {
    const vol = e.volume!;
    const w = await e.writer(config(vol, { writerId: '5e5e5e5e-0000-4000-8000-000000000002', name: 'Veto Writer', restoreMethod: { method: 'RESTORE_IF_CAN_BE_REPLACED', writerRestore: 'always', rebootRequired: false }, faults: [{ event: 'PreRestore', action: 'veto', error: 'VSS_E_WRITERERROR_NONRETRYABLE', message: 'not now' }] } as never));
    writeFileSync(join(vol, 'app', 'data.db'), 'pages');
    const r = await e.requester();
    try {
      await runBackup(r, { to: join(e.dir, 'b2'), components: [{ writer: 'Veto Writer' }] });
    } finally {
      await r.release();
    }
    writeFileSync(join(vol, 'app', 'data.db'), 'pages v3');
    const report = await runRestore({ from: join(e.dir, 'b2'), stateDir: join(e.dir, 'restore-state'), files: false, participation: new SessionRestoreParticipation({ open: () => e.requester() }) });
    const result = report.steps[0]!.results[0]!;
    assert.equal(result.status, FileRestoreStatus.NONE);
    assert.ok(VssError.is(result.error, 'VSS_E_WRITERERROR_NONRETRYABLE'), result.error?.message);
    assert.match(result.error!.message, /not now/);
    assert.equal(readFileSync(join(vol, 'app', 'data.db'), 'utf8'), 'pages v3', 'left as it was');
    assert.deepEqual(report.steps[0]!.writerFailures!.map((f) => [f.event, f.state]), [['PreRestore', WriterState.FAILED_AT_PRE_RESTORE]]);
    assert.deepEqual(w.events().filter((x) => x === 'PreRestore:veto' || x === 'PostRestore'), ['PreRestore:veto']);
    await killHard(w.proc);
  });
});
