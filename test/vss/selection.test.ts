import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackupComponentsDocument } from '../../src/vss/backup-components.js';
import { BackupSchema, BackupType, ComponentType, FileSpecBackupType, SourceType, UsageType } from '../../src/vss/enums.js';
import { WriterMetadataBuilder, type WriterMetadata } from '../../src/vss/writer-metadata.js';
import {
  BackupSelection,
  ComponentTree,
  validateLogicalPath,
  computeBackupSet,
  fileSetNeedsSnapshot,
  expandVariables,
  filespecMatcher,
  MemoryFileTree,
} from '../../src/vss/selection/index.js';
import { MY_INSTANCE_ID, MY_WRITER_ID, myWriter, myWriterFiles } from '../support/my-writer.js';
import { throwsVss } from '../support/assert.js';

const ref = (logicalPath: string, componentName: string) => ({ writerId: MY_WRITER_ID, logicalPath, componentName });


test('MyWriter: the four kinds of component (spec §13.4)', () => {
  const tree = new ComponentTree(myWriter());
  const kind = (lp: string, n: string) => tree.get(lp, n).kind;
  assert.equal(kind('', 'Executables'), 'required');
  assert.equal(kind('Executables', 'ConfigFiles'), 'required'); // the rule, not the contradictory sentence
  assert.equal(kind('', 'LicenseInfo'), 'optional-top');
  assert.equal(kind('', 'Security'), 'optional-top');
  assert.equal(kind('Security', 'UserInfo'), 'implicit-only');
  assert.equal(kind('writerData\\Set1', 'Jan'), 'implicit-only');
  assert.equal(kind('writerData\\QueryLogs', 'Query'), 'implicit-only');
  assert.equal(kind('writerData', 'Usage'), 'selectable-subcomponent');
  assert.equal(kind('writerData\\Usage', 'Dec'), 'implicit-only');
  // Query's parent is writerData: the intermediate "QueryLogs" element is no component.
  assert.equal(tree.get('writerData\\QueryLogs', 'Query').parent?.fullPath, 'writerData');
  assert.equal(tree.get('writerData\\Usage', 'Dec').selectableAncestor?.fullPath, 'writerData\\Usage');
  assert.deepEqual(tree.required().map((n) => n.fullPath), ['Executables', 'Executables\\ConfigFiles']);
  assert.deepEqual(
    tree.componentSet(tree.get('', 'writerData')).map((n) => n.fullPath),
    ['writerData', 'writerData\\Set1', 'writerData\\Set1\\Jan', 'writerData\\Set1\\Dec', 'writerData\\Set2', 'writerData\\Set2\\Jan', 'writerData\\Set2\\Dec', 'writerData\\QueryLogs\\Query', 'writerData\\Usage', 'writerData\\Usage\\Jan', 'writerData\\Usage\\Dec'],
  );
  // A required component's explicit inclusion covers only itself.
  assert.deepEqual(tree.componentSet(tree.get('', 'Executables')).map((n) => n.fullPath), ['Executables']);
});

test('logical paths match ignoring case by default, exactly when configured', () => {
  const loose = new BackupSelection([myWriter()]);
  loose.addComponent(ref('', 'WRITERDATA'));
  assert.ok(loose.isIncluded(ref('writerdata\\set1', 'jan')));
  const strict = new BackupSelection([myWriter()], { caseSensitive: true });
  throwsVss(() => strict.addComponent(ref('', 'WRITERDATA')), 'VSS_E_OBJECT_NOT_FOUND', /WRITERDATA/);
});

test('explicit inclusion: unknown, duplicate, implicit-only and nested selectable are rejected', () => {
  const s = new BackupSelection([myWriter()]);
  throwsVss(() => s.addComponent(ref('', 'Nope')), 'VSS_E_OBJECT_NOT_FOUND', /"Nope"/);
  throwsVss(() => s.addComponent({ writerId: '99999999-2222-3333-4444-555555555555', componentName: 'X' }), 'VSS_E_OBJECT_NOT_FOUND', /99999999/);
  s.addComponent(ref('', 'Security'));
  throwsVss(() => s.addComponent(ref('', 'Security')), 'VSS_E_OBJECT_ALREADY_EXISTS', /Security/);
  throwsVss(() => s.addComponent(ref('Security', 'UserInfo')), 'E_INVALIDARG', /add that component instead/);
  throwsVss(() => s.addComponent(ref('writerData\\Set1', 'Jan')), 'E_INVALIDARG', /"writerData"/);
  s.addComponent(ref('', 'writerData'));
  throwsVss(() => s.addComponent(ref('writerData', 'Usage')), 'E_INVALIDARG', /implicitly by "writerData"/);
  // The mirror order: the subcomponent first, then its selectable ancestor.
  const t = new BackupSelection([myWriter()]);
  t.addComponent(ref('writerData', 'Usage'));
  throwsVss(() => t.addComponent(ref('', 'writerData')), 'E_INVALIDARG', /"writerData\\Usage"/);
  // Wrong component type is refused.
  throwsVss(() => t.addComponent({ ...ref('', 'Security'), componentType: ComponentType.DATABASE }), 'E_INVALIDARG', /VSS_CT_FILEGROUP/);
});

