// The tree engine behind the reflink and copy providers, on a temporary directory, and the
// pure snapshot rules of src/vss/snapshot.ts.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnapshotContext, VolumeSnapshotAttributes } from '../../src/vss/enums.js';
import { VssError } from '../../src/vss/errors.js';
import { attributesOfContext, isAutoRelease, isPersistent, PROVIDER_IDS, providerNameOf, snapshotInContext } from '../../src/vss/snapshot.js';
import { filespecMatcher } from '../../src/vss/selection/file-tree.js';
import { excludedFileMatcher, removeExcludedFiles, RACY_MARGIN_NS, syncTree } from '../../src/providers/tree.js';
import { ChangeJournal } from '../../src/providers/journal.js';
import { hasTool } from '../../src/providers/system.js';
import { digestTree, diffTrees } from './helpers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const base = mkdtempSync(join(tmpdir(), 'shadowcopy-tree-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
function fresh(): { src: string; dst: string } {
  const src = join(base, `src${++n}`);
  mkdirSync(src);
  return { src, dst: join(base, `dst${n}`) };
}

describe('syncTree', () => {
  test('a full copy, then an update that copies only what changed and catches every kind of change', async () => {
    const { src, dst } = fresh();
    mkdirSync(join(src, 'a/b'), { recursive: true });
    mkdirSync(join(src, 'gone/deep'), { recursive: true });
    mkdirSync(join(src, 'becomes-file'));
    for (let i = 0; i < 100; i++) writeFileSync(join(src, 'a', `f${i}`), `content ${i}`);
    writeFileSync(join(src, 'same-size'), 'AAAA');
    writeFileSync(join(src, 'renamed-over'), 'old');
    writeFileSync(join(src, 'gone/deep/x'), 'x');
    writeFileSync(join(src, 'becomes-dir'), 'file');
    symlinkSync('a/f1', join(src, 'link'));
    await sleep(Number(RACY_MARGIN_NS / 1_000_000n) + 50); // nothing racy at prepare
    const first = await syncTree(src, dst, undefined, { clone: false });
    assert.deepEqual(diffTrees(digestTree(src), digestTree(dst)), []);
    assert.equal(first.stats.copied, 105);

    // Changes a size/mtime comparison alone would miss: same size, mtime put back.
    const st = statSync(join(src, 'same-size'));
    writeFileSync(join(src, 'same-size'), 'BBBB');
    utimesSync(join(src, 'same-size'), st.atime, st.mtime);
    writeFileSync(join(src, 'tmp'), 'new');
    renameSync(join(src, 'tmp'), join(src, 'renamed-over'));
    rmSync(join(src, 'gone'), { recursive: true });
    rmSync(join(src, 'becomes-file'), { recursive: true });
    writeFileSync(join(src, 'becomes-file'), 'now a file');
    rmSync(join(src, 'becomes-dir'));
    mkdirSync(join(src, 'becomes-dir'));
    writeFileSync(join(src, 'becomes-dir/inside'), 'inside');
    rmSync(join(src, 'link'));
    symlinkSync('a/f2', join(src, 'link'));
    linkSync(join(src, 'a/f3'), join(src, 'a/hard'));
    const second = await syncTree(src, dst, first.manifest, { clone: false });
    assert.deepEqual(diffTrees(digestTree(src), digestTree(dst)), []);
    // Only the changed entries were copied (f3 and its new link count as one inode changed).
    assert.ok(second.stats.copied <= 8, `copied ${second.stats.copied}`);
    assert.equal(statSync(join(dst, 'a/hard')).ino, statSync(join(dst, 'a/f3')).ino, 'hard link kept');
  });

  test('a file changed within the racy margin of prepare is copied again even if nothing differs', async () => {
    const { src, dst } = fresh();
    writeFileSync(join(src, 'old'), 'old');
    await sleep(Number(RACY_MARGIN_NS / 1_000_000n) + 50);
    writeFileSync(join(src, 'fresh'), 'fresh');
    const first = await syncTree(src, dst, undefined, { clone: false });
    const second = await syncTree(src, dst, first.manifest, { clone: false });
    assert.equal(second.stats.copied, 1, 'only the racy file');
    assert.equal(second.stats.bytesCopied, 5n);
  });

  test('an aborted signal stops the work with its reason', async () => {
    const { src, dst } = fresh();
    for (let i = 0; i < 2000; i++) writeFileSync(join(src, `f${i}`), 'x');
    const c = new AbortController();
    c.abort(new VssError('VSS_E_HOLD_WRITES_TIMEOUT', 'window over'));
    await assert.rejects(syncTree(src, dst, undefined, { clone: false, signal: c.signal }), (e) => VssError.is(e, 'VSS_E_HOLD_WRITES_TIMEOUT'));
  });

  test('a file deleted between the scan and its copy is left out, at prepare and at commit', async () => {
    const { src, dst } = fresh();
    writeFileSync(join(src, 'kept'), 'kept');
    writeFileSync(join(src, 'temp'), 'a server temporary file');
    writeFileSync(join(src, 'later'), 'copied at prepare');
    // excludeFile is asked after the entry's lstat: deleting there is a deletion after the scan saw it.
    const deleteOnScan = (victim: string) => (rel: string) => {
      if (rel === victim) rmSync(join(src, rel));
      return false;
    };
    const first = await syncTree(src, dst, undefined, { clone: false, excludeFile: deleteOnScan('temp') });
    assert.equal(first.stats.vanished, 1);
    assert.deepEqual(diffTrees(digestTree(src), digestTree(dst)), []);
    assert.equal(first.manifest.entries.has('temp'), false, 'the next sync must not think the copy holds it');
    // At commit the stale copy from prepare must go too, not stay as it was.
    writeFileSync(join(src, 'later'), 'changed, then deleted before its copy');
    const second = await syncTree(src, dst, first.manifest, { clone: false, excludeFile: deleteOnScan('later') });
    assert.equal(second.stats.vanished, 1);
    assert.deepEqual(diffTrees(digestTree(src), digestTree(dst)), []);
  });

  test('the skipped store directory is not copied', async () => {
    const { src, dst } = fresh();
    mkdirSync(join(src, '.shadowcopy/snapshots'), { recursive: true });
    writeFileSync(join(src, '.shadowcopy/snapshots/x'), 'x');
    writeFileSync(join(src, 'y'), 'y');
    await syncTree(src, dst, undefined, { clone: false, skip: (rel) => rel === '.shadowcopy' });
    assert.deepEqual([...digestTree(dst).keys()], ['y']);
  });
});

