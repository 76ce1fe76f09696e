import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseWriterMetadata } from '../../src/vss/index.js';
import { runCli } from '../support/cli.js';
import { fixture, NO_FIXTURES } from '../support/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'shadowcopy-inspect-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('shadowcopy inspect', () => {
  test('a WMD: identity, restore method, components as a tree by logical path, excludes', { skip: fixture('WM4-asr') ? false : NO_FIXTURES }, () => {
    const r = runCli(['inspect', fixture('WM4-asr')!]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Writer Metadata Document/);
    assert.match(r.stdout, /Writer name: +ASR Writer/);
    assert.match(r.stdout, /Restore method: +VSS_RME_RESTORE_IF_CAN_REPLACE, writer restore VSS_WRE_NEVER, reboot required/);
    assert.match(r.stdout, /\n {4}Volumes {2}\(logical path only\)\n {6}Volume\{c7463aba/);
    assert.match(r.stdout, /harddisk3 {2}\[filegroup, selectable, selectable for restore, 0 file sets\]/);
    const sql = runCli(['inspect', fixture('withsql-WM4-sqlserverwriter-excludefiles')!]);
    assert.match(sql.stdout, /Excluded files \(\d+\):/);
  });

  test('a BCD: backup state and each writer\'s components with their properties', { skip: fixture('withsql-BCD') ? false : NO_FIXTURES }, () => {
    const r = runCli(['inspect', fixture('withsql-BCD')!]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Backup type: +VSS_BT_FULL/);
    assert.match(r.stdout, /WIN2012-SQL17-2\\local1 {2}\[filegroup\]\n {8}backup stamp: CAAAAMQv3\+t4udUB/);
  });

  test('--json prints the whole model; --xml re-serialises it', { skip: fixture('WM5-sql') ? false : NO_FIXTURES }, () => {
    const file = fixture('WM5-sql')!;
    const json = JSON.parse(runCli(['inspect', '--json', file]).stdout);
    assert.equal(json.kind, 'writerMetadata');
    assert.equal(json.document.backupSchema, 881);
    assert.equal(json.document.identity.usage, 'VSS_UT_USERDATA');
    const xml = runCli(['inspect', '--xml', file]).stdout;
    assert.equal(xml.trimEnd(), readFileSync(file, 'utf8'));
  });

  test('a document that is not one says where and why, and exits non-zero', () => {
    const bad = join(dir, 'bad.xml');
    writeFileSync(bad, '<WRITER_METADATA>\n  <IDENTIFICATION writerId="nope"/>\n</WRITER_METADATA>');
    const r = runCli(['inspect', bad]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /VSS_E_INVALID_XML_DOCUMENT: .*bad\.xml:2:3: attribute writerId of <IDENTIFICATION> is "nope": expected a GUID/);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
    const missing = runCli(['inspect', join(dir, 'missing.xml')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /VSS_E_OBJECT_NOT_FOUND: cannot read/);
  });

  test('--xml of a minimal hand-written document reads back as the same writer', () => {
    const wmdFile = join(dir, 'w.xml');
    writeFileSync(wmdFile, '<WRITER_METADATA xmlns="x-schema:#VssWriterMetadataInfo" version="1.2"><IDENTIFICATION writerId="11111111-2222-3333-4444-555555555555" instanceId="66666666-7777-8888-9999-aaaaaaaaaaaa" friendlyName="W" usage="USER_DATA" dataSource="OTHER" majorVersion="0" minorVersion="0"/><BACKUP_LOCATIONS/></WRITER_METADATA>');
    const out = runCli(['inspect', '--xml', wmdFile]);
    assert.equal(parseWriterMetadata(out.stdout).identity.writerName, 'W');
  });
});
