// Bad input on the real sockets of an in-process daemon: malformed JSON, non-JSON-RPC,
// unknown methods, oversized messages, a client that never says hello, a version or role
// mismatch, another connection's session. Each gets a clear error; everyone else is served.
// Also: an unreachable daemon says how to start one; writers reconnect after a daemon restart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../../src/coordinator/index.js';
import { AdminClient, BackupComponents } from '../../src/requester/index.js';
import { TestWriter } from '../../src/testing/test-writer.js';
import { scriptedBackup } from '../../src/testing/scripted-requester.js';
import { VssError } from '../../src/vss/index.js';
import { config, IDS, until } from './helpers.js';

/** A raw client: sends lines, collects the JSON answers. */
class Raw {
  readonly answers: Record<string, unknown>[] = [];
  closed = false;
  private buf = '';
  private constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.answers.push(JSON.parse(this.buf.slice(0, i)) as Record<string, unknown>);
        this.buf = this.buf.slice(i + 1);
      }
    });
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => undefined);
  }
  static open(path: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path, () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }
  send(line: string): void {
    this.sock.write(`${line}\n`);
  }
  async next(): Promise<Record<string, unknown>> {
    const n = this.answers.length;
    await until(() => this.answers.length > n, 'an answer', 5000);
    return this.answers[n]!;
  }
  hello(role = 'requester', version = 1): void {
    this.send(JSON.stringify({ jsonrpc: '2.0', id: 'h', method: 'shadowcopy.hello', params: { protocolVersion: version, role } }));
  }
}

const errorOf = (m: Record<string, unknown>): { code: number; message: string } => m.error as { code: number; message: string };

