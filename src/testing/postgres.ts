// A private PostgreSQL server for tests: initdb in a temp dir, started by pg_ctl on a private
// Unix socket directory (no TCP), as the `postgres` user when we are root. Cleanup is
// synchronous so it also runs from `exit` and signal handlers: whatever a failing test
// leaves, no server keeps running and no temp dir stays behind.
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PgTools {
  binDir: string;
  version: number;
  /** The account servers run as: `postgres` when we are root, else the current user. */
  runAs: { user: string; uid: number; gid: number } | undefined;
}

/** The newest Debian-installed server, e.g. /usr/lib/postgresql/15/bin. */
function findBinDir(): { binDir: string; version: number } | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .map(Number)
    .filter((v) => Number.isInteger(v) && existsSync(join(root, String(v), 'bin', 'initdb')))
    .sort((a, b) => b - a);
  const v = versions[0];
  return v === undefined ? undefined : { binDir: join(root, String(v), 'bin'), version: v };
}

function postgresAccount(): { user: string; uid: number; gid: number } | undefined {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return undefined;
  return { user: 'postgres', uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Why a private server cannot be started here, or undefined when it can. */
export function postgresUnavailable(needTools: string[] = []): string | undefined {
  const found = findBinDir();
  if (!found) return 'PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)';
  const missing = ['initdb', 'pg_ctl', 'postgres', ...needTools].filter((t) => !existsSync(join(found.binDir, t)));
  if (missing.length) return `missing ${missing.join(', ')} in ${found.binDir} (Debian: apt-get install postgresql postgresql-client)`;
  if (process.getuid?.() === 0) {
    // initdb refuses to run as root, so root needs the postgres account and runuser.
    if (!postgresAccount()) return 'running as root but there is no `postgres` user to run the server as (Debian: apt-get install postgresql creates it)';
    if (spawnSync('runuser', ['--help']).status !== 0) return 'running as root but `runuser` is missing (Debian: apt-get install util-linux)';
  }
  return undefined;
}

export function pgTools(): PgTools {
  const why = postgresUnavailable();
  if (why) throw new Error(`cannot start a private PostgreSQL server: ${why}`);
  const found = findBinDir()!;
  return { ...found, runAs: process.getuid?.() === 0 ? postgresAccount() : undefined };
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a PostgreSQL tool as the server's account (runuser when root). */
export function runPgTool(tools: PgTools, tool: string, args: string[], opts: SpawnSyncOptions = {}): RunResult {
  const bin = join(tools.binDir, tool);
  const [cmd, argv] = tools.runAs ? ['runuser', ['-u', tools.runAs.user, '--', bin, ...args]] : [bin, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', cwd: '/', ...opts });
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

function mustRun(tools: PgTools, tool: string, args: string[]): string {
  const r = runPgTool(tools, tool, args);
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** Hands a path to the server's account (a no-op when we are not root). */
export function giveToPostgres(tools: PgTools, path: string, recursive = false): void {
  if (!tools.runAs) return;
  if (recursive) {
    const r = spawnSync('chown', ['-R', `${tools.runAs.uid}:${tools.runAs.gid}`, path]);
    if (r.status !== 0) throw new Error(`chown -R ${path} failed: ${String(r.stderr)}`);
  } else {
    chownSync(path, tools.runAs.uid, tools.runAs.gid);
  }
}

/** A temp directory the server's account owns; removed by `cleanup()` or at exit. */
export interface PgTempDir {
  path: string;
  cleanup(): void;
}

const liveDirs = new Set<PgTempDir>();
const liveServers = new Set<PgServer>();
let hooksInstalled = false;

function cleanupEverything(): void {
  for (const s of liveServers) s.stopSync('immediate');
  for (const d of liveDirs) d.cleanup();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupEverything);
  // A test run interrupted by a signal must not leave a postmaster behind.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanupEverything();
      process.kill(process.pid, sig);
    });
  }
}

export function pgTempDir(tools: PgTools, prefix = 'shadowcopy-pg-'): PgTempDir {
  installHooks();
  const path = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(path, 0o700);
  giveToPostgres(tools, path);
  const d: PgTempDir = {
    path,
    cleanup: () => {
      // Stop any server still running from inside this directory before removing it.
      for (const s of liveServers) if (s.dataDir.startsWith(`${path}/`)) s.stopSync('immediate');
      rmSync(path, { recursive: true, force: true });
      liveDirs.delete(d);
    },
  };
  liveDirs.add(d);
  return d;
}

/** Connection settings for node-postgres and for libpq tools. */
export interface PgConnection {
  host: string;
  port: number;
  user: string;
  database: string;
}

export interface PgServerOptions {
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
}

let nextPort = 20000 + (process.pid % 20000);

/** One server on a data directory, listening only on `<socketDir>/.s.PGSQL.<port>`. */
export class PgServer {
  readonly tools: PgTools;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly port: number;
  readonly logFile: string;
  readonly settings: Record<string, string>;
  running = false;

  constructor(tools: PgTools, dataDir: string, workDir: string, opts: PgServerOptions = {}) {
    this.tools = tools;
    this.dataDir = dataDir;
    this.socketDir = join(workDir, `sock-${nextPort}`);
    // The socket lives in a private directory, so the port only names the socket file;
    // distinct ports still keep two servers of one test apart in logs.
    this.port = nextPort++;
    this.logFile = join(workDir, `server-${this.port}.log`);
    this.settings = opts.settings ?? {};
    mkdirSync(this.socketDir, { recursive: true, mode: 0o700 });
    giveToPostgres(tools, this.socketDir);
  }

  get connection(): PgConnection {
    return { host: this.socketDir, port: this.port, user: 'postgres', database: 'postgres' };
  }

  /** A libpq URL (socket directory in the `host` query parameter). */
  get url(): string {
    return `postgresql://postgres@/postgres?host=${encodeURIComponent(this.socketDir)}&port=${this.port}`;
  }

  /** Arguments for libpq tools (psql, pgbench, pg_amcheck). */
  get clientArgs(): string[] {
    return ['-h', this.socketDir, '-p', String(this.port), '-U', 'postgres'];
  }

  start(): void {
    installHooks();
    const opts = [`-k ${this.socketDir}`, `-p ${this.port}`, "-c listen_addresses=''"];
    for (const [k, v] of Object.entries(this.settings)) opts.push(`-c ${k}=${v}`);
    liveServers.add(this);
    // A restored data directory starts in archive recovery; pg_ctl -w returns once it takes
    // (read-only) connections, which may be before recovery ends and the server takes writes.
    const recovering = existsSync(join(this.dataDir, 'recovery.signal'));
    const r = runPgTool(this.tools, 'pg_ctl', ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', '120', '-o', opts.join(' '), 'start']);
    if (r.status !== 0) {
      liveServers.delete(this);
      throw new Error(`pg_ctl start on ${this.dataDir} failed (exit ${r.status}): ${r.stderr.trim()}\n--- server log ---\n${this.log()}`);
    }
    this.running = true;
    if (recovering) this.waitForRecoveryEnd();
  }

  /** Waits (120 s at most) until the server has left recovery and takes writes. */
  private waitForRecoveryEnd(): void {
    const tick = new Int32Array(new SharedArrayBuffer(4));
    for (let waited = 0; this.psql('SELECT pg_is_in_recovery()') !== 'f'; waited += 50) {
      if (waited >= 120_000) throw new Error(`${this.dataDir} is still in recovery after 120 s\n--- server log ---\n${this.log()}`);
      Atomics.wait(tick, 0, 0, 50);
    }
  }

  /** The server's log so far ('' if it wrote none). */
  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Stops the server; `immediate` when cleaning up after a failure. Idempotent. */
  stopSync(mode: 'fast' | 'immediate' = 'fast'): void {
    if (!liveServers.has(this)) return;
    const r = runPgTool(this.tools, 'pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
    if (r.status !== 0 && mode === 'fast') {
      runPgTool(this.tools, 'pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', '-t', '60', 'stop']);
    }
    liveServers.delete(this);
    this.running = false;
  }

  /** psql -c SQL, tuples only, unaligned; throws with psql's message on failure. */
  psql(sql: string, database = 'postgres'): string {
    const r = runPgTool(this.tools, 'psql', [...this.clientArgs, '-d', database, '-X', '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', sql]);
    if (r.status !== 0) throw new Error(`psql failed (exit ${r.status}) on ${JSON.stringify(sql)}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }
}

export interface PgCluster {
  tools: PgTools;
  /** The temp directory holding the data directory, sockets and logs. */
  dir: PgTempDir;
  server: PgServer;
  /** Stops the server and removes the directory. Idempotent. */
  cleanup(): void;
}

/** initdb a fresh cluster in a new temp dir and start it. Call `cleanup()` in a finally/after. */
export function createCluster(opts: PgServerOptions & { initdbArgs?: string[] } = {}): PgCluster {
  const tools = pgTools();
  const dir = pgTempDir(tools);
  try {
    const dataDir = join(dir.path, 'data');
    mustRun(tools, 'initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', ...(opts.initdbArgs ?? [])]);
    const server = new PgServer(tools, dataDir, dir.path, opts);
    server.start();
    return { tools, dir, server, cleanup: () => { server.stopSync(); dir.cleanup(); } };
  } catch (e) {
    dir.cleanup();
    throw e;
  }
}

/** Runs pgbench against `server` (its connection arguments first); resolves its tps and output. */
export function runPgbench(tools: PgTools, server: PgServer, args: string[]): Promise<{ tps: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(join(tools.binDir, 'pgbench'), [...server.clientArgs, ...args, 'postgres'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('exit', (code) => {
      const m = /tps = ([\d.]+)/.exec(out);
      if (code !== 0 || !m) reject(new Error(`pgbench ${args.join(' ')} failed (exit ${code}): ${out.slice(-2000)}`));
      else resolve({ tps: Number(m[1]), out });
    });
  });
}

/**
 * A cluster initialised (not started) in `<mountPoint>/pg/data` of a volume in a root-only temp
 * dir, for tests that snapshot it. The server's account must reach its directories, so the
 * volume's dirs are opened to 0755. Returns the server and its pg root; stop the server and
 * remove `work` when done.
 */
export function serverOnVolume(tools: PgTools, vol: { dir: string; mountPoint: string }, work: PgTempDir): { server: PgServer; pgRoot: string } {
  chmodSync(vol.dir, 0o755);
  chmodSync(vol.mountPoint, 0o755);
  const pgRoot = join(vol.mountPoint, 'pg');
  mkdirSync(pgRoot, { mode: 0o700 });
  giveToPostgres(tools, pgRoot);
  const dataDir = join(pgRoot, 'data');
  const init = runPgTool(tools, 'initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C']);
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  return { server: new PgServer(tools, dataDir, work.path), pgRoot };
}
