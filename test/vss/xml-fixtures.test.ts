// The genuine Windows documents: every one parses; parse → write → parse gives an equal
// model; the one-line documents Windows' API wrote come back byte for byte.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, test } from 'node:test';
import {
  BackupType,
  ComponentType,
  parseBackupComponents,
  parseVssDocument,
  parseWriterMetadata,
  RestoreMethod,
  SourceType,
  UsageType,
  WriterRestore,
  writeBackupComponents,
  writeWriterMetadata,
} from '../../src/vss/index.js';
import { fixture, fixtureFiles, NO_FIXTURES } from '../support/fixtures.js';

const files = fixtureFiles();
const model = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
// Written by hand or by a tool (tab-indented express-writer manifests, a re-indented copy),
// or holding raw CR LF inside attribute values, which XML reads as spaces: equal models only.
const NOT_BYTE_EXACT = ['WM0-task-scheduler', 'WM1-vss-metadata-store', 'WM2-performance-counters', 'WM4-asr-writer', 'withsql-BCDocument-reindented'];

describe('genuine Windows documents', { skip: files.length === 0 ? NO_FIXTURES : false }, () => {
  test('there are 14 of them', () => assert.equal(files.length, 14));

  for (const file of files) {
    const name = basename(file);
    test(`${name}: parses, and parse → write → parse is the same model`, () => {
      const bytes = readFileSync(file);
      const doc = parseVssDocument(bytes, name);
      const written = doc.kind === 'writerMetadata' ? writeWriterMetadata(doc.document) : writeBackupComponents(doc.document);
      assert.ok(!written.includes('\n') && !written.startsWith('<?xml'), 'one line, no declaration');
      const again = parseVssDocument(written);
      assert.equal(again.kind, doc.kind);
      assert.deepEqual(model(again.document), model(doc.document));
      if (!NOT_BYTE_EXACT.some((n) => name.includes(n))) {
        assert.equal(written, bytes.toString('utf8'), 'reproduced byte for byte');
      }
    });
  }

  test('the one-line no-SQL BCD is reproduced byte for byte', () => {
    const bytes = readFileSync(fixture('nosql-BCDocument')!);
    assert.equal(writeBackupComponents(parseBackupComponents(bytes)), bytes.toString('utf8'));
  });

  test('the no-SQL BCD reads as Windows wrote it', () => {
    const doc = parseBackupComponents(readFileSync(fixture('nosql-BCDocument')!));
    assert.equal(doc.backupType, BackupType.FULL);
    assert.ok(doc.bootableSystemStateBackup && doc.selectComponents && !doc.partialFileSupport);
    assert.equal(doc.snapshotSetId?.toString(), 'e109943b-232e-4b52-8dc4-62b7de94761b');
    assert.equal(doc.getWriterComponentsCount(), 7);
    const system = doc.writers.find((w) => w.writerId.equals('E8132975-6F93-4464-A53E-1050253AE220'))!;
    assert.deepEqual(system.components.map((c) => c.componentName), ['System Files', 'Win32 Services Files']);
    assert.equal(system.getComponent(0).getComponentType(), ComponentType.FILEGROUP);
  });

  test('the SQL writer in the with-SQL BCD: namespace quirks, instance name, stamp, metadata', () => {
    const doc = parseBackupComponents(readFileSync(fixture('withsql-BCDocument')!));
    const sql = doc.writers.find((w) => w.writerId.equals('a65faa63-5ea8-4ebc-9dbd-a0c4db26912a'))!;
    assert.equal(sql.instanceName, 'Microsoft SQL Server 2017:SQLWriter');
    assert.equal(sql.backupSchema, 881);
    const c = sql.getComponent(0);
    assert.equal(c.getLogicalPath(), 'WIN2012-SQL17-2');
    assert.equal(c.getBackupStamp(), 'CAAAAMQv3+t4udUB');
    assert.ok(c.getBackupMetadata().startsWith('BCAAAFRBUEUA'), 'BACKUP_METADATA with xmlns="" is found by local name');
  });

  test('WMD details: mixed-case GUIDs kept, absent restore method, restore method after the locations', () => {
    const store = parseWriterMetadata(readFileSync(fixture('WM1-vss-metadata-store')!));
    assert.equal(store.identity.writerId.spelling, '75DFB225-E2E4-4d39-9AC9-FFAFF65DDF06');
    assert.ok(writeWriterMetadata(store).includes('writerId="75DFB225-E2E4-4d39-9AC9-FFAFF65DDF06"'));
    const bits = parseWriterMetadata(readFileSync(fixture('WM7-bits')!));
    assert.equal(bits.restoreMethod, undefined);
    assert.equal(bits.getRestoreMethod().method, RestoreMethod.UNDEFINED);
    const wmi = parseWriterMetadata(readFileSync(fixture('WM8-wmi')!));
    assert.equal(wmi.getRestoreMethod().method, RestoreMethod.RESTORE_AT_REBOOT);
    assert.ok(wmi.layout?.restoreMethodAfterLocations);
    const sql = parseWriterMetadata(readFileSync(fixture('WM5-sqlserverwriter')!));
    assert.equal(sql.backupSchema, 881);
    assert.equal(sql.identity.source, SourceType.TRANSACTEDDB);
    assert.equal(sql.getRestoreMethod().writerRestore, WriterRestore.ALWAYS);
    const excl = parseWriterMetadata(readFileSync(fixture('withsql-WM4-sqlserverwriter-excludefiles')!));
    assert.ok(excl.excludeFiles.length > 0);
    const system = parseWriterMetadata(readFileSync(fixture('WM3-system-writer')!));
    assert.equal(system.identity.usage, UsageType.BOOTABLESYSTEMSTATE);
    assert.ok(system.components.reduce((n, c) => n + c.files.length, 0) > 18000);
    const perf = parseWriterMetadata(readFileSync(fixture('WM2-performance-counters')!));
    assert.ok(perf.components[0]!.files.some((f) => f.filespec === 'Perfc???.dat'));
    const asr = parseWriterMetadata(readFileSync(fixture('WM4-asr-writer')!));
    assert.ok(asr.findComponent('ASR', 'ASR'), 'a logical path equal to the component name');
    assert.ok(!asr.findComponent('', 'Volumes'), 'Volumes is only a logical path');
    assert.match(asr.findComponent('BCD', 'BCD')!.caption, /boot BCD store/);
  });

  test('UTF-16 (with and without BOM) and UTF-8 with BOM read the same', () => {
    const text = readFileSync(fixture('WM9-registry')!, 'utf8');
    const expected = model(parseWriterMetadata(text));
    const le = Buffer.from(text, 'utf16le');
    const be = Buffer.from(le).swap16();
    for (const bytes of [
      Buffer.concat([Buffer.from([0xff, 0xfe]), le]),
      le,
      Buffer.concat([Buffer.from([0xfe, 0xff]), be]),
      be,
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]),
      '\ufeff' + text,
    ]) {
      assert.deepEqual(model(parseWriterMetadata(bytes)), expected);
    }
  });
});
