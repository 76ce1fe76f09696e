// End-to-end fixtures: a real `shadowcopy daemon` process on a temp socket dir, test writers
// as `shadowcopy test-writer` processes, and (as root) a tmpfs volume for the copy provider.
// Everything a test starts is killed by pid and removed in close(), and on process exit too.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN } from '../support/cli.js';
import { AdminClient, BackupComponents } from '../../src/requester/index.js';
import type { TestWriterConfig, TestWriterLogLine } from '../../src/testing/test-writer.js';
import type { TimeoutsInput } from '../../src/coordinator/index.js';
import { mountsUnder } from '../../src/testing/loopfs.js';

export const IS_ROOT = process.getuid?.() === 0;

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) if (c.exitCode === null && c.pid) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
});

export function spawnTracked(args: string[], opts: { stdout?: 'pipe' | 'ignore' } = {}): ChildProcess {
  const c = spawn(process.execPath, args, { stdio: ['ignore', opts.stdout ?? 'ignore', 'pipe'] });
  live.add(c);
  c.once('exit', () => live.delete(c));
  let err = '';
  c.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  (c as ChildProcess & { stderrText: () => string }).stderrText = () => err;
  return c;
}

export function killHard(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null || !c.pid) return Promise.resolve();
  return new Promise((r) => {
    c.once('exit', () => r());
    process.kill(c.pid!, 'SIGKILL');
  });
}

export interface WriterProc {
  proc: ChildProcess;
  logFile: string;
  lines(): TestWriterLogLine[];
  /** "Event" or "Event:answer" for one session. */
  events(sessionId?: string): string[];
}

export async function waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export class E2E {
  readonly sockDir: string;
  readonly stateDir: string;
  readonly cfgDir: string;
  daemon!: ChildProcess;
  /** A tmpfs mount (root only) the copy provider snapshots; undefined otherwise. */
  volume: string | undefined;
  private n = 0;
  private readonly writers: WriterProc[] = [];

  private constructor(readonly dir: string) {
    this.sockDir = join(dir, 'sock');
    this.stateDir = join(dir, 'state');
    this.cfgDir = join(dir, 'cfg');
  }

  /** `configure` writes into the config directory (e.g. writers.d/) before the daemon starts. */
  static async start(opts: { timeouts?: TimeoutsInput; volume?: boolean; configure?: (cfgDir: string, volume: string | undefined) => void } = {}): Promise<E2E> {
    const e = new E2E(mkdtempSync(join(tmpdir(), 'shadowcopy-e2e-')));
    mkdirSync(e.cfgDir);
    writeFileSync(join(e.cfgDir, 'daemon.json'), JSON.stringify({ timeouts: opts.timeouts ?? {} }));
    if (opts.volume && IS_ROOT) {
      const v = join(e.dir, 'vol');
      mkdirSync(v);
      const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'shadowcopy-e2e', v], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mount tmpfs: ${r.stderr}`);
      mkdirSync(join(v, 'app'));
      writeFileSync(join(v, 'app', 'data.db'), 'pages');
      e.volume = v;
    }
    opts.configure?.(e.cfgDir, e.volume);
    await e.startDaemon();
    return e;
  }

  async startDaemon(): Promise<void> {
    this.daemon = spawnTracked(['--import', 'tsx', CLI_MAIN, 'daemon', '--socket-dir', this.sockDir, '--state-dir', this.stateDir, '--config-dir', this.cfgDir, '--log-level', 'warn']);
    await waitFor(async () => {
      if (this.daemon.exitCode !== null) throw new Error(`daemon exited: ${(this.daemon as ChildProcess & { stderrText: () => string }).stderrText()}`);
      if (!existsSync(join(this.sockDir, 'writer.sock'))) return undefined;
      try {
        (await AdminClient.connect({ socketDir: this.sockDir })).close();
        return true;
      } catch {
        return undefined;
      }
    }, 'the daemon to listen');
  }

  async stopDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const d = this.daemon;
    if (d.exitCode !== null || d.signalCode !== null) return;
    await new Promise<void>((r) => {
      d.once('exit', () => r());
      process.kill(d.pid!, signal);
    });
  }

  /** Starts a test writer process and waits until the daemon lists it. */
  async writer(config: TestWriterConfig): Promise<WriterProc> {
    const i = ++this.n;
    const cfg = join(this.dir, `writer${i}.json`);
    const logFile = join(this.dir, `writer${i}.log`);
    writeFileSync(cfg, JSON.stringify(config));
    writeFileSync(logFile, '');
    const proc = spawnTracked(['--import', 'tsx', CLI_MAIN, 'test-writer', '--config', cfg, '--log', logFile, '--socket-dir', this.sockDir]);
    const lines = (): TestWriterLogLine[] =>
      readFileSync(logFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as TestWriterLogLine);
    const w: WriterProc = {
      proc,
      logFile,
      lines,
      events: (sessionId) => lines().filter((l) => sessionId === undefined || l.sessionId === sessionId || l.event === 'Identify').map((l) => (l.answer === 'ok' ? l.event : `${l.event}:${l.answer}`)),
    };
    this.writers.push(w);
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`test writer exited: ${(proc as ChildProcess & { stderrText: () => string }).stderrText()}`);
      const a = await AdminClient.connect({ socketDir: this.sockDir });
      try {
        return (await a.listWriters()).some((x) => x.writerId === config.writerId.toLowerCase() && x.instanceName === (config.instanceName ?? '')) || undefined;
      } finally {
        a.close();
      }
    }, `writer ${config.name} to subscribe`);
    return w;
  }

  admin(): Promise<AdminClient> {
    return AdminClient.connect({ socketDir: this.sockDir });
  }

  requester(): Promise<BackupComponents> {
    return BackupComponents.create({ socketDir: this.sockDir });
  }

  /** Snapshot directories left in the volume's store. */
  leftoverSnapshots(): string[] {
    if (!this.volume) return [];
    const d = join(this.volume, '.shadowcopy', 'snapshots');
    return existsSync(d) ? readdirSync(d) : [];
  }

  async close(): Promise<void> {
    for (const w of this.writers) await killHard(w.proc);
    await this.stopDaemon().catch(() => undefined);
    await killHard(this.daemon);
    if (this.volume) for (const mp of mountsUnder(this.dir)) if (spawnSync('umount', [mp]).status !== 0) spawnSync('umount', ['-l', mp]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
