// The coordinator's own cost: a full backup sequence (Identify to BackupShutdown) with 1, 10
// and 100 no-op writers and no provider work (a snapshot set with no volume, which spec §4.1
// #10 allows), over the daemon's real Unix sockets, against a bare JSON-over-Unix-socket
// exchange of the same messages measured in the same run:
//   coordination sequence (N writers) / bare exchange (N writers)    goal at 100 writers <= 3
//
// The bare exchange has the same shape and message count as the real sequence: a new
// requester connection and its hello, then open, initializeForBackup, setBackupState,
// gatherWriterMetadata (Identify to every writer, in parallel), N addComponent calls,
// startSnapshotSet, prepareForBackup (one event to every writer), doSnapshotSet
// (PrepareForSnapshot, Freeze, Thaw, PostSnapshot, each to every writer in turn),
// backupComplete and release (BackupComplete, BackupShutdown to every writer): 10 + N
// requester round trips and 8 N writer round trips. Each request is one small JSON line,
// answered by one JSON line, with no validation, no XML, no state: what any transport costs.
// Writers are in-process Writer instances, each on its own connection to the socket.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interleavedMedianMs, report } from './report.js';
import { Daemon } from '../src/coordinator/daemon.js';
import { BackupComponents } from '../src/requester/index.js';
import { Writer } from '../src/writer/index.js';
import { BackupType, ComponentType, RestoreMethod, SourceType, UsageType, WriterRestore, type WriterMetadataBuilder } from '../src/vss/index.js';

// COORDINATION_WRITERS=100 measures one count only (for profiling).
const COUNTS = process.env.COORDINATION_WRITERS ? [Number(process.env.COORDINATION_WRITERS)] : [1, 10, 100];
const GOAL_AT_100 = 3;

/** A writer that does nothing but describe one component. */
class NoopWriter extends Writer {
  override onIdentify(b: WriterMetadataBuilder): void {
    b.setRestoreMethod(RestoreMethod.RESTORE_IF_CAN_REPLACE, undefined, undefined, WriterRestore.NEVER, false);
    b.addComponent({ type: ComponentType.FILEGROUP, logicalPath: '', componentName: 'data', caption: 'data', selectable: true });
    b.addFilesToFileGroup('', 'data', '/srv/bench', '*', true);
  }
}

// ---- the real thing ------------------------------------------------------------------------

interface RealSetup {
  daemon: Daemon;
  socketDir: string;
  writers: NoopWriter[];
}

async function startReal(n: number, root: string): Promise<RealSetup> {
  const socketDir = join(root, `sock-${n}`);
  const daemon = await Daemon.start({ socketDir, stateDir: join(root, `state-${n}`) });
  const writers: NoopWriter[] = [];
  for (let i = 0; i < n; i++) {
    const w = new NoopWriter({ writerId: randomUUID(), writerName: `Bench Writer ${i}`, usage: UsageType.USERDATA, sourceType: SourceType.OTHER });
    await w.subscribe({ socketDir, reconnect: false });
    writers.push(w);
  }
  return { daemon, socketDir, writers };
}

/** One backup from a new requester connection to the last BackupShutdown answered. */
async function realSequence(s: RealSetup): Promise<void> {
  const bc = await BackupComponents.create({ socketDir: s.socketDir, client: 'bench' });
  try {
    await bc.initializeForBackup();
    await bc.setBackupState(true, false, BackupType.FULL);
    await bc.gatherWriterMetadata();
    if (bc.getWriterMetadataCount() !== s.writers.length) throw new Error(`${bc.getWriterMetadataCount()} of ${s.writers.length} writers answered Identify`);
    for (let i = 0; i < bc.getWriterMetadataCount(); i++) {
      const m = bc.getWriterMetadata(i);
      await bc.addComponent(m.instanceId, m.metadata.identity.writerId, ComponentType.FILEGROUP, '', 'data');
    }
    await bc.startSnapshotSet();
    await bc.prepareForBackup();
    await bc.doSnapshotSet();
    await bc.backupComplete();
  } finally {
    // BackupShutdown to every writer; resolves when all have answered.
    await bc.release();
  }
}

// ---- the baseline --------------------------------------------------------------------------

/** Reads newline-delimited JSON from a socket. */
function onLines(sock: Socket, fn: (msg: { id: number; method?: string; params?: unknown; result?: unknown }) => void): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line) fn(JSON.parse(line) as { id: number; method?: string });
    }
  });
}

function send(sock: Socket, msg: unknown): void {
  sock.write(`${JSON.stringify(msg)}\n`);
}