test('bad logical paths are typed errors naming the value', () => {
  for (const bad of ['a\\\\b', 'a\\', '\\a']) {
    throwsVss(() => validateLogicalPath('the logical path', bad), 'E_INVALIDARG', new RegExp(bad.replace(/\\/g, '\\\\')));
    throwsVss(() => new BackupSelection([myWriter()]).addComponent(ref(bad, 'Jan')), 'E_INVALIDARG');
  }
  // A document that reached us unchecked (the builder refuses it; a hand-edited one may not).
  const wmd = myWriter();
  (wmd.components[1] as { logicalPath: string }).logicalPath = 'x\\\\y';
  throwsVss(() => new ComponentTree(wmd), 'E_INVALIDARG', /x\\\\y/);
  throwsVss(() => new BackupSelection([myWriter()]).addComponent(ref('', 'a\\b')), 'E_INVALIDARG', /backslash/);
});

test('required components: missing ones named before PrepareForBackup; writers without explicit components do not participate', () => {
  const other = otherWriter();
  const s = new BackupSelection([myWriter(), other]);
  s.addComponent(ref('', 'LicenseInfo'));
  assert.deepEqual(s.participating().map((w) => w.metadata.identity.writerName), ['MyWriter']);
  assert.deepEqual(s.missingRequired()[0]!.missing.map((n) => n.fullPath), ['Executables', 'Executables\\ConfigFiles']);
  throwsVss(() => s.result(), 'E_INVALIDARG', /"Executables", "Executables\\ConfigFiles"/);
  assert.deepEqual(s.addRequiredComponents().map((n) => n.fullPath), ['Executables', 'Executables\\ConfigFiles']);
  const r = s.result();
  assert.equal(r.writers.length, 1);
  assert.deepEqual(r.writers[0]!.components.map((c) => c.node.fullPath), ['Executables', 'Executables\\ConfigFiles', 'LicenseInfo']);
  // Nothing selected: nobody participates, nothing is missing.
  assert.deepEqual(new BackupSelection([myWriter()]).result().writers, []);
});

test('applyTo records the explicit components in the BCD in document order', () => {
  const s = new BackupSelection([myWriter()]);
  s.addComponent(ref('', 'writerData'));
  s.addComponent(ref('Executables', 'ConfigFiles'));
  s.addComponent(ref('', 'Executables'));
  const bcd = new BackupComponentsDocument();
  s.applyTo(bcd);
  assert.equal(bcd.writers.length, 1);
  assert.equal(bcd.writers[0]!.instanceId.value, MY_INSTANCE_ID);
  assert.deepEqual(bcd.writers[0]!.components.map((c) => c.fullPath), ['Executables', 'Executables\\ConfigFiles', 'writerData']);
});

const DB_WRITER = 'aaaaaaaa-0000-0000-0000-000000000001';
function otherWriter(dependsOn?: { lp: string; name: string }): WriterMetadata {
  const b = new WriterMetadataBuilder({ writerId: DB_WRITER, instanceId: 'aaaaaaaa-0000-0000-0000-0000000000ff', writerName: 'DbWriter', usage: UsageType.USERDATA, source: SourceType.TRANSACTEDDB });
  b.addComponent({ type: ComponentType.DATABASE, componentName: 'db', selectable: true });
  b.addDatabaseFiles('', 'db', '/db', 'main.db', FileSpecBackupType.ALL_BACKUP_REQUIRED & ~FileSpecBackupType.LOG_BACKUP_REQUIRED | FileSpecBackupType.FULL_SNAPSHOT_REQUIRED);
  b.addDatabaseLogFiles('', 'db', '/db', '*.wal', FileSpecBackupType.LOG_BACKUP_REQUIRED | FileSpecBackupType.FULL_BACKUP_REQUIRED);
  if (dependsOn) b.addComponentDependency('', 'db', MY_WRITER_ID, dependsOn.lp, dependsOn.name);
  b.setBackupSchema(BackupSchema.LOG);
  return b.build();
}

