// The daemon: the coordinator behind two Unix sockets. requester.sock (0600) is for backup
// programs (root); writer.sock (0660, group `shadowcopy` when it exists) is for applications.
// The split is the security model: documents never reach an unprivileged peer.
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { REQUESTER_SOCKET, WRITER_SOCKET } from '../protocol/client.js';
import { SnapshotManager, type RecoveryReport } from '../providers/index.js';
import { VssError } from '../vss/index.js';
import { HOOK_WRITERS_DIR, loadHookWritersFrom, type HookWriter } from '../writers/hooks/writer.js';
import type { Clock } from './clock.js';
import { Coordinator, type LogFn } from './coordinator.js';
import { resolveTimeouts, type TimeoutsInput } from './timeouts.js';

export const DEFAULT_STATE_DIR = '/var/lib/shadowcopy';
export const DEFAULT_CONFIG_DIR = '/etc/shadowcopy';
export const WRITER_GROUP = 'shadowcopy';

export interface DaemonOptions {
  socketDir: string;
  stateDir: string;
  /** Holds daemon.json ({"timeouts": …}) and writers.d/*.json (script-hook writers the daemon hosts). */
  configDir?: string;
  timeouts?: TimeoutsInput;
  clock?: Clock;
  log?: LogFn;
  maxMessageBytes?: number;
}

/** Reads <configDir>/daemon.json if present: `{ "timeouts": { "freezeWindowMs": …, "eventMs": { … } } }`. */
export function readDaemonConfig(configDir: string | undefined): { timeouts?: TimeoutsInput } {
  if (!configDir) return {};
  const file = join(configDir, 'daemon.json');
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as { timeouts?: TimeoutsInput };
  } catch (e) {
    throw new VssError('E_INVALIDARG', `${file} is not valid JSON: ${(e as Error).message}; fix or remove it`);
  }
}

function groupId(name: string): number | undefined {
  try {
    const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
    return line ? Number(line.split(':')[2]) : undefined;
  } catch {
    return undefined;
  }
}

/** True when something answers on the socket: another daemon is running there. */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export class Daemon {
  private constructor(
    readonly coordinator: Coordinator,
    readonly snapshots: SnapshotManager,
    readonly recovery: RecoveryReport,
    private readonly servers: Server[],
    readonly socketPaths: { requester: string; writer: string },
    private readonly log: LogFn,
    private readonly sockets: Set<Socket>,
    /** The script-hook writers of <configDir>/writers.d, subscribed in-process. */
    readonly hookWriters: readonly HookWriter[],
  ) {}

  static async start(opts: DaemonOptions): Promise<Daemon> {
    const log = opts.log ?? (() => undefined);
    const fileConfig = readDaemonConfig(opts.configDir);
    const timeouts = resolveTimeouts({ ...fileConfig.timeouts, ...opts.timeouts, eventMs: { ...fileConfig.timeouts?.eventMs, ...opts.timeouts?.eventMs } });
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    mkdirSync(opts.socketDir, { recursive: true, mode: 0o755 });
    const paths = { requester: join(opts.socketDir, REQUESTER_SOCKET), writer: join(opts.socketDir, WRITER_SOCKET) };
    for (const p of Object.values(paths)) {
      if (!existsSync(p)) continue;
      if (await socketAlive(p)) throw new VssError('VSS_E_WRITER_INFRASTRUCTURE', `a shadowcopy daemon already listens on ${p}; stop it first, or use another --socket-dir`);
      unlinkSync(p);
    }
    // Hook definitions first: a bad file stops the daemon before it listens, naming the file.
    const hooksDir = opts.configDir ? join(opts.configDir, HOOK_WRITERS_DIR) : undefined;
    const hookWriters = hooksDir && existsSync(hooksDir) ? loadHookWritersFrom(hooksDir) : [];
    const snapshots = await SnapshotManager.open({ stateDir: opts.stateDir, commitWindowMs: timeouts.commitWindowMs });
    // Whatever a crash left: half-made snapshots and auto-release snapshots of dead sessions.
    const recovery = await snapshots.recover(new Set());
    log('info', 'recovery done', { kept: recovery.kept.length, released: recovery.released.length, halfMade: recovery.halfMade.length, vanished: recovery.vanished.length, failures: recovery.failures.map((f) => f.error.message) });
    const co = new Coordinator({ snapshots, stateDir: opts.stateDir, timeouts, log, ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.maxMessageBytes ? { maxMessageBytes: opts.maxMessageBytes } : {}) });
    let n = 0;
    const sockets = new Set<Socket>();
    const track = (sock: Socket): void => {
      sockets.add(sock);
      sock.once('close', () => sockets.delete(sock));
      // A peer that vanishes mid-write is that peer's problem, never the daemon's.
      sock.on('error', (e) => log('warn', 'connection error', { error: e.message }));
    };
    const requesterServer = createServer((sock) => (track(sock), co.serveRequester(sock, { peerLabel: `requester #${++n}` })));
    const writerServer = createServer((sock) => (track(sock), co.serveWriter(sock, { peerLabel: `writer connection #${++n}` })));
    // The mode is set before anyone can connect: umask makes the socket private while it is created.
    const oldMask = process.umask(0o177);
    try {
      await listen(requesterServer, paths.requester);
      process.umask(0o117);
      await listen(writerServer, paths.writer);
    } finally {
      process.umask(oldMask);
    }
    chmodSync(paths.requester, 0o600);
    chmodSync(paths.writer, 0o660);
    const gid = groupId(WRITER_GROUP);
    if (gid !== undefined) {
      try {
        chownSync(paths.writer, process.getuid?.() ?? 0, gid);
      } catch (e) {
        log('warn', `could not give ${paths.writer} to group ${WRITER_GROUP}`, { error: (e as Error).message });
      }
    }
    // Hosted over the in-process connection: the same protocol and rules as socket writers.
    for (const w of hookWriters) {
      await w.subscribe({ stream: () => co.connectWriter(), reconnect: false });
      log('info', 'hook writer subscribed', { writer: w.options.writerName, file: w.engine.def.source });
    }
    log('info', 'listening', { requester: paths.requester, writer: paths.writer, stateDir: opts.stateDir, configDir: opts.configDir, timeouts, hookWriters: hookWriters.length });
    return new Daemon(co, snapshots, recovery, [requesterServer, writerServer], paths, log, sockets, hookWriters);
  }

  /** Ends every session (BackupShutdown, cleanup), closes the sockets. */
  async stop(): Promise<void> {
    await this.coordinator.shutdown();
    // After shutdown, so the hook writers got their Abort / BackupShutdown (an owed thaw ran).
    for (const w of this.hookWriters) await w.unsubscribe();
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const p of Object.values(this.socketPaths)) {
      try {
        unlinkSync(p);
      } catch {
        // Already gone.
      }
    }
    this.log('info', 'stopped');
  }
}
