// The change journal: which paths of a volume changed since the prepare scan, so commit can
// look at those instead of every file (see tree.ts and docs/providers.md).
//
// It runs `inotifywait` (Debian: inotify-tools) as a child: one inotify instance with a watch
// on every directory of the volume, started and established *before* the prepare scan, so no
// change between the scan and the commit is lost. We use it rather than Node's fs.watch,
// which cannot report a queue overflow (libuv drops IN_Q_OVERFLOW), or @parcel/watcher, whose
// inotify backend skips IN_Q_OVERFLOW silently and debounces events; inotifywait prints
// Q_OVERFLOW when asked for it, names every event in order, flushes after each one and says
// on stderr when a watch could not be added.
//
// To know every event before the freeze has been read, drain() creates a sentinel file in a
// watched directory we own (the snapshot store) and waits for its CREATE: one inotify
// instance delivers its events in order, so everything the frozen writers did came before.
//
// The journal never guesses. Anything that makes it unsure — overflow, a watch not added, the
// child dying or writing an unexpected error, a mount appearing or vanishing under the
// volume, too many changes — makes it `failed`, and commit rescans the whole tree instead.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { hasTool, isWithin, readMounts } from './system.js';

/** What changed since the journal started, as paths relative to the volume root ('' = root). */
export interface JournalChanges {
  /** Entries created, modified, deleted, renamed or whose metadata changed. */
  paths: Set<string>;
  /** Directories created or moved in: their whole subtree is new and must be walked. */
  trees: Set<string>;
  /** The `unwatched` directories (relative): nothing is known of them, so commit walks them. */
  rescan: Set<string>;
}

export interface JournalOptions {
  /** The volume root (absolute, real path). */
  root: string;
  /** A directory only we write to, watched by the same instance (the snapshot store's top). */
  sentinelDir: string;
  /** A name for this journal's sentinel files, unique among journals sharing `sentinelDir`. */
  sentinelName: string;
  /** Absolute paths not to watch (the store's snapshots directory). */
  exclude: string[];
  /**
   * Absolute directories whose files the snapshot leaves out (a writer's exclusions of a
   * whole tree, such as a database's WAL): not watched, as their files change all the time
   * (a busy PostgreSQL raises some 2,000 events a second in pg_wal alone), and named in every
   * drain's `rescan` so commit still sees the directories in them.
   */
  unwatched?: string[];
  /** Beyond this many changed paths the journal gives up (memory; a full rescan is as cheap). */
  maxPaths?: number;
  /** Aborts the wait for the watches to be established. */
  signal?: AbortSignal;
  /**
   * Runs inotifywait under this command prefix (tests: a user namespace with lowered
   * inotify limits, to make a watch fail for real without touching the host's limits).
   */
  wrap?: string[];
}

/** The events that change what a snapshot holds; Q_OVERFLOW and UNMOUNT must be asked for to be printed. */
const EVENTS = ['modify', 'attrib', 'close_write', 'move', 'create', 'delete', 'q_overflow', 'unmount'];
/** Filesystems on which every local change reaches inotify (no remote writers, no FUSE daemon). */
const LOCAL_FILESYSTEMS = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'tmpfs', 'ramfs', 'f2fs', 'bcachefs', 'jfs', 'reiserfs', 'nilfs2', 'overlay', 'vfat', 'exfat']);
const DRAIN_TIMEOUT_MS = 2_000;

// A journal left open must not outlive the daemon (or a test): stop every one at exit.
const live = new Set<ChangeJournal>();
let exitHook = false;
const DEFAULT_MAX_PATHS = 200_000;

