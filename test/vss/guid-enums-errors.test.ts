import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  BackupSchema,
  BackupType,
  backupTypeCodec,
  ComponentType,
  componentTypeCodec,
  DEFAULT_FILESPEC_BACKUP_TYPE,
  flagNames,
  Guid,
  HRESULT,
  hresultName,
  isFailure,
  RestoreMethod,
  restoreMethodCodec,
  SnapshotContext,
  SnapshotState,
  snapshotStateCodec,
  sourceTypeCodec,
  usageTypeCodec,
  VssError,
  WriterRestore,
  writerRestoreCodec,
  WriterState,
  writerStateCodec,
} from '../../src/vss/index.js';

describe('Guid', () => {
  test('parses with or without braces, in any case, and compares by value', () => {
    const a = Guid.parse('{75DFB225-E2E4-4d39-9AC9-FFAFF65DDF06}');
    const b = Guid.parse('75dfb225-e2e4-4d39-9ac9-ffaff65ddf06');
    assert.ok(a.equals(b));
    assert.ok(a.equals('75DFB225-E2E4-4D39-9AC9-FFAFF65DDF06'));
    assert.equal(a.toString(), '75dfb225-e2e4-4d39-9ac9-ffaff65ddf06');
    assert.equal(a.toBraced(), '{75dfb225-e2e4-4d39-9ac9-ffaff65ddf06}');
    assert.equal(a.spelling, '75DFB225-E2E4-4d39-9AC9-FFAFF65DDF06');
    assert.equal(JSON.stringify({ a }), '{"a":"75dfb225-e2e4-4d39-9ac9-ffaff65ddf06"}');
  });

  test('knows the null GUID and makes random ones', () => {
    assert.ok(Guid.NULL.isNull);
    assert.ok(Guid.parse('{00000000-0000-0000-0000-000000000000}').isNull);
    const r = Guid.random();
    assert.ok(!r.isNull);
    assert.ok(!r.equals(Guid.random()));
    assert.match(r.toString(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test('rejects what is not a GUID with E_INVALIDARG', () => {
    for (const bad of ['', 'abc', '{75dfb225-e2e4-4d39-9ac9-ffaff65ddf06', '75dfb225e2e44d399ac9ffaff65ddf06', '75dfb225-e2e4-4d39-9ac9-ffaff65ddf0g']) {
      assert.throws(() => Guid.parse(bad), (e) => VssError.is(e, 'E_INVALIDARG'));
      assert.equal(Guid.tryParse(bad), undefined);
    }
    assert.ok(!Guid.NULL.equals('not a guid'));
    assert.ok(!Guid.NULL.equals(undefined));
  });
});

describe('enumerations (spec §2)', () => {
  test('carry the numeric values of the spec', () => {
    assert.equal(WriterState.FAILED_AT_BACKUPSHUTDOWN, 15);
    assert.equal(writerStateCodec.nameOf(5), 'VSS_WS_WAITING_FOR_BACKUP_COMPLETE');
    assert.equal(BackupType.COPY, 5);
    assert.equal(RestoreMethod.RESTORE_STOP_START, 8);
    assert.equal(WriterRestore.IF_REPLACE_FAILS, 2);
    assert.equal(ComponentType.FILEGROUP, 2);
    assert.equal(DEFAULT_FILESPEC_BACKUP_TYPE, 3855);
    assert.equal(SnapshotContext.CLIENT_ACCESSIBLE_WRITERS, 0xd);
    assert.equal(SnapshotState.CREATED, 12);
    assert.equal(snapshotStateCodec.nameOf(15), 'VSS_SS_POSTCOMMITTED');
  });

  test('map the tokens seen in genuine documents to the right values', () => {
    assert.equal(restoreMethodCodec.fromToken('RESTORE_IF_CAN_BE_REPLACED'), RestoreMethod.RESTORE_IF_CAN_REPLACE);
    assert.equal(restoreMethodCodec.fromToken('REPLACE_AT_REBOOT'), RestoreMethod.RESTORE_AT_REBOOT);
    assert.equal(restoreMethodCodec.fromToken('REPLACE_AT_REBOOT_IF_CANNOT_REPLACE'), RestoreMethod.RESTORE_AT_REBOOT_IF_CANNOT_REPLACE);
    assert.equal(restoreMethodCodec.fromToken('RESTORE_IF_NONE_THERE'), RestoreMethod.RESTORE_IF_NOT_THERE);
    assert.equal(restoreMethodCodec.fromToken('STOP_RESTART_SERVICE'), RestoreMethod.STOP_RESTORE_START);
    assert.equal(usageTypeCodec.fromToken('BOOTABLE_SYSTEM_STATE'), 1);
    assert.equal(sourceTypeCodec.fromToken('TRANSACTION_DB'), 1);
    assert.equal(sourceTypeCodec.fromToken('NONTRANSACTION_DB'), 2, 'both unverified spellings are read');
    assert.equal(sourceTypeCodec.tokenOf(2), 'NONTRANSACTIONAL_DB');
    assert.equal(writerRestoreCodec.fromToken('ifReplaceFails'), WriterRestore.IF_REPLACE_FAILS);
    assert.equal(writerRestoreCodec.fromToken('IFREPLACEFAILS'), WriterRestore.IF_REPLACE_FAILS, 'tokens read case-insensitively');
    assert.equal(backupTypeCodec.tokenOf(BackupType.FULL), 'full');
    assert.equal(componentTypeCodec.tokenOf(ComponentType.DATABASE), 'database');
    assert.equal(restoreMethodCodec.fromToken('NO_SUCH_METHOD'), undefined);
  });

  test('every token of every codec maps back to its value', () => {
    for (const codec of [restoreMethodCodec, usageTypeCodec, sourceTypeCodec, writerRestoreCodec, backupTypeCodec, componentTypeCodec]) {
      for (let v = 0; v < 16; v++) {
        const t = codec.tokenOf(v);
        if (t !== undefined) assert.equal(codec.fromToken(t), v, `${codec.enumName} ${t}`);
        const n = codec.nameOf(v);
        if (n !== undefined) assert.equal(codec.fromName(n), v);
      }
    }
  });

  test('flag masks print as VSS names', () => {
    assert.deepEqual(flagNames('VSS_BS_', BackupSchema, 881), [
      'VSS_BS_DIFFERENTIAL',
      'VSS_BS_COPY',
      'VSS_BS_TIMESTAMPED',
      'VSS_BS_LAST_MODIFY',
      'VSS_BS_WRITER_SUPPORTS_NEW_TARGET',
      'VSS_BS_WRITER_SUPPORTS_RESTORE_WITH_MOVE',
    ]);
    assert.deepEqual(flagNames('VSS_BS_', BackupSchema, 0x80000), ['0x80000']);
  });
});

describe('errors (spec §3)', () => {
  test('HRESULT values match the spec table', () => {
    const expected: Record<string, number> = {
      VSS_E_BAD_STATE: 0x80042301,
      VSS_E_OBJECT_NOT_FOUND: 0x80042308,
      VSS_S_ASYNC_PENDING: 0x00042309,
      VSS_E_OBJECT_ALREADY_EXISTS: 0x8004230d,
      VSS_E_INVALID_XML_DOCUMENT: 0x80042311,
      VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED: 0x80042312,
      VSS_E_WRITER_NOT_RESPONDING: 0x80042319,
      VSS_E_NOT_SUPPORTED: 0x8004232f,
      VSS_E_WRITERERROR_PARTIAL_FAILURE: 0x80042336,
      VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT: 0x800423f0,
      VSS_E_WRITERERROR_RECOVERY_FAILED: 0x800423f5,
      VSS_E_WRITER_STATUS_NOT_AVAILABLE: 0x80042409,
      E_INVALIDARG: 0x80070057,
      E_UNEXPECTED: 0x8000ffff,
    };
    for (const [name, value] of Object.entries(expected)) assert.equal(HRESULT[name as keyof typeof HRESULT], value, name);
  });

  test('every code of the spec §3 table is defined with its value', (t) => {
    const spec = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'spec', 'vss-spec.md');
    if (!existsSync(spec)) return t.skip('../shared/spec/vss-spec.md not found beside the checkout');
    const section = readFileSync(spec, 'utf8').split('## 3. HRESULTs')[1]!.split('Writer-failure semantics')[0]!;
    let rows = 0;
    for (const m of section.matchAll(/^\| (VSS_[A-Z_]+) \| (0x[0-9A-Fa-f]{8}) \|/gm)) {
      rows++;
      assert.equal(HRESULT[m[1] as keyof typeof HRESULT], Number(m[2]), m[1]);
    }
    for (const m of section.matchAll(/(S_OK|S_FALSE|E_[A-Z]+) (0x[0-9A-Fa-f]+|0|1)\b/g)) {
      assert.equal(HRESULT[m[1] as keyof typeof HRESULT], Number(m[2]), m[1]);
    }
    assert.equal(rows, 48, 'the table has 48 VSS rows');
  });

  test('a VssError carries its name, HRESULT and an actionable message', () => {
    const e = new VssError('VSS_E_BAD_STATE', 'call prepareForBackup first');
    assert.equal(e.code, 'VSS_E_BAD_STATE');
    assert.equal(e.hresult, 0x80042301);
    assert.equal(e.message, 'VSS_E_BAD_STATE: call prepareForBackup first');
    assert.ok(VssError.is(e, 'VSS_E_BAD_STATE'));
    assert.ok(!VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
    assert.ok(e instanceof Error);
    assert.deepEqual(JSON.parse(JSON.stringify(e)), { code: 'VSS_E_BAD_STATE', hresult: 0x80042301, message: e.message });
  });

  test('names HRESULTs and tells failures from successes', () => {
    assert.equal(hresultName(0x800423f3), 'VSS_E_WRITERERROR_RETRYABLE');
    assert.equal(hresultName(-2147212543), 'VSS_E_BAD_STATE', 'signed form too');
    assert.equal(hresultName(0x12345678), '0x12345678');
    assert.ok(isFailure(HRESULT.VSS_E_BAD_STATE));
    assert.ok(!isFailure(HRESULT.VSS_S_ASYNC_FINISHED));
  });
});
