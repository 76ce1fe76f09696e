// In-process coordinator fixtures: a coordinator on a temp state dir, test writers and
// requesters over in-memory JSON-RPC streams (the same protocol as the daemon's sockets).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator, type TimeoutsInput } from '../../src/coordinator/index.js';
import { SnapshotManager } from '../../src/providers/index.js';
import { BackupComponents } from '../../src/requester/index.js';
import { ManualClock } from '../../src/testing/clock.js';
import { TestWriter, type TestWriterConfig } from '../../src/testing/test-writer.js';

export interface Fixture {
  co: Coordinator;
  clock: ManualClock | undefined;
  stateDir: string;
  writer(config: Partial<TestWriterConfig> & { writerId: string; name: string }): Promise<TestWriter>;
  requester(): Promise<BackupComponents>;
  close(): Promise<void>;
}

export const IDS = {
  a: '11111111-1111-4111-8111-111111111111',
  b: '22222222-2222-4222-8222-222222222222',
  c: '33333333-3333-4333-8333-333333333333',
};

export function config(writerId: string, name: string, extra: Partial<TestWriterConfig> = {}): TestWriterConfig {
  return {
    writerId,
    name,
    components: [{ name: 'data', files: [{ path: '/srv/app', filespec: '*', recursive: true }] }],
    ...extra,
  } as TestWriterConfig;
}

export async function fixture(opts: { manualClock?: boolean; timeouts?: TimeoutsInput } = {}): Promise<Fixture> {
  const stateDir = mkdtempSync(join(tmpdir(), 'shadowcopy-co-'));
  const snapshots = await SnapshotManager.open({ stateDir });
  const clock = opts.manualClock ? new ManualClock() : undefined;
  const co = new Coordinator({ snapshots, stateDir, ...(clock ? { clock } : {}), ...(opts.timeouts ? { timeouts: opts.timeouts } : {}) });
  const writers: TestWriter[] = [];
  const requesters: BackupComponents[] = [];
  return {
    co,
    clock,
    stateDir,
    async writer(c) {
      const w = new TestWriter(config(c.writerId, c.name, c), { exit: ((code: number) => { throw new Error(`exit ${code}`); }) as (code: number) => never });
      await w.subscribe({ stream: () => co.connectWriter(), reconnect: false });
      writers.push(w);
      return w;
    },
    async requester() {
      const r = await BackupComponents.create({ stream: () => co.connectRequester() });
      requesters.push(r);
      return r;
    },
    async close() {
      for (const r of requesters) await r.release().catch(() => undefined);
      await co.shutdown();
      for (const w of writers) await w.unsubscribe();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** The events a test writer logged, in order, as "Event:answer". */
export function events(w: TestWriter): string[] {
  return w.lines.map((l) => (l.answer === 'ok' ? l.event : `${l.event}:${l.answer}`));
}

/** Waits until `cond` holds, polling (for effects that follow a disconnection). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
