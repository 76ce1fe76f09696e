// Test helpers: describe a tree exactly (content hashes, kinds, modes, owners, link targets,
// mtimes), and fill a volume with every kind of entry the providers must carry over.
import { createHash } from 'node:crypto';
import { chownSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export interface EntryDigest {
  kind: string;
  mode: number;
  uid: number;
  gid: number;
  /** sha256 of a file's bytes, a symlink's target, '' for others. */
  content: string;
  /** mtime in whole milliseconds (directories excluded: their mtime is not compared). */
  mtimeMs: number;
}

/** Every entry under `root` (relative paths), skipping the top-level names in `skipTop`. */
export function digestTree(root: string, skipTop: string[] = []): Map<string, EntryDigest> {
  const out = new Map<string, EntryDigest>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (!rel && skipTop.includes(name)) continue;
      const p = join(root, r);
      const st = lstatSync(p);
      const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : 'other';
      const content =
        kind === 'file' ? createHash('sha256').update(readFileSync(p)).digest('hex') : kind === 'symlink' ? readlinkSync(p) : '';
      out.set(r, { kind, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, content, mtimeMs: kind === 'dir' ? 0 : Math.floor(st.mtimeMs) });
      if (kind === 'dir') walk(r);
    }
  };
  walk('');
  return out;
}

/** Differences between two digests, as readable lines (empty when equal). */
export function diffTrees(expected: Map<string, EntryDigest>, actual: Map<string, EntryDigest>): string[] {
  const lines: string[] = [];
  for (const [p, e] of expected) {
    const a = actual.get(p);
    if (!a) lines.push(`missing: ${p}`);
    else if (JSON.stringify(a) !== JSON.stringify(e)) lines.push(`differs: ${p} expected ${JSON.stringify(e)} got ${JSON.stringify(a)}`);
  }
  for (const p of actual.keys()) if (!expected.has(p)) lines.push(`extra: ${p}`);
  return lines;
}

/** Files, nested and empty directories, a symlink, a hard link, odd modes and owners, a fifo. */
export function populate(root: string): void {
  mkdirSync(join(root, 'docs/deep/deeper'), { recursive: true });
  mkdirSync(join(root, 'empty-dir'));
  mkdirSync(join(root, 'db'));
  writeFileSync(join(root, 'hello.txt'), 'hello world\n');
  writeFileSync(join(root, 'docs/report.bin'), Buffer.alloc(300_000, 7));
  writeFileSync(join(root, 'docs/deep/deeper/n.txt'), 'nested');
  writeFileSync(join(root, 'db/data.db'), 'database pages v1');
  writeFileSync(join(root, 'db/data.db-wal'), 'write-ahead log');
  writeFileSync(join(root, 'db/temp.tmp'), 'scratch');
  writeFileSync(join(root, 'secret'), 'mode 600', { mode: 0o600 });
  writeFileSync(join(root, 'setgid-tool'), '#!/bin/sh\n', { mode: 0o2755 });
  for (let i = 0; i < 50; i++) writeFileSync(join(root, 'docs', `f${i}.txt`), `file ${i}\n`.repeat(i + 1));
  symlinkSync('hello.txt', join(root, 'link-to-hello'));
  symlinkSync('/nonexistent/target', join(root, 'dangling'));
  linkSync(join(root, 'hello.txt'), join(root, 'hardlink-to-hello'));
  chownSync(join(root, 'secret'), 1234, 4321);
  spawnSync('mkfifo', [join(root, 'pipe')]);
  utimesSync(join(root, 'docs/report.bin'), new Date('2001-02-03T04:05:06.789Z'), new Date('2001-02-03T04:05:06.789Z'));
}