/** A JSON-RPC-shaped peer with request/response matching, nothing more. */
class BarePeer {
  private next = 1;
  private readonly waiting = new Map<number, () => void>();
  constructor(readonly sock: Socket, onRequest?: (msg: { id: number; method?: string }) => void) {
    onLines(sock, (msg) => {
      if (msg.method !== undefined) onRequest?.(msg);
      else {
        const w = this.waiting.get(msg.id);
        this.waiting.delete(msg.id);
        w?.();
      }
    });
  }
  request(method: string, params: unknown): Promise<void> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      send(this.sock, { jsonrpc: '2.0', id, method, params });
    });
  }
}

interface BareSetup {
  server: Server;
  path: string;
  writers: Socket[];
}

const BROADCASTS: Record<string, string[]> = {
  'session.gatherWriterMetadata': ['Identify'],
  'session.prepareForBackup': ['PrepareForBackup'],
  'session.doSnapshotSet': ['PrepareForSnapshot', 'Freeze', 'Thaw', 'PostSnapshot'],
  'session.backupComplete': ['BackupComplete'],
  'session.release': ['BackupShutdown'],
};

async function startBare(n: number, root: string): Promise<BareSetup> {
  const path = join(root, `bare-${n}.sock`);
  const writerPeers: BarePeer[] = [];
  const server = createServer((sock) => {
    // The first line says which side connected; a writer then only answers events.
    const peer: BarePeer = new BarePeer(sock, (msg) => {
      if (msg.method === 'hello-writer') {
        writerPeers.push(peer);
        send(sock, { jsonrpc: '2.0', id: msg.id, result: {} });
        return;
      }
      void (async () => {
        for (const event of BROADCASTS[msg.method!] ?? []) {
          await Promise.all(writerPeers.map((w) => w.request('writer.event', { event, sessionId: 's' })));
        }
        send(sock, { jsonrpc: '2.0', id: msg.id, result: {} });
      })();
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  const writers: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const sock = await connect(path);
    const p = new BarePeer(sock, (msg) => send(sock, { jsonrpc: '2.0', id: msg.id, result: { ok: true } }));
    await p.request('hello-writer', {});
    writers.push(sock);
  }
  return { server, path, writers };
}

function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

async function bareSequence(s: BareSetup): Promise<void> {
  const sock = await connect(s.path);
  const r = new BarePeer(sock);
  const calls = ['hello', 'session.open', 'session.initializeForBackup', 'session.setBackupState', 'session.gatherWriterMetadata'];
  for (const m of calls) await r.request(m, { sessionId: 's' });
  for (let i = 0; i < s.writers.length; i++) await r.request('session.addComponent', { sessionId: 's', componentName: 'data' });
  for (const m of ['session.startSnapshotSet', 'session.prepareForBackup', 'session.doSnapshotSet', 'session.backupComplete', 'session.release']) await r.request(m, { sessionId: 's' });
  sock.destroy();
}

// ---- run -----------------------------------------------------------------------------------

const root = mkdtempSync(join(tmpdir(), 'shadowcopy-bench-coordination-'));
const real = new Map<number, RealSetup>();
const bare = new Map<number, BareSetup>();
try {
  for (const n of COUNTS) {
    real.set(n, await startReal(n, root));
    bare.set(n, await startBare(n, root));
  }
  const fns: Record<string, () => Promise<void>> = {};
  for (const n of COUNTS) {
    fns[`bare${n}`] = () => bareSequence(bare.get(n)!);
    fns[`real${n}`] = () => realSequence(real.get(n)!);
  }
  const t = await interleavedMedianMs(fns, 9, 3);
  for (const n of COUNTS) {
    const rt = 9 * n + 10;
    report('coordination', `sequence_ms_${n}_writers`, t[`real${n}`]!);
    report('coordination', `bare_exchange_ms_${n}_writers (${rt} round trips)`, t[`bare${n}`]!);
    const ratio = t[`real${n}`]! / t[`bare${n}`]!;
    report('coordination', `ratio_${n}_writers`, ratio, n === 100 ? { op: '<=', target: GOAL_AT_100 } : undefined);
  }
} finally {
  for (const s of real.values()) {
    for (const w of s.writers) await w.unsubscribe();
    await s.daemon.stop();
  }
  for (const b of bare.values()) {
    for (const w of b.writers) w.destroy();
    await new Promise<void>((r) => b.server.close(() => r()));
  }
  rmSync(root, { recursive: true, force: true });
}
// A missed goal is printed (MISSED) by report(); a non-zero exit is kept for errors, as in every bench.
process.exit(0);