/** Why a journal cannot be trusted on this volume, or undefined when it can be. */
export function journalUnavailable(v: { root: string; mountPoint: string; fsType: string; isBtrfsSubvolume: boolean }): string | undefined {
  if (process.platform !== 'linux') return 'inotify needs Linux';
  if (process.env.SHADOWCOPY_NO_JOURNAL) return 'SHADOWCOPY_NO_JOURNAL is set';
  if (!LOCAL_FILESYSTEMS.has(v.fsType)) return `${v.fsType} may change without inotify seeing it (remote or FUSE)`;
  // A file written through a hard link outside the volume changes with no event inside it.
  // Hard links cannot leave a btrfs subvolume or a whole mounted filesystem.
  if (!v.isBtrfsSubvolume) {
    const m = readMounts().filter((e) => e.mountPoint === v.root).pop();
    if (!m || m.root !== '/') return `${v.root} is part of a filesystem (a bind mount of ${m?.root ?? 'a directory'}): a hard link from outside could change files unseen`;
  }
  if (!hasTool('inotifywait')) return 'inotifywait is not installed (Debian: apt-get install inotify-tools)';
  return undefined;
}

function mountsBelow(root: string): string[] {
  return readMounts()
    .map((m) => m.mountPoint)
    .filter((p) => p !== root && isWithin(p, root))
    .sort();
}

export class ChangeJournal {
  /** Why the journal cannot be trusted; commit then rescans everything. */
  failure: string | undefined;
  private readonly paths = new Set<string>();
  private readonly trees = new Set<string>();
  private child: ChildProcess | undefined;
  private buffer = '';
  private stderr = '';
  private established = false;
  private seq = 0;
  private readonly sentinelPrefix: string;
  private waiter: { path: string; resolve: () => void } | undefined;
  private readonly mountsAtStart: string;
  private readonly maxPaths: number;
  /** The unwatched directories, relative to the root: named in every drain. */
  private readonly rescan: string[];
  private closed = false;

  private constructor(private readonly opts: JournalOptions) {
    this.sentinelPrefix = join(opts.sentinelDir, `.journal-${opts.sentinelName}-`);
    this.mountsAtStart = mountsBelow(opts.root).join('\0');
    this.maxPaths = opts.maxPaths ?? DEFAULT_MAX_PATHS;
    this.rescan = (opts.unwatched ?? []).filter((d) => isWithin(d, opts.root)).map((d) => relative(opts.root, d));
  }

