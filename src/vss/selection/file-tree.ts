// The file tree a backup set is computed against (a snapshot's content), as a small
// synchronous interface so src/vss stays pure. src/backup/fs-tree.ts reads a real snapshot
// directory; MemoryFileTree is a complete in-memory implementation for pure callers and tests.
import { VssError } from '../errors.js';

export type FileKind = 'file' | 'dir' | 'symlink';

export interface FileTreeEntry {
  readonly name: string;
  readonly kind: FileKind;
  readonly size: number;
  /** POSIX mode bits (type bits included or not; only the permission bits are meaningful). */
  readonly mode: number;
  readonly mtimeMs: number;
}

export interface FileTree {
  /**
   * The entries of the directory at `path` (absolute, as the documents spell it after
   * variable expansion), or undefined when there is no directory there. Symbolic links are
   * reported as links, never followed. Other failures throw.
   */
  list(path: string): readonly FileTreeEntry[] | undefined;
}

/** Joins an absolute directory and a relative path with `/`. */
export function joinPath(dir: string, rel: string): string {
  if (rel === '') return dir;
  return dir === '/' ? `/${rel}` : `${dir}/${rel}`;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * A document path as a canonical absolute POSIX path: duplicate and trailing `/` dropped
 * (VSS makes the trailing separator optional). A relative path, or one with `.`/`..`
 * elements, is refused: it could name something outside what the writer meant.
 */
export function normalizePath(what: string, path: string): string {
  if (!path.startsWith('/')) {
    throw new VssError('E_INVALIDARG', `${what} "${path}" is not an absolute POSIX path; paths in writer metadata must start with "/" on this system`);
  }
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '.' || p === '..')) {
    throw new VssError('E_INVALIDARG', `${what} "${path}" contains a "." or ".." element; give the path without them`);
  }
  return `/${parts.join('/')}`;
}

/** Expands `$VAR` and `${VAR}` from `env` (the role %VAR% plays on Windows). An unset variable is an error. */
export function expandVariables(what: string, text: string, env: Readonly<Record<string, string | undefined>>): string {
  return text.replace(/\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare!;
    if (braced !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(braced)) {
      throw new VssError('E_INVALIDARG', `${what} "${text}" has "\${${braced}}", which is not a variable name`);
    }
    const value = env[name];
    if (value === undefined) {
      throw new VssError('E_INVALIDARG', `${what} "${text}" uses $${name}, which is not set; set it in the environment given to the backup`);
    }
    return value;
  });
}

/** Rejects a file spec with a directory separator (spec §10.4): directories belong in the path. */
export function checkFilespec(what: string, filespec: string): string {
  if (typeof filespec !== 'string' || filespec === '') throw new VssError('E_INVALIDARG', `${what} is empty; use "*" for every file`);
  if (/[\\/]/.test(filespec)) throw new VssError('E_INVALIDARG', `${what} "${filespec}" contains a directory separator; put directories in the path`);
  return filespec;
}

export function hasWildcard(filespec: string): boolean {
  return /[*?]/.test(filespec);
}

/**
 * A matcher for a VSS file spec: `*` any run, `?` one character, case-sensitive (POSIX
 * names). `*.*` matches every name, dotted or not, as it does on Windows.
 */
export function filespecMatcher(filespec: string): (name: string) => boolean {
  if (filespec === '*' || filespec === '*.*') return () => true;
  if (!hasWildcard(filespec)) return (name) => name === filespec;
  const re = new RegExp(`^${filespec.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
  return (name) => re.test(name);
}

export interface MemoryFileInput {
  kind?: FileKind;
  size?: number;
  mode?: number;
  mtimeMs?: number;
}

/** A file tree held in memory: a real FileTree, for pure code paths, tests and benchmarks. */
export class MemoryFileTree implements FileTree {
  private readonly dirs = new Map<string, FileTreeEntry[]>([['/', []]]);
  // Names per directory, so adding stays O(1) in directories of any size.
  private readonly names = new Map<string, Set<string>>([['/', new Set()]]);

  /** `paths` maps absolute paths to files; a path ending in `/` is a (possibly empty) directory. */
  static from(paths: Readonly<Record<string, MemoryFileInput>> | Iterable<readonly [string, MemoryFileInput]>): MemoryFileTree {
    const t = new MemoryFileTree();
    const entries = Symbol.iterator in paths ? (paths as Iterable<readonly [string, MemoryFileInput]>) : Object.entries(paths);
    for (const [p, info] of entries) {
      if (p.endsWith('/') && p !== '/') t.addDir(p.slice(0, -1));
      else t.add(p, info);
    }
    return t;
  }

  addDir(path: string): void {
    const p = normalizePath('the directory', path);
    if (this.dirs.has(p)) return;
    this.addDir(parentOf(p));
    if (this.names.get(parentOf(p))!.has(baseName(p))) throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `"${p}" is already a file`);
    this.dirs.get(parentOf(p))!.push({ name: baseName(p), kind: 'dir', size: 0, mode: 0o755, mtimeMs: 0 });
    this.names.get(parentOf(p))!.add(baseName(p));
    this.dirs.set(p, []);
    this.names.set(p, new Set());
  }

  add(path: string, info: MemoryFileInput = {}): void {
    const p = normalizePath('the file', path);
    const kind = info.kind ?? 'file';
    if (kind === 'dir') return this.addDir(p);
    if (this.dirs.has(p)) throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `"${p}" is already a directory`);
    const parent = parentOf(p);
    this.addDir(parent);
    const names = this.names.get(parent)!;
    if (names.has(baseName(p))) throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `"${p}" already exists`);
    names.add(baseName(p));
    this.dirs.get(parent)!.push({ name: baseName(p), kind, size: info.size ?? 0, mode: info.mode ?? 0o644, mtimeMs: info.mtimeMs ?? 0 });
  }

  list(path: string): readonly FileTreeEntry[] | undefined {
    return this.dirs.get(path);
  }

  /** Every file and symbolic link, as absolute paths (for tests). */
  allFiles(): string[] {
    const out: string[] = [];
    for (const [dir, entries] of this.dirs) for (const e of entries) if (e.kind !== 'dir') out.push(joinPath(dir, e.name));
    return out.sort();
  }
}
