import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BackupSchema,
  ComponentType,
  Guid,
  parseWriterMetadata,
  RestoreMethod,
  SourceType,
  UsageType,
  WriterMetadataBuilder,
  WriterRestore,
  writeWriterMetadata,
} from '../../src/vss/index.js';
import { throwsVss } from '../support/assert.js';

const WRITER_ID = '11111111-2222-3333-4444-555555555555';
const INSTANCE_ID = '66666666-7777-8888-9999-aaaaaaaaaaaa';

function builder(): WriterMetadataBuilder {
  return new WriterMetadataBuilder({ writerId: WRITER_ID, instanceId: INSTANCE_ID, writerName: 'Demo Writer', usage: UsageType.USERDATA, source: SourceType.OTHER });
}


describe('WriterMetadataBuilder (IVssCreateWriterMetadata)', () => {
  test('builds the same model as the equivalent hand-written XML', () => {
    const built = builder()
      .setBackupSchema(BackupSchema.DIFFERENTIAL | BackupSchema.TIMESTAMPED)
      .setRestoreMethod(RestoreMethod.RESTORE_IF_CAN_REPLACE, undefined, undefined, WriterRestore.ALWAYS, false)
      .addComponent({ type: ComponentType.FILEGROUP, logicalPath: 'data', componentName: 'db1', selectable: true })
      .addFilesToFileGroup('data', 'db1', '/srv/db1', '*.dat', true)
      .addComponent({ type: ComponentType.DATABASE, logicalPath: 'data', componentName: 'orders', caption: 'Orders database', selectable: false, componentFlags: 2 })
      .addDatabaseFiles('data', 'orders', '/srv/orders', 'orders.db')
      .addDatabaseLogFiles('data', 'orders', '/srv/orders/wal', '*.log')
      .addComponentDependency('data', 'orders', 'a65faa63-5ea8-4ebc-9dbd-a0c4db26912a', 'SQL', 'master')
      .addAlternateLocationMapping('/srv/db1', '*.dat', true, '/srv/restored')
      .addExcludeFiles('/srv/db1', '*.tmp', true)
      .addExcludeFilesFromSnapshot('/srv/db1', '*.lock', false)
      .build();
    const handWritten = `<?xml version="1.0"?>
<WRITER_METADATA xmlns="x-schema:#VssWriterMetadataInfo" version="1.2" backupSchema="33">
  <IDENTIFICATION writerId="11111111-2222-3333-4444-555555555555" instanceId="66666666-7777-8888-9999-AAAAAAAAAAAA"
    friendlyName="Demo Writer" usage="USER_DATA" dataSource="OTHER" majorVersion="0" minorVersion="0"/>
  <BACKUP_LOCATIONS>
    <EXCLUDE_FILES path="/srv/db1" filespec="*.tmp" recursive="yes"/>
    <FILE_GROUP logicalPath="data" componentName="db1" restoreMetadata="no" notifyOnBackupComplete="no"
      selectable="yes" selectableForRestore="no" componentFlags="0">
      <FILE_LIST path="/srv/db1" filespec="*.dat" recursive="yes" filespecBackupType="3855"/>
    </FILE_GROUP>
    <DATABASE componentName="orders" logicalPath="data" caption="Orders database" selectable="no" componentFlags="2">
      <DATABASE_LOGFILES path="/srv/orders/wal" filespec="*.log" filespecBackupType="3855"/>
      <DATABASE_FILES path="/srv/orders" filespec="orders.db" filespecBackupType="3855"/>
      <DEPENDENCY writerId="a65faa63-5ea8-4ebc-9dbd-a0c4db26912a" logicalPath="SQL" componentName="master"/>
    </DATABASE>
    <EXCLUDE_FILES_FROM_SNAPSHOT path="/srv/db1" filespec="*.lock" recursive="no"/>
  </BACKUP_LOCATIONS>
  <RESTORE_METHOD method="RESTORE_IF_CAN_BE_REPLACED" writerRestore="always" rebootRequired="no">
    <ALTERNATE_LOCATION_MAPPING path="/srv/db1" filespec="*.dat" recursive="yes" alternatePath="/srv/restored"/>
  </RESTORE_METHOD>
</WRITER_METADATA>`;
    const parsed = parseWriterMetadata(handWritten);
    assert.deepEqual(JSON.parse(JSON.stringify(parsed)), JSON.parse(JSON.stringify(built)));
    // And both survive a write and a reread unchanged.
    assert.deepEqual(JSON.parse(JSON.stringify(parseWriterMetadata(writeWriterMetadata(built)))), JSON.parse(JSON.stringify(built)));
  });

  test('the reader answers as IVssExamineWriterMetadata', () => {
    const wmd = builder()
      .addComponent({ type: ComponentType.FILEGROUP, componentName: 'files', selectable: true })
      .addFilesToFileGroup('', 'files', '/a', '*', false, '/spit/a', 0x101)
      .addExcludeFiles('/a', '*.bak', false)
      .build();
    const id = wmd.getIdentity();
    assert.ok(id.writerId.equals(WRITER_ID));
    assert.ok(id.instanceId.equals(INSTANCE_ID));
    assert.equal(id.writerName, 'Demo Writer');
    assert.deepEqual(wmd.getFileCounts(), { includeFiles: 0, excludeFiles: 1, components: 1 });
    const c = wmd.getComponent(0);
    assert.equal(c.files[0]!.alternateLocation, '/spit/a');
    assert.equal(c.files[0]!.backupTypeMask, 0x101);
    assert.deepEqual(wmd.getExcludeFile(0), { path: '/a', filespec: '*.bak', recursive: false });
    assert.equal(wmd.getRestoreMethod().method, RestoreMethod.UNDEFINED, 'no restore method reads as UNDEFINED');
    assert.equal(wmd.getRestoreMethod().mappings, 0);
    assert.equal(wmd.getBackupSchema(), 0);
    assert.equal(wmd.findComponent('', 'files'), c);
    throwsVss(() => wmd.getComponent(1), 'VSS_E_OBJECT_NOT_FOUND', /index 1/);
    throwsVss(() => wmd.getExcludeFile(-1), 'VSS_E_OBJECT_NOT_FOUND');
    throwsVss(() => wmd.getAlternateLocationMapping(0), 'VSS_E_OBJECT_NOT_FOUND');
    throwsVss(() => wmd.getExcludeFromSnapshotFile(0), 'VSS_E_OBJECT_NOT_FOUND');
  });

  test('a fresh instance id is minted when none is given', () => {
    const a = new WriterMetadataBuilder({ writerId: WRITER_ID, writerName: 'w', usage: UsageType.OTHER, source: SourceType.OTHER }).build();
    assert.ok(!a.identity.instanceId.isNull);
  });

  describe('enforces the rules of spec §10', () => {
    test('duplicate logical path and name: VSS_E_OBJECT_ALREADY_EXISTS', () => {
      const b = builder().addComponent({ type: ComponentType.FILEGROUP, logicalPath: 'x', componentName: 'a', selectable: true });
      throwsVss(() => b.addComponent({ type: ComponentType.DATABASE, logicalPath: 'x', componentName: 'a', selectable: true }), 'VSS_E_OBJECT_ALREADY_EXISTS', /x\\a/);
      // The same name under another logical path is a different component.
      b.addComponent({ type: ComponentType.FILEGROUP, logicalPath: 'y', componentName: 'a', selectable: true });
    });

    test('backslash in a component name: E_INVALIDARG; a caption may hold one', () => {
      throwsVss(() => builder().addComponent({ type: ComponentType.FILEGROUP, componentName: 'a\\b', selectable: true }), 'E_INVALIDARG', /backslash/);
      builder().addComponent({ type: ComponentType.FILEGROUP, componentName: 'ab', caption: 'C:\\data', selectable: true });
    });

    test('missing name, undefined type, bad flags: E_INVALIDARG', () => {
      throwsVss(() => builder().addComponent({ type: ComponentType.FILEGROUP, componentName: '', selectable: true }), 'E_INVALIDARG');
      throwsVss(() => builder().addComponent({ type: ComponentType.UNDEFINED, componentName: 'a', selectable: true }), 'E_INVALIDARG');
      throwsVss(() => builder().addComponent({ type: ComponentType.FILEGROUP, componentName: 'a', selectable: true, componentFlags: 8 }), 'E_INVALIDARG');
    });

    test('logical paths with empty elements: E_INVALIDARG naming the path', () => {
      for (const lp of ['a\\\\b', '\\a', 'a\\']) {
        throwsVss(() => builder().addComponent({ type: ComponentType.FILEGROUP, logicalPath: lp, componentName: 'c', selectable: true }), 'E_INVALIDARG', /logical path/);
      }
    });

    test('files added to the wrong component type: E_INVALIDARG', () => {
      const b = builder()
        .addComponent({ type: ComponentType.DATABASE, componentName: 'db', selectable: true })
        .addComponent({ type: ComponentType.FILEGROUP, componentName: 'fg', selectable: true });
      throwsVss(() => b.addFilesToFileGroup('', 'db', '/a', '*', false), 'E_INVALIDARG', /VSS_CT_FILEGROUP/);
      throwsVss(() => b.addDatabaseFiles('', 'fg', '/a', '*'), 'E_INVALIDARG', /VSS_CT_DATABASE/);
      throwsVss(() => b.addDatabaseLogFiles('', 'fg', '/a', '*'), 'E_INVALIDARG');
    });

    test('files added to an unknown component: VSS_E_OBJECT_NOT_FOUND', () => {
      const b = builder();
      throwsVss(() => b.addFilesToFileGroup('x', 'nope', '/a', '*', false), 'VSS_E_OBJECT_NOT_FOUND', /x\\nope/);
      throwsVss(() => b.addDatabaseFiles('', 'nope', '/a', '*'), 'VSS_E_OBJECT_NOT_FOUND');
      throwsVss(() => b.addComponentDependency('', 'nope', Guid.random(), '', 'x'), 'VSS_E_OBJECT_NOT_FOUND');
    });

    test('file specs with separators, paths with wildcards, a file listed twice', () => {
      const b = builder().addComponent({ type: ComponentType.FILEGROUP, componentName: 'fg', selectable: true });
      throwsVss(() => b.addFilesToFileGroup('', 'fg', '/a', 'sub/*.db', false), 'E_INVALIDARG', /separator/);
      throwsVss(() => b.addFilesToFileGroup('', 'fg', '/a/*', '*', false), 'E_INVALIDARG', /wildcard/);
      throwsVss(() => b.addFilesToFileGroup('', 'fg', '', '*', false), 'E_INVALIDARG');
      throwsVss(() => b.addFilesToFileGroup('', 'fg', '/a', '*', false, undefined, 0x20), 'E_INVALIDARG', /mask/);
      b.addFilesToFileGroup('', 'fg', '/a', '*', false);
      throwsVss(() => b.addFilesToFileGroup('', 'fg', '/a', '*', true), 'VSS_E_OBJECT_ALREADY_EXISTS');
      throwsVss(() => b.addExcludeFiles('/a', 'x/y', false), 'E_INVALIDARG');
    });

    test('dependencies name another writer', () => {
      const b = builder().addComponent({ type: ComponentType.FILEGROUP, componentName: 'fg', selectable: true });
      throwsVss(() => b.addComponentDependency('', 'fg', WRITER_ID, '', 'other'), 'E_INVALIDARG', /another writer/);
      throwsVss(() => b.addComponentDependency('', 'fg', 'not-a-guid', '', 'other'), 'E_INVALIDARG');
    });

    test('restore method: defined values; a service for the service methods', () => {
      throwsVss(() => builder().setRestoreMethod(RestoreMethod.UNDEFINED, '', '', WriterRestore.NEVER, false), 'E_INVALIDARG');
      throwsVss(() => builder().setRestoreMethod(RestoreMethod.CUSTOM, '', '', WriterRestore.UNDEFINED, false), 'E_INVALIDARG');
      throwsVss(() => builder().setRestoreMethod(RestoreMethod.STOP_RESTORE_START, '', '', WriterRestore.ALWAYS, false), 'E_INVALIDARG', /service/);
      const wmd = builder().setRestoreMethod(RestoreMethod.STOP_RESTORE_START, 'postgresql.service', '', WriterRestore.ALWAYS, true).build();
      assert.equal(wmd.getRestoreMethod().service, 'postgresql.service');
      assert.equal(parseWriterMetadata(writeWriterMetadata(wmd)).getRestoreMethod().service, 'postgresql.service');
    });

    test('backup schema combinations', () => {
      throwsVss(() => builder().setBackupSchema(BackupSchema.EXCLUSIVE_INCREMENTAL_DIFFERENTIAL | BackupSchema.DIFFERENTIAL), 'E_INVALIDARG', /INCREMENTAL/);
      throwsVss(() => builder().setBackupSchema(BackupSchema.TIMESTAMPED), 'E_INVALIDARG');
      throwsVss(() => builder().setBackupSchema(BackupSchema.LAST_MODIFY | BackupSchema.COPY), 'E_INVALIDARG');
      throwsVss(() => builder().setBackupSchema(0x800), 'E_INVALIDARG', /outside/);
      throwsVss(() => builder().setBackupSchema(BackupSchema.LOG).build(), 'E_INVALIDARG', /log file set/);
      builder().setBackupSchema(BackupSchema.EXCLUSIVE_INCREMENTAL_DIFFERENTIAL | BackupSchema.DIFFERENTIAL | BackupSchema.INCREMENTAL).build();
    });

    test('an alternate location mapping must name a declared file set', () => {
      const b = builder()
        .addComponent({ type: ComponentType.FILEGROUP, componentName: 'fg', selectable: true })
        .addFilesToFileGroup('', 'fg', '/a', '*.db', true)
        .addAlternateLocationMapping('/a', '*.db', false, '/b');
      throwsVss(() => b.build(), 'E_INVALIDARG', /does not match/);
    });

    test('characters XML cannot hold are refused up front', () => {
      throwsVss(() => builder().addComponent({ type: ComponentType.FILEGROUP, componentName: 'a\u0001', selectable: true }), 'E_INVALIDARG', /U\+0001/);
    });
  });

  test('a built document is not changed by later builder calls', () => {
    const b = builder().addComponent({ type: ComponentType.FILEGROUP, componentName: 'fg', selectable: true });
    const wmd = b.build();
    b.addFilesToFileGroup('', 'fg', '/a', '*', false);
    assert.equal(wmd.getComponent(0).files.length, 0);
  });
});