  /** Starts watching and resolves once every directory is watched. Never throws: a journal that could not start has `failure` set. */
  static async start(opts: JournalOptions): Promise<ChangeJournal> {
    const j = new ChangeJournal(opts);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', () => {
        for (const x of live) x.close();
      });
    }
    live.add(j);
    await j.spawnWatcher();
    return j;
  }

  /** The inotifywait process id (tests pause it to make the kernel queue overflow). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private fail(reason: string): void {
    if (!this.failure) this.failure = reason;
    this.paths.clear();
    this.trees.clear();
    this.waiter?.resolve();
    this.close();
  }

  private spawnWatcher(): Promise<void> {
    const { root, sentinelDir, exclude, wrap } = this.opts;
    const watched = isWithin(sentinelDir, root) ? [root] : [root, sentinelDir];
    // Nested mounts are not part of the volume (the walk stays on it): do not watch them.
    const excluded = [...exclude, ...(this.opts.unwatched ?? []), ...mountsBelow(root)];
    const args = ['-m', '-r', ...EVENTS.flatMap((e) => ['-e', e]), '--format', '%e %w%f%0', '--no-newline', ...watched, ...excluded.map((p) => `@${p}`)];
    const [cmd, ...pre] = wrap?.length ? [...wrap, 'inotifywait'] : ['inotifywait'];
    return new Promise<void>((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(cmd!, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        this.fail(`inotifywait could not start: ${String(e)}`);
        resolve();
        return;
      }
      this.child = child;
      const onAbort = (): void => {
        this.fail('aborted');
        resolve();
      };
      this.opts.signal?.addEventListener('abort', onAbort, { once: true });
      const ready = (): void => {
        this.opts.signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => this.onStdout(chunk));
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        this.stderr += chunk;
        let nl: number;
        while ((nl = this.stderr.indexOf('\n')) >= 0) {
          const line = this.stderr.slice(0, nl);
          this.stderr = this.stderr.slice(nl + 1);
          if (line === 'Watches established.') {
            this.established = true;
            ready();
          } else if (line.startsWith('Setting up watches.') || line.startsWith('Watching new directory ')) {
            // progress, not trouble
          } else if (line.startsWith("Couldn't watch new directory ") && line.endsWith(': No such file or directory')) {
            // Gone (or renamed) before its watch was added: it was recorded as a new subtree,
            // which commit walks whole, and a rename shows as MOVED_TO of a new one.
          } else {
            // A watch not added (ENOSPC on max_user_watches), a new directory not watched…
            this.fail(`inotifywait: ${line}`);
            ready();
          }
        }
      });
      child.on('error', (e) => {
        this.fail(`inotifywait failed: ${e.message}`);
        ready();
      });
      child.on('exit', (code, sig) => {
        if (!this.closed) this.fail(`inotifywait exited (${sig ?? code})${this.established ? '' : ' before its watches were established'}`);
        ready();
      });
    });
  }

  private onStdout(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\0')) >= 0) {
      const record = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 1);
      if (!this.failure) this.onEvent(record);
    }
  }

  private onEvent(record: string): void {
    const sp = record.indexOf(' ');
    const events = (sp < 0 ? record : record.slice(0, sp)).split(',');
    const path = sp < 0 ? '' : record.slice(sp + 1);
    if (events.includes('Q_OVERFLOW')) return this.fail('the inotify event queue overflowed (events were lost)');
    if (events.includes('UNMOUNT')) return this.fail(`a watched filesystem was unmounted (${path})`);
    if (this.waiter && path === this.waiter.path && events.includes('CREATE')) {
      this.waiter.resolve();
      return;
    }
    const { root } = this.opts;
    const prefix = root.endsWith('/') ? root : `${root}/`;
    let rel: string;
    if (path === root || path === prefix) rel = '';
    else if (path.startsWith(prefix)) rel = path.slice(prefix.length).replace(/\/+$/, '');
    else return; // the store, when it lies outside the volume
    if (events.includes('ISDIR') && (events.includes('CREATE') || events.includes('MOVED_TO'))) this.trees.add(rel);
    else this.paths.add(rel);
    if (this.paths.size + this.trees.size > this.maxPaths) this.fail(`more than ${this.maxPaths} paths changed`);
  }

  /**
   * Reads every event up to now (call it with writers frozen) and returns what changed since
   * the journal started, or why the journal cannot say.
   */
  async drain(signal?: AbortSignal): Promise<JournalChanges | { failure: string }> {
    if (!this.failure && mountsBelow(this.opts.root).join('\0') !== this.mountsAtStart) this.fail('mounts under the volume changed since prepare');
    if (this.failure) return { failure: this.failure };
    const sentinel = `${this.sentinelPrefix}${++this.seq}`;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      await new Promise<void>((resolve) => {
        this.waiter = { path: sentinel, resolve };
        timer = setTimeout(() => {
          this.fail(`the sentinel event did not arrive within ${DRAIN_TIMEOUT_MS} ms`);
        }, DRAIN_TIMEOUT_MS);
        onAbort = () => this.fail('aborted');
        signal?.addEventListener('abort', onAbort, { once: true });
        try {
          writeFileSync(sentinel, '');
        } catch (e) {
          this.fail(`could not write the journal sentinel ${sentinel}: ${(e as Error).message}`);
        }
      });
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      this.waiter = undefined;
      rmSync(sentinel, { force: true });
    }
    if (this.failure) return { failure: this.failure };
    return { paths: new Set(this.paths), trees: new Set(this.trees), rescan: new Set(this.rescan) };
  }

  /** Stops watching. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    c?.stdout?.destroy();
    c?.stderr?.destroy();
  }
}