describe('the daemon and bad peers', () => {
  let dir: string;
  let daemon: Daemon;
  const sock = (n: string): string => join(dir, 'sock', n);
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shadowcopy-bad-'));
    daemon = await Daemon.start({ socketDir: join(dir, 'sock'), stateDir: join(dir, 'state'), timeouts: { handshakeMs: 300 }, maxMessageBytes: 64 * 1024 });
  });
  after(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('socket modes: requester.sock 0600, writer.sock 0660', () => {
    assert.equal(statSync(sock('requester.sock')).mode & 0o777, 0o600);
    assert.equal(statSync(sock('writer.sock')).mode & 0o777, 0o660);
  });

  test('malformed JSON, non-JSON-RPC, unknown method, oversized message, calls before hello: clear errors, connection kept', async () => {
    const r = await Raw.open(sock('requester.sock'));
    try {
      r.send('{not json');
      assert.equal(errorOf(await r.next()).code, -32700);
      r.send('[1,2]');
      assert.equal(errorOf(await r.next()).code, -32600);
      r.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'session.open', params: {} }));
      const early = await r.next();
      assert.equal(errorOf(early).code, -32002);
      assert.match(errorOf(early).message, /shadowcopy\.hello first/);
      r.hello();
      assert.equal((await r.next()).id, 'h');
      r.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'no.such.method', params: {} }));
      assert.equal(errorOf(await r.next()).code, -32601);
      r.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'session.open', params: { pad: 'x'.repeat(100_000) } }));
      const big = await r.next();
      assert.equal(errorOf(big).code, -32001);
      assert.match(errorOf(big).message, /larger than 65536 bytes/);
      r.send(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'session.setContext', params: { sessionId: 'x' } }));
      const bad = await r.next();
      assert.equal(errorOf(bad).code, -32602);
      assert.match(errorOf(bad).message, /context/);
      // Still served after all that.
      r.send(JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'session.open', params: {} }));
      const ok = await r.next();
      assert.equal(ok.id, 5);
      assert.ok((ok.result as { sessionId: string }).sessionId);
      assert.equal(r.closed, false);
    } finally {
      r.sock.destroy();
    }
  });

  test('a VSS error on the wire carries its HRESULT as the code and its name in data', async () => {
    const r = await Raw.open(sock('requester.sock'));
    try {
      r.hello();
      await r.next();
      r.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'session.open', params: {} }));
      const sessionId = ((await r.next()).result as { sessionId: string }).sessionId;
      r.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'session.startSnapshotSet', params: { sessionId } }));
      const e = (await r.next()).error as { code: number; message: string; data: { vssError: string; hresult: number } };
      assert.equal(e.data.vssError, 'VSS_E_BAD_STATE');
      assert.equal(e.code, 0x80042301 | 0);
      assert.match(e.message, /initializeForBackup first/);
    } finally {
      r.sock.destroy();
    }
  });

  test('a client that never says hello is told so and disconnected; others are unaffected', async () => {
    const idle = await Raw.open(sock('writer.sock'));
    const admin = await AdminClient.connect({ socketDir: join(dir, 'sock') });
    try {
      await until(() => idle.closed, 'the idle client to be closed');
      assert.equal(errorOf(idle.answers[0]!).code, -32002);
      assert.match(errorOf(idle.answers[0]!).message, /no shadowcopy\.hello within 300 ms/);
      assert.deepEqual(await admin.listWriters(), []);
    } finally {
      admin.close();
    }
  });

  test('a protocol version mismatch or the wrong socket is refused with a clear message', async () => {
    const r = await Raw.open(sock('requester.sock'));
    r.hello('requester', 99);
    const e = errorOf(await r.next());
    assert.match(e.message, /protocol version 99 is not supported: this daemon speaks version 1/);
    await until(() => r.closed, 'close after version mismatch');
    const w = await Raw.open(sock('requester.sock'));
    try {
      w.hello('writer');
      assert.match(errorOf(await w.next()).message, /this is the requester socket; a writer connects to writer\.sock/);
    } finally {
      w.sock.destroy();
    }
  });

  test('another connection\'s session is not found; a released session is VSS_E_BAD_STATE', async () => {
    const one = await BackupComponents.create({ socketDir: join(dir, 'sock') });
    const r = await Raw.open(sock('requester.sock'));
    try {
      r.hello();
      await r.next();
      r.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'session.saveAsXml', params: { sessionId: one.sessionId } }));
      assert.equal(((await r.next()).error as { data: { vssError: string } }).data.vssError, 'VSS_E_OBJECT_NOT_FOUND');
      await one.release();
      await assert.rejects(one.initializeForBackup(), (e) => VssError.is(e, 'VSS_E_BAD_STATE'));
    } finally {
      r.sock.destroy();
    }
  });

  test('an unreachable daemon is an error that says how to start one', async () => {
    await assert.rejects(BackupComponents.create({ socketDir: join(dir, 'nowhere') }), (e) => VssError.is(e, 'VSS_E_WRITER_INFRASTRUCTURE') && /shadowcopy daemon --socket-dir/.test(e.message) && /--standalone/.test(e.message));
  });

  test('a writer reconnects after the daemon restarts and takes part in the next backup', async () => {
    const w = new TestWriter(config(IDS.a, 'A'));
    await w.subscribe({ socketDir: join(dir, 'sock'), reconnectDelayMs: { min: 20, max: 200 } });
    const first = w.instanceId!.toString();
    try {
      await daemon.stop();
      daemon = await Daemon.start({ socketDir: join(dir, 'sock'), stateDir: join(dir, 'state'), timeouts: { handshakeMs: 300 }, maxMessageBytes: 64 * 1024 });
      await until(() => daemon.coordinator.listWriters().length === 1, 'the writer to reconnect');
      assert.notEqual(daemon.coordinator.listWriters()[0]!.instanceId, first, 'a new instance id per connection');
      const bc = await BackupComponents.create({ socketDir: join(dir, 'sock') });
      const r = await scriptedBackup(bc);
      await bc.release();
      assert.equal(r.outcome, 'completed');
      assert.equal(w.lines.filter((l) => l.event === 'BackupShutdown').length, 1);
    } finally {
      await w.unsubscribe();
    }
  });
});
