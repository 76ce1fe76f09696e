// How the PostgreSQL writer's PostRestore stops and starts the server around the swap:
// systemctl on the writer's --service unit (the default on a systemd host), or pg_ctl on the
// data directory itself (hosts without systemd, containers, servers started by hand).
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { VssError } from '../../vss/index.js';

/** Stops and starts the server around the swap (structurally a src/backup ServiceManager). */
export interface PostgresServiceControl {
  stop(service: string): Promise<void>;
  start(service: string): Promise<void>;
}

/** systemctl stop/start UNIT: the default on a host where systemd runs PostgreSQL. */
export const systemctl: PostgresServiceControl = {
  stop: (unit) => systemctlRun('stop', unit),
  start: (unit) => systemctlRun('start', unit),
};

function systemctlRun(verb: 'stop' | 'start', unit: string): Promise<void> {
  const r = spawnSync('systemctl', [verb, unit], { encoding: 'utf8', timeout: 300_000 });
  if (r.status === 0) return Promise.resolve();
  const why = r.error ? r.error.message : (r.stderr || r.stdout).trim();
  return Promise.reject(new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `systemctl ${verb} ${unit} failed: ${why}; give the writer the right --service (or --pg-ctl), or run the restore steps of docs/writers.md by hand`));
}

/** The server's own arguments from postmaster.opts, without the program and its -D (pg_ctl gives -D). */
export function postmasterOptions(text: string): string[] {
  // One line: the program, then each argument in double quotes (PostgreSQL does not escape them).
  const args = [...text.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-D') i++;
    else if (!args[i]!.startsWith('-D')) out.push(args[i]!);
  }
  return out;
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * pg_ctl on `dataDir`, run as the directory's owner (pg_ctl refuses root). Stop remembers
 * how the running server was started (postmaster.opts, which a backup leaves out) and start
 * passes the same options, so the restored server listens where the old one did.
 */
export function pgCtlServiceControl(pgCtl: string, dataDir: string, opts: { logFile?: string; timeoutS?: number } = {}): PostgresServiceControl {
  const timeout = String(opts.timeoutS ?? 300);
  let serverArgs: string[] | undefined;
  const run = (verb: 'stop' | 'start' | 'status', args: string[]): { status: number | null; out: string } => {
    const owner = statSync(dataDir);
    const r = spawnSync(pgCtl, [...args, verb], {
      encoding: 'utf8',
      cwd: '/',
      ...(process.getuid?.() === 0 ? { uid: owner.uid, gid: owner.gid } : {}),
      timeout: (Number(timeout) + 30) * 1000,
    });
    return { status: r.status, out: r.error ? r.error.message : `${r.stderr}${r.stdout}`.trim() };
  };
  const fail = (verb: string, out: string): VssError =>
    new VssError('VSS_E_WRITERERROR_NONRETRYABLE', `${pgCtl} ${verb} on ${dataDir} failed: ${out}; check the server log, or run the restore steps of docs/writers.md by hand`);
  return {
    stop() {
      try {
        serverArgs = postmasterOptions(readFileSync(join(dataDir, 'postmaster.opts'), 'utf8'));
      } catch {
        /* never started here: start with the configuration files alone */
      }
      // pg_ctl status: 0 running, 3 not running. Stopping a stopped server is not a failure.
      if (run('status', ['-D', dataDir]).status === 3) return Promise.resolve();
      const r = run('stop', ['-D', dataDir, '-m', 'fast', '-w', '-t', timeout]);
      return r.status === 0 ? Promise.resolve() : Promise.reject(fail('stop', r.out));
    },
    start() {
      const args = ['-D', dataDir, '-l', opts.logFile ?? join(dataDir, 'shadowcopy-pg_ctl.log'), '-w', '-t', timeout];
      if (serverArgs?.length) args.push('-o', serverArgs.map(shellQuote).join(' '));
      const r = run('start', args);
      return r.status === 0 ? Promise.resolve() : Promise.reject(fail('start', r.out));
    },
  };
}