describe('exclusions from the snapshot', () => {
  test("VSS wildcards (the selection module's matcher, which removeExcludedFiles uses)", () => {
    assert.ok(filespecMatcher('*.tmp')('a.tmp'));
    assert.ok(!filespecMatcher('*.tmp')('a.tmp.bak'));
    assert.ok(filespecMatcher('data?.db')('data1.db'));
    assert.ok(!filespecMatcher('data?.db')('data.db'), '? is exactly one character');
    assert.ok(filespecMatcher('*.*')('noext'), '*.* matches every name, as on Windows');
    assert.ok(filespecMatcher('a+b(1).log')('a+b(1).log'));
    assert.ok(filespecMatcher('*')('.hidden'));
  });

  test('removes matching files, recursively only when asked, and ignores other volumes', () => {
    const { src } = fresh();
    mkdirSync(join(src, 'db/sub'), { recursive: true });
    for (const f of ['db/a.tmp', 'db/keep.db', 'db/sub/b.tmp']) writeFileSync(join(src, f), f);
    const vol = '/volume/root';
    const removed = removeExcludedFiles(src, vol, [
      { path: '/volume/root/db', filespec: '*.tmp', recursive: false },
      { path: '/other/db', filespec: '*', recursive: true },
    ]);
    assert.equal(removed, 1);
    assert.deepEqual([...digestTree(src).keys()].sort(), ['db', 'db/keep.db', 'db/sub', 'db/sub/b.tmp']);
  });
});