test('cross-writer dependencies: unmet ones reported, the option adds targets (implicit-only ones through their set)', () => {
  const s = new BackupSelection([myWriter(), otherWriter({ lp: 'Security', name: 'Certificates' })]);
  s.addComponent({ writerId: DB_WRITER, componentName: 'db' });
  const unmet = s.unmetDependencies();
  assert.equal(unmet.length, 1);
  assert.equal(unmet[0]!.reason, 'not-selected');
  assert.equal(unmet[0]!.component.fullPath, 'db');
  assert.deepEqual(s.addDependencyTargets(), []);
  assert.ok(s.isIncluded(ref('Security', 'Certificates')));
  assert.ok(s.participating().some((w) => w.metadata.identity.writerName === 'MyWriter'));
  // MyWriter now participates, so its required components are due.
  throwsVss(() => s.result(), 'E_INVALIDARG', /Executables/);
  // A target writer that is not running, a target that does not exist, a remote target.
  assert.equal(new BackupSelection([otherWriter({ lp: '', name: 'x' })]).addDependencyTargets()[0]?.reason ?? 'none', 'none'); // nothing selected → nothing to check
  const a = new BackupSelection([otherWriter({ lp: '', name: 'x' })]);
  a.addComponent({ writerId: DB_WRITER, componentName: 'db' });
  assert.equal(a.addDependencyTargets()[0]!.reason, 'writer-not-found');
  const b = new BackupSelection([myWriter(), otherWriter({ lp: '', name: 'Ghost' })]);
  b.addComponent({ writerId: DB_WRITER, componentName: 'db' });
  assert.equal(b.addDependencyTargets()[0]!.reason, 'component-not-found');
  const c = new BackupSelection([myWriter(), otherWriter({ lp: '\\\\host\\share', name: 'x' })]);
  c.addComponent({ writerId: DB_WRITER, componentName: 'db' });
  assert.equal(c.unmetDependencies()[0]!.reason, 'remote');
});

test('backup set: implicit members, defining components, exclusions, alternate paths, masks, variables', () => {
  const b = new WriterMetadataBuilder({ writerId: MY_WRITER_ID, instanceId: MY_INSTANCE_ID, writerName: 'W', usage: UsageType.USERDATA, source: SourceType.OTHER });
  b.addComponent({ type: ComponentType.FILEGROUP, componentName: 'app', selectable: true });
  b.addComponent({ type: ComponentType.FILEGROUP, logicalPath: 'app', componentName: 'cache', selectable: false });
  b.addFilesToFileGroup('', 'app', '${ROOT}/app/', '*.c?g', true);
  b.addFilesToFileGroup('', 'app', '$ROOT/app', 'keep.txt', false);
  b.addFilesToFileGroup('app', 'cache', '/srv/cache', '*', true, '/srv/cache-copy');
  b.addFilesToFileGroup('app', 'cache', '/srv/logs', '*', false, undefined, FileSpecBackupType.LOG_BACKUP_REQUIRED);
  b.addExcludeFiles('/srv/app/secret', '*', true);
  b.addExcludeFiles('/srv/cache', '*.tmp', false);
  const wmd = b.build();
  const tree = MemoryFileTree.from({
    '/srv/app/a.cfg': { size: 1 },
    '/srv/app/b.cxg': { size: 2 },
    '/srv/app/c.txt': {},
    '/srv/app/keep.txt': {},
    '/srv/app/sub/d.cfg': {},
    '/srv/app/secret/e.cfg': {},
    '/srv/app/empty/': {},
    '/srv/cache/x.tmp': {},
    '/srv/cache-copy/y.bin': { size: 9 },
    '/srv/cache-copy/x.tmp': {},
    '/srv/cache-copy/deep/x.tmp': {},
    '/srv/logs/l1': {},
  });
  const s = new BackupSelection([wmd]);
  s.addComponent({ writerId: MY_WRITER_ID, componentName: 'app' });
  const set = computeBackupSet(s.result(), tree, { env: { ROOT: '/srv' } });
  assert.deepEqual(set.failures, []);
  const rows = set.entries.map((e) => `${e.component.fullPath}|${e.kind}|${e.path}|${e.source}`);
  assert.deepEqual(rows, [
    'app|file|/srv/app/a.cfg|/srv/app/a.cfg',
    'app|file|/srv/app/b.cxg|/srv/app/b.cxg',
    'app|dir|/srv/app/empty|/srv/app/empty',
    'app|file|/srv/app/sub/d.cfg|/srv/app/sub/d.cfg',
    'app|file|/srv/app/keep.txt|/srv/app/keep.txt',
    // read from the alternate path, named and excluded by the default path
    // a directory's own files come before its subdirectories'
    'app\\cache|file|/srv/cache/y.bin|/srv/cache-copy/y.bin',
    'app\\cache|file|/srv/cache/deep/x.tmp|/srv/cache-copy/deep/x.tmp',
  ]);
  assert.ok(set.entries.every((e) => e.definingComponent.fullPath === 'app'));
  assert.equal(set.skipped.length, 1); // the LOG-only set is not copied in a FULL backup
  assert.equal(set.snapshotRequired, true); // the default mask 0xF0F asks for a snapshot
  // LOG backup: only sets whose mask has LOG_BACKUP_REQUIRED (the default mask has every bit).
  const logSet = computeBackupSet(s.result(), tree, { env: { ROOT: '/srv' }, backupType: BackupType.LOG });
  assert.equal(logSet.writers[0]!.backupType, BackupType.FULL); // the writer has no VSS_BS_LOG: full for it
  // Unset variable: an error for the component, not the backup.
  const noEnv = computeBackupSet(s.result(), tree, {});
  assert.ok(noEnv.failures.length >= 1 && noEnv.failures.every((f) => f.error.code === 'E_INVALIDARG' && /\$ROOT|ROOT/.test(f.error.message)));
  assert.ok(noEnv.entries.some((e) => e.component.fullPath === 'app\\cache'));
  // Requester-wide exclusions win too.
  const ex = computeBackupSet(s.result(), tree, { env: { ROOT: '/srv' }, excludes: [{ path: '/srv', filespec: '*.cfg', recursive: true }] });
  assert.ok(!ex.entries.some((e) => e.path.endsWith('.cfg')));
});

