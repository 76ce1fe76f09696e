// Starting tools (btrfs, mount, sync, …) through one long-lived /bin/sh rather than from this
// process. Shared by the providers and the backup layer (src/os imports nothing of ours, so
// both may use it without an arrow between them).
//
// Node starts a child with fork(), which copies the page tables of the whole Node process:
// 10–30 ms for a backup's process on the paravirtualised machines we run on, with the event
// loop blocked all that time (a daemon answering writers meanwhile). The shell is a few
// hundred kilobytes, so its forks cost a fraction of that, and this process only writes a
// line to a pipe. A backup starts five or six tools; each was costing more than the tool's
// own work.
//
// Each command runs in a background subshell of its own (several may run at once, as the
// snapshots of a set are made together), with this process's working directory and PATH at
// the time of the call, stdin from /dev/null, and its stdout and stderr in files of a
// private directory; the shell then writes "<id> <status>" on its stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LaunchResult {
  /** The exit status, or null when a signal ended the tool. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The tool is not installed (the shell found no such command). */
  notFound: boolean;
}

/** A shell word holding `s` literally. */
function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

const signalNames = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

interface Waiting {
  resolve: (status: number) => void;
  reject: (e: Error) => void;
}

class Launcher {
  private shell?: ChildProcess;
  private dir?: string;
  private nextId = 0;
  private readonly waiting = new Map<number, Waiting>();
  private buffer = '';

  get pid(): number | undefined {
    return this.shell?.pid;
  }

  get outputDirName(): string | undefined {
    return this.dir;
  }

  private start(): ChildProcess {
    if (this.shell) return this.shell;
    // A session of its own, and deaf to INT, TERM and HUP: the Ctrl-C or the service stop
    // that interrupts a backup must not take away the shell that its clean-up (deleting the
    // snapshots) runs through. Each tool gets the default handling back before it starts.
    const shell = spawn('/bin/sh', [], { stdio: ['pipe', 'pipe', 'ignore'], detached: true });
    shell.stdin!.write("trap '' INT TERM HUP\n");
    this.shell = shell;
    if (this.dir) this.removeOnShellExit(this.dir);
    shell.stdout!.setEncoding('utf8');
    shell.stdout!.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const [id, status] = this.buffer.slice(0, nl).split(' ').map(Number);
        this.buffer = this.buffer.slice(nl + 1);
        const w = this.waiting.get(id!);
        this.waiting.delete(id!);
        w?.resolve(status!);
        this.unrefIfIdle();
      }
    });
    const gone = (why: string): void => {
      if (this.shell !== shell) return;
      this.shell = undefined;
      this.buffer = '';
      for (const w of this.waiting.values()) w.reject(new Error(why));
      this.waiting.clear();
    };
    shell.on('error', (e) => gone(`the launcher shell failed: ${e.message}`));
    // 'close', not 'exit': every status the shell wrote has been read by then.
    shell.on('close', (code, sig) => gone(`the launcher shell exited (${sig ?? code})`));
    // A write to a shell that has just died fails here; its 'close' fails the commands.
    shell.stdin!.on('error', () => undefined);
    this.unrefIfIdle();
    return shell;
  }

  /** An idle shell does not keep the process alive; it ends when its stdin closes with us. */
  private unrefIfIdle(): void {
    const s = this.shell;
    if (!s) return;
    const streams = [s, s.stdout, s.stdin] as unknown as { ref(): void; unref(): void }[];
    for (const x of streams) {
      if (this.waiting.size) x.ref();
      else x.unref();
    }
  }

  /** The private directory for the tools' output, made again if something removed it. */
  private outputDir(): string {
    if (this.dir && existsSync(this.dir)) return this.dir;
    const dir = mkdtempSync(join(tmpdir(), 'shadowcopy-launcher-'));
    this.dir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    if (this.shell) this.removeOnShellExit(dir);
    return dir;
  }

  /**
   * The shell removes the directory as it exits, which it does at the end of its stdin: when
   * this process ends, even killed with SIGKILL, when no 'exit' handler of ours runs.
   */
  private removeOnShellExit(dir: string): void {
    this.shell!.stdin!.write(`trap ${quote(`rm -rf -- ${quote(dir)}`)} EXIT\n`);
  }

  prestart(): void {
    this.start();
  }

  async run(cmd: string, args: readonly string[]): Promise<LaunchResult> {
    const dir = this.outputDir();
    const shell = this.start();
    const id = this.nextId++;
    const out = join(dir, `${id}.out`);
    const err = join(dir, `${id}.err`);
    const words = [cmd, ...args].map(quote).join(' ');
    // A working directory deleted since cannot be entered (process.cwd() throws): the shell's is kept.
    let cwd: string | undefined;
    try {
      cwd = process.cwd();
    } catch {
      cwd = undefined;
    }
    const cd = cwd === undefined ? '' : `cd ${quote(cwd)} 2>/dev/null; `;
    const line = `{ (trap - INT TERM HUP; ${cd}export PATH=${quote(process.env.PATH ?? '')} && exec ${words}) </dev/null >${quote(out)} 2>${quote(err)}; echo "${id} $?"; } &\n`;
    const status = await new Promise<number>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.unrefIfIdle();
      shell.stdin!.write(line);
    });
    const read = (p: string): string | undefined => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return undefined;
      }
    };
    const stdout = read(out) ?? '';
    // No file: the shell could not even open it (a full or vanished temporary directory).
    const stderr = read(err) ?? `(its output could not be kept in ${dir}: is the temporary directory full?)`;
    rmSync(out, { force: true });
    rmSync(err, { force: true });
    // The shell reports a tool ended by signal N as 128 + N.
    const signal = status > 128 ? (signalNames.get(status - 128) ?? null) : null;
    return { code: signal ? null : status, signal, stdout, stderr, notFound: status === 127 && /not found/.test(stderr) };
  }
}

const launcher = new Launcher();

/** The launcher shell's process id, once started (for tests). */
export function launcherShellPid(): number | undefined {
  return launcher.pid;
}

/** The directory the tools' output goes to, once made (for tests). */
export function launcherOutputDir(): string | undefined {
  return launcher.outputDirName;
}

/**
 * Starts the shell now, if it is not running: forking is cheapest while this process is
 * small, as at the start of a command, before it has read a large manifest.
 */
export function startLauncher(): void {
  launcher.prestart();
}

/** Runs `cmd` with `args` (no shell interpretation) and collects what it printed. */
export function launch(cmd: string, args: readonly string[]): Promise<LaunchResult> {
  return launcher.run(cmd, args);
}