describe('files excluded from the snapshot are never copied', () => {
  test('excludedFileMatcher: the spec directory, below it only when recursive, names by file spec, other volumes ignored', () => {
    const m = excludedFileMatcher('/vol', [
      { path: '/vol/db', filespec: '*.db-shm*', recursive: false },
      { path: '/vol/cache/', filespec: '*', recursive: true },
      { path: '/elsewhere', filespec: '*', recursive: true },
    ])!;
    assert.ok(m('db/app.db-shm'));
    assert.ok(!m('db/app.db'));
    assert.ok(!m('db/sub/app.db-shm'), 'not recursive');
    assert.ok(m('cache/a') && m('cache/x/y/z'));
    assert.ok(!m('cachefile') && !m('other/a'));
    assert.ok(m === undefined || !m('elsewhere/a'));
    assert.equal(excludedFileMatcher('/vol', [{ path: '/elsewhere', filespec: '*', recursive: true }]), undefined);
    const all = excludedFileMatcher('/vol', [{ path: '/vol', filespec: '*.tmp', recursive: true }])!;
    assert.ok(all('a.tmp') && all('d/e/b.tmp') && !all('a.tmpx'));
  });

  // When inotifywait is missing only the full-rescan half runs (the journal tests say so).
  test('syncTree leaves them out at prepare and at commit, through a full rescan and through the journal', async () => {
    const journalSkip = process.platform !== 'linux' || !hasTool('inotifywait');
    for (const useJournal of journalSkip ? [false] : [false, true]) {
      const dir = join(base, `excl${++n}`);
      const src = join(dir, 'vol');
      const dst = join(dir, 'store/snapshots/snap');
      mkdirSync(src, { recursive: true });
      mkdirSync(join(dir, 'store/snapshots'), { recursive: true });
      const jopts = { root: src, sentinelDir: join(dir, 'store'), sentinelName: 'excl', exclude: [join(dir, 'store/snapshots')] };
      mkdirSync(join(src, 'db/sub'), { recursive: true });
      for (const f of ['db/app.db', 'db/app.db-shm', 'db/sub/x.db-shm']) writeFileSync(join(src, f), f);
      const excludeFile = excludedFileMatcher(src, [{ path: join(src, 'db'), filespec: '*-shm', recursive: false }])!;
      const journal = useJournal ? await ChangeJournal.start(jopts) : undefined;
      try {
        const first = await syncTree(src, dst, undefined, { clone: false, excludeFile });
        assert.deepEqual([...digestTree(dst).keys()].sort(), ['db', 'db/app.db', 'db/sub', 'db/sub/x.db-shm']);
        writeFileSync(join(src, 'db/app.db-shm'), 'changed');
        writeFileSync(join(src, 'db/new.db-shm'), 'new');
        writeFileSync(join(src, 'db/app.db'), 'changed');
        const second = await syncTree(src, dst, first.manifest, { clone: false, excludeFile, ...(journal ? { journal } : {}) });
        assert.equal(second.stats.mode, useJournal ? 'journal' : 'full');
        assert.deepEqual([...digestTree(dst).keys()].sort(), ['db', 'db/app.db', 'db/sub', 'db/sub/x.db-shm']);
        assert.equal(readFileSync(join(dst, 'db/app.db'), 'utf8'), 'changed');
      } finally {
        journal?.close();
      }
    }
  });
});

describe('snapshot contexts (src/vss/snapshot.ts)', () => {
  test('context and modifiers become attributes; VSS_CTX_ALL and unknown bits are refused', () => {
    assert.deepEqual(attributesOfContext(SnapshotContext.BACKUP), { context: 0, attributes: 0 });
    const { context, attributes } = attributesOfContext(SnapshotContext.APP_ROLLBACK | VolumeSnapshotAttributes.TRANSPORTABLE);
    assert.equal(context, SnapshotContext.APP_ROLLBACK);
    assert.equal(attributes, 0x29);
    assert.throws(() => attributesOfContext(SnapshotContext.ALL), (e) => VssError.is(e, 'VSS_E_UNSUPPORTED_CONTEXT'));
    assert.throws(() => attributesOfContext(0x4), (e) => VssError.is(e, 'VSS_E_UNSUPPORTED_CONTEXT'));
    assert.throws(() => attributesOfContext(VolumeSnapshotAttributes.DIFFERENTIAL | VolumeSnapshotAttributes.PLEX), (e) => VssError.is(e, 'VSS_E_UNSUPPORTED_CONTEXT'));
  });

  test('auto-release, persistence and query visibility follow the context bits', () => {
    assert.ok(isAutoRelease(SnapshotContext.BACKUP));
    assert.ok(isAutoRelease(SnapshotContext.FILE_SHARE_BACKUP));
    assert.ok(!isAutoRelease(SnapshotContext.CLIENT_ACCESSIBLE));
    assert.ok(isPersistent(SnapshotContext.NAS_ROLLBACK));
    assert.ok(!isPersistent(SnapshotContext.BACKUP));
    const exposedTransportableBackup = VolumeSnapshotAttributes.TRANSPORTABLE | VolumeSnapshotAttributes.EXPOSED_LOCALLY;
    assert.ok(snapshotInContext(exposedTransportableBackup, SnapshotContext.BACKUP));
    assert.ok(!snapshotInContext(SnapshotContext.FILE_SHARE_BACKUP, SnapshotContext.BACKUP));
    assert.ok(snapshotInContext(SnapshotContext.FILE_SHARE_BACKUP, SnapshotContext.ALL));
    assert.equal(providerNameOf(PROVIDER_IDS.reflink), 'reflink');
    assert.equal(providerNameOf('00000000-0000-0000-0000-000000000001'), undefined);
  });
});