test('backup set: masks by backup type, snapshot requirement, missing listed files fail only their component', () => {
  const db = otherWriter();
  const s = new BackupSelection([db, myWriter()]);
  s.addComponent({ writerId: DB_WRITER, componentName: 'db' });
  s.addComponent(ref('', 'LicenseInfo'));
  s.addRequiredComponents();
  const tree = myWriterFiles();
  tree.add('/db/main.db');
  tree.add('/db/1.wal');
  const full = computeBackupSet(s.result(), tree);
  assert.ok(full.entries.some((e) => e.path === '/db/main.db' && e.fileSetKind === 'database'));
  assert.ok(full.entries.some((e) => e.path === '/db/1.wal' && e.fileSetKind === 'log' && !e.snapshotRequired));
  assert.ok(full.snapshotRequired);
  const log = computeBackupSet(s.result(), tree, { backupType: BackupType.LOG });
  assert.equal(log.writers.find((w) => w.writerId === DB_WRITER)!.backupType, BackupType.LOG);
  assert.deepEqual(log.entries.filter((e) => e.writerId === DB_WRITER).map((e) => e.path), ['/db/1.wal']);
  // MyWriter has no VSS_BS_LOG: it is backed up in full.
  assert.ok(log.entries.some((e) => e.writerId === MY_WRITER_ID));
  // main.db missing: the db component fails, MyWriter's files are still in the set.
  const t2 = myWriterFiles();
  t2.add('/db/1.wal');
  const broken = computeBackupSet(s.result(), t2);
  assert.equal(broken.failures.length, 1);
  assert.equal(broken.failures[0]!.definingComponent.fullPath, 'db');
  assert.equal(broken.failures[0]!.error.code, 'VSS_E_OBJECT_NOT_FOUND');
  assert.match(broken.failures[0]!.error.message, /\/db\/main\.db/);
  assert.ok(broken.entries.some((e) => e.writerId === MY_WRITER_ID));
  assert.ok(!broken.entries.some((e) => e.fileSetKind === 'database'));
});

