import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BackupComponentsDocument,
  BackupType,
  Component,
  ComponentType,
  FileRestoreStatus,
  Guid,
  HRESULT,
  parseBackupComponents,
  RestoreTarget,
  RestoreType,
  RollForwardType,
  VssError,
  writeBackupComponents,
} from '../../src/vss/index.js';

const W = Guid.parse('a65faa63-5ea8-4ebc-9dbd-a0c4db26912a');
const I = Guid.parse('{DD8D6255-B3BB-4EC1-8249-73CD75C0EE21}');
const model = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

describe('BackupComponentsDocument', () => {
  test('document-level state and writers', () => {
    const doc = new BackupComponentsDocument();
    doc.setBackupState({ selectComponents: true, bootableSystemStateBackup: false, backupType: BackupType.INCREMENTAL, partialFileSupport: true });
    doc.snapshotSetId = Guid.random();
    const w = doc.writer(W, I, 'SQL:1', 881);
    assert.equal(doc.writer(W, I), w, 'one entry per writer instance');
    w.addComponent(ComponentType.DATABASE, 'srv\\inst', 'db');
    assert.equal(doc.getWriterComponentsCount(), 1);
    assert.equal(doc.getWriterComponents(0).getComponentCount(), 1);
    assert.deepEqual(doc.getWriterComponents(0).getWriterInfo(), { instanceId: I, writerId: W });
    assert.equal(doc.getComponent(W, undefined, 'srv\\inst', 'db').fullPath, 'srv\\inst\\db');
    assert.throws(() => w.addComponent(ComponentType.DATABASE, 'srv\\inst', 'db'), (e) => VssError.is(e, 'VSS_E_OBJECT_ALREADY_EXISTS'));
    assert.throws(() => doc.getComponent(W, I, '', 'nope'), (e) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
    assert.throws(() => doc.getWriterComponents(3), (e) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
    assert.throws(() => doc.setBackupState({ selectComponents: true, bootableSystemStateBackup: false, backupType: BackupType.UNDEFINED, partialFileSupport: false }), (e) => VssError.is(e, 'E_INVALIDARG'));
    const xml = writeBackupComponents(doc);
    assert.match(xml, /backupType="incremental"/);
    assert.match(xml, /instanceId="dd8d6255-b3bb-4ec1-8249-73cd75c0ee21"/, 'GUIDs lowercase in a BCD');
    assert.match(xml, /componentType="database"/);
    assert.deepEqual(model(parseBackupComponents(xml)), model(doc));
  });

  test('defaults as IVssComponent documents them', () => {
    const c = new Component(ComponentType.FILEGROUP, '', 'c');
    assert.equal(c.getRestoreTarget(), RestoreTarget.ORIGINAL);
    assert.equal(c.getAdditionalRestores(), false);
    assert.equal(c.getFileRestoreStatus(), FileRestoreStatus.UNDEFINED);
    assert.deepEqual(c.getFailure(), { hr: 0, hrApplication: 0, applicationMessage: '' });
    assert.throws(() => new Component(ComponentType.UNDEFINED, '', 'c'), (e) => VssError.is(e, 'E_INVALIDARG'));
    assert.throws(() => c.setRestoreTarget(RestoreTarget.UNDEFINED), (e) => VssError.is(e, 'E_INVALIDARG'));
    assert.throws(() => c.getPartialFile(0), (e) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
  });

  test('every per-component property survives the XML, with a value outside 32 bits in a FILETIME', () => {
    const doc = new BackupComponentsDocument();
    doc.setRestoreState(RestoreType.BY_COPY);
    const c = doc.writer(W, I).addComponent(ComponentType.FILEGROUP, 'a\\b', 'c & "d" <e>');
    c.setBackupSucceeded(true);
    c.setBackupOptions('opt=1');
    c.setBackupMetadata('meta\r\nwith newline\tand tab');
    c.setBackupStamp('CAAAAMQv3+t4udUB');
    c.setPreviousBackupStamp('prev');
    c.addPartialFile('/data', 'big.db', '0:4096,0x1000:512', 'pm');
    c.setRangesFilePath(0, '/restore/ranges.bin');
    c.addDifferencedFilesByLastModifyTime('/data', '*.db', true, 132214877340000000n);
    c.addDifferencedFilesByLastModifyLSN('/logs', '*.wal', false, 'lsn-42');
    c.setSelectedForRestore(true, Guid.parse('12345678-1234-1234-1234-123456789abc'));
    c.addRestoreSubcomponent('a\\b\\c & "d" <e>', 'sub', true);
    assert.throws(() => c.addRestoreSubcomponent('a\\b\\c & "d" <e>', 'sub'), (e) => VssError.is(e, 'VSS_E_OBJECT_ALREADY_EXISTS'));
    c.setRestoreOptions('"Roll Forward"="None"');
    c.setAdditionalRestores(true);
    c.addNewTarget('/data', '*.db', false, '/new');
    c.addAlternativeLocationMapping('/data', '*.db', false, '/alt');
    c.setRestoreTarget(RestoreTarget.DIRECTED);
    c.addDirectedTarget('/data', 'big.db', '0:100', '/dst', 'big2.db', '100:100');
    c.setRestoreMetadata('rm');
    c.setPreRestoreFailureMsg('pre failed');
    c.setPostRestoreFailureMsg('post failed');
    c.setPrepareForBackupFailureMsg('pfb failed');
    c.setPostSnapshotFailureMsg('ps failed');
    c.setFileRestoreStatus(FileRestoreStatus.FAILED);
    c.setAuthoritativeRestore(true);
    c.setRollForward(RollForwardType.PARTIAL, 'point-7');
    c.setRestoreName('renamed');
    c.setFailure(HRESULT.VSS_E_WRITERERROR_RETRYABLE, 0x80004005, 'disk busy');

    const xml = writeBackupComponents(doc);
    assert.ok(!xml.includes('\n'), 'newlines in values are written as character references');
    const back = parseBackupComponents(xml);
    assert.deepEqual(model(back), model(doc));
    const r = back.getComponent(W, I, 'a\\b', 'c & "d" <e>');
    assert.equal(r.getBackupMetadata(), 'meta\r\nwith newline\tand tab');
    assert.equal(r.getDifferencedFile(0).lastModifyTime, 132214877340000000n);
    assert.equal(r.getPartialFile(0).ranges, 'File=/restore/ranges.bin');
    assert.deepEqual(r.getRollForward(), { type: RollForwardType.PARTIAL, point: 'point-7' });
    assert.equal(r.getFailure().hr, HRESULT.VSS_E_WRITERERROR_RETRYABLE);
    assert.equal(back.restoreType, RestoreType.BY_COPY);
    assert.ok(r.restoreInstanceId?.equals('12345678-1234-1234-1234-123456789ABC'));
  });

  test('unset restore-time state is not written, so genuine documents stay genuine', () => {
    const doc = new BackupComponentsDocument();
    doc.writer(W, I).addComponent(ComponentType.FILEGROUP, '', 'c');
    assert.equal(
      writeBackupComponents(doc),
      '<BACKUP_COMPONENTS xmlns="x-schema:#VssComponentMetadata" version="1.2" bootableSystemStateBackup="no" selectComponents="no" backupType="full" partialFileSupport="no">' +
        '<WRITER_COMPONENTS instanceId="dd8d6255-b3bb-4ec1-8249-73cd75c0ee21" writerId="a65faa63-5ea8-4ebc-9dbd-a0c4db26912a" backupSchema="0">' +
        '<COMPONENT componentName="c" componentType="filegroup"/></WRITER_COMPONENTS></BACKUP_COMPONENTS>',
    );
  });

  test('backupSucceeded=no is kept apart from never set', () => {
    const doc = new BackupComponentsDocument();
    doc.writer(W, I).addComponent(ComponentType.FILEGROUP, '', 'c').setBackupSucceeded(false);
    const back = parseBackupComponents(writeBackupComponents(doc)).getComponent(W, I, '', 'c');
    assert.equal(back.backupSucceededSet, true);
    assert.equal(back.getBackupSucceeded(), false);
  });
});