test('MyWriter backup set: writerData implicitly brings every member; Usage alone brings only its subtree', () => {
  const s = new BackupSelection([myWriter()]);
  s.addRequiredComponents(); // nothing participates yet: adds nothing
  s.addComponent(ref('', 'writerData'));
  s.addRequiredComponents();
  const set = computeBackupSet(s.result(), myWriterFiles());
  const byDefining = (d: string) => set.entries.filter((e) => e.definingComponent.fullPath === d).map((e) => e.path);
  assert.equal(byDefining('writerData').length, 11 * 2);
  assert.ok(byDefining('writerData').includes('/data/writerData/QueryLogs/Query/a.dat'));
  assert.deepEqual(byDefining('Executables'), ['/data/Executables/a.dat', '/data/Executables/b.log']);
  const u = new BackupSelection([myWriter()]);
  u.addComponent(ref('writerData', 'Usage'));
  u.addRequiredComponents();
  const us = computeBackupSet(u.result(), myWriterFiles());
  assert.deepEqual([...new Set(us.entries.filter((e) => e.definingComponent.fullPath === 'writerData\\Usage').map((e) => e.component.fullPath))], ['writerData\\Usage', 'writerData\\Usage\\Jan', 'writerData\\Usage\\Dec']);
});

test('file specs and variables', () => {
  const m = filespecMatcher('a?c*.t*');
  assert.ok(m('abc.txt') && m('aXcYYY.t') && !m('ac.txt') && !m('abc.x'));
  assert.ok(filespecMatcher('*.*')('noext'));
  assert.ok(filespecMatcher('x.y')('x.y') && !filespecMatcher('x.y')('xzy'));
  assert.ok(filespecMatcher('[a].(b)')('[a].(b)'));
  assert.equal(expandVariables('p', '$A/${B}x/$', { A: '/a', B: 'b' }), '/a/bx/$');
  throwsVss(() => expandVariables('p', '${A-B}', {}), 'E_INVALIDARG', /A-B/);
  throwsVss(() => expandVariables('p', '/x/$NOPE', {}), 'E_INVALIDARG', /NOPE/);
  // A file spec with a directory separator, in a document the builder did not check.
  const wmd = myWriter();
  (wmd.components[2]!.files[0] as { filespec: string }).filespec = 'sub/*';
  const s = new BackupSelection([wmd]);
  s.addComponent(ref('', 'LicenseInfo'));
  s.addRequiredComponents();
  const set = computeBackupSet(s.result(), myWriterFiles());
  assert.equal(set.failures.length, 1);
  assert.match(set.failures[0]!.error.message, /"sub\/\*".*directory separator/);
  // Relative and dotted paths are refused for the component.
  (wmd.components[2]!.files[0] as { filespec: string; path: string }).filespec = '*';
  (wmd.components[2]!.files[0] as { path: string }).path = 'relative/dir';
  assert.match(computeBackupSet(s.result(), myWriterFiles()).failures[0]!.error.message, /"relative\/dir" is not an absolute/);
});

test('symbolic links are entries, never followed', () => {
  const b = new WriterMetadataBuilder({ writerId: MY_WRITER_ID, writerName: 'W', usage: UsageType.USERDATA, source: SourceType.OTHER });
  b.addComponent({ type: ComponentType.FILEGROUP, componentName: 'c', selectable: false });
  b.addFilesToFileGroup('', 'c', '/d', '*', true);
  const t = MemoryFileTree.from({ '/d/f': {}, '/d/link': { kind: 'symlink' }, '/elsewhere/secret': {} });
  const s = new BackupSelection([b.build()]);
  s.addComponent({ writerId: MY_WRITER_ID, componentName: 'c' });
  assert.deepEqual(computeBackupSet(s.result(), t).entries.map((e) => `${e.kind}:${e.path}`), ['file:/d/f', 'symlink:/d/link']);
});

test('backup set: sets without a snapshot bit are enumerated in the live tree when one is given (spec §15)', () => {
  const s = new BackupSelection([otherWriter()]);
  s.addComponent({ writerId: DB_WRITER, componentName: 'db' });
  // The snapshot has the database and an old log; the live system has only a newer log.
  const snap = MemoryFileTree.from({ '/db/main.db': {}, '/db/0.wal': {} });
  const live = MemoryFileTree.from({ '/db/2.wal': {} });
  const set = computeBackupSet(s.result(), snap, { liveTree: live });
  assert.deepEqual(set.entries.map((e) => `${e.path}:${e.snapshotRequired}`), ['/db/main.db:true', '/db/2.wal:false']);
  assert.ok(set.snapshotRequired);
  // Without a live tree every set comes from the snapshot, as before.
  assert.deepEqual(computeBackupSet(s.result(), snap).entries.map((e) => e.path), ['/db/main.db', '/db/0.wal']);
  // The database set needs a snapshot for FULL; the log set needs none for any type.
  const c = otherWriter().components[0]!;
  assert.equal(fileSetNeedsSnapshot(c.databaseFiles[0]!, BackupType.FULL), true);
  assert.equal(fileSetNeedsSnapshot(c.logFiles[0]!, BackupType.FULL), false);
});
