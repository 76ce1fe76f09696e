// Malformed, truncated, wrongly-rooted or schema-violating documents: VSS_E_INVALID_XML_DOCUMENT
// with line, column and what was expected; never a crash or a partial model.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseBackupComponents, parseVssDocument, parseWriterMetadata, VssXmlError, writeBackupComponents, writeWriterMetadata } from '../../src/vss/index.js';
import { fixtureFiles, NO_FIXTURES } from '../support/fixtures.js';

const ID = 'writerId="11111111-2222-3333-4444-555555555555" instanceId="66666666-7777-8888-9999-aaaaaaaaaaaa" friendlyName="W" usage="USER_DATA" dataSource="OTHER"';
const wmd = (inner: string, rootAttrs = ''): string => `<WRITER_METADATA xmlns="x-schema:#VssWriterMetadataInfo" version="1.2"${rootAttrs}>${inner}</WRITER_METADATA>`;
const ok = (locations = ''): string => wmd(`<IDENTIFICATION ${ID}/><BACKUP_LOCATIONS>${locations}</BACKUP_LOCATIONS>`);

function rejects(parse: () => unknown, detail: RegExp, where?: { line: number; column: number }): void {
  assert.throws(parse, (e: unknown) => {
    assert.ok(e instanceof VssXmlError, `expected VssXmlError, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, 'VSS_E_INVALID_XML_DOCUMENT');
    assert.equal(e.hresult, 0x80042311);
    assert.match(e.detail, detail);
    assert.ok(e.line >= 1 && e.column >= 1, 'has a position');
    if (where) assert.deepEqual({ line: e.line, column: e.column }, where);
    return true;
  });
}

describe('bad input', () => {
  test('the minimal valid document parses', () => {
    assert.equal(parseWriterMetadata(ok()).identity.writerName, 'W');
  });

  test('malformed and truncated XML', () => {
    rejects(() => parseWriterMetadata(''), /root element/);
    rejects(() => parseWriterMetadata('   '), /root element/);
    rejects(() => parseWriterMetadata(ok().slice(0, 120)), /malformed XML/);
    rejects(() => parseWriterMetadata(ok().slice(0, -5)), /malformed XML/);
    rejects(() => parseWriterMetadata(ok().replace('</BACKUP_LOCATIONS>', '</BACKUP>')), /malformed XML: unexpected close tag/);
    rejects(() => parseWriterMetadata('<WRITER_METADATA a=1/>'), /malformed XML/);
    rejects(() => parseWriterMetadata('not xml at all'), /malformed XML/);
    rejects(() => parseWriterMetadata(ok() + '<second/>'), /malformed XML/);
    rejects(() => parseWriterMetadata(new Uint8Array([0x3c, 0x61, 0xff, 0xfe, 0xfd, 0x2f, 0x3e, 0x80])), /not valid UTF-8/);
  });

  test('a wrong root names both expected roots', () => {
    rejects(() => parseVssDocument('<FOO/>'), /<FOO>: expected <WRITER_METADATA>.*<BACKUP_COMPONENTS>/);
    rejects(() => parseWriterMetadata('<BACKUP_COMPONENTS/>'), /expected <WRITER_METADATA>/);
    rejects(() => parseBackupComponents(ok()), /expected <BACKUP_COMPONENTS>/);
  });

  test('schema violations name the attribute or element and what was expected, at its position', () => {
    rejects(() => parseWriterMetadata(wmd('<BACKUP_LOCATIONS/>')), /no <IDENTIFICATION>/);
    rejects(() => parseWriterMetadata(wmd(`<IDENTIFICATION ${ID}/>`)), /no <BACKUP_LOCATIONS>/);
    rejects(() => parseWriterMetadata(wmd(`<IDENTIFICATION ${ID}/><IDENTIFICATION ${ID}/><BACKUP_LOCATIONS/>`)), /second <IDENTIFICATION>/);
    rejects(() => parseWriterMetadata(ok().replace('11111111-2222', 'xyz')), /writerId .* expected a GUID/);
    rejects(() => parseWriterMetadata(ok().replace('friendlyName="W"', '')), /missing the required attribute friendlyName/);
    rejects(() => parseWriterMetadata(ok().replace('USER_DATA', 'LOTS_OF_DATA')), /usage .*LOTS_OF_DATA.*expected one of .*BOOTABLE_SYSTEM_STATE/);
    rejects(() => parseWriterMetadata(ok('<FILE_GROUP componentName="c" selectable="maybe"/>')), /selectable .* expected yes or no/);
    rejects(() => parseWriterMetadata(ok('<FILE_GROUP componentName="c" componentFlags="-1"/>')), /componentFlags .* expected a decimal number/);
    rejects(() => parseWriterMetadata(ok('<FILE_GROUP componentName="c" componentFlags="0x2"/>')), /expected a decimal number/);
    rejects(() => parseWriterMetadata(ok('<FILE_GROUP/>')), /missing the required attribute componentName/);
    rejects(() => parseWriterMetadata(ok('<FILE_GROUP componentName="a\\b"/>')), /backslash/);
    rejects(() => parseWriterMetadata(ok('<FILE_GROUP componentName="c"/><FILE_GROUP componentName="c"/>')), /appears twice/);
    rejects(() => parseWriterMetadata(ok('<FILE_LIST path="/a" filespec="*"/>')), /directly inside <BACKUP_LOCATIONS>/);
    rejects(() => parseWriterMetadata(ok('<DATABASE componentName="d"><FILE_LIST path="/a" filespec="*"/></DATABASE>')), /expected <DATABASE_FILES>/);
    rejects(() => parseWriterMetadata(ok('<FILE_GROUP componentName="c"><DATABASE_FILES path="/a" filespec="*"/></FILE_GROUP>')), /expected <FILE_LIST>/);
    rejects(() => parseWriterMetadata(ok('<FILE_GROUP componentName="c"><FILE_LIST filespec="*"/></FILE_GROUP>')), /required attribute path/);
    rejects(() => parseWriterMetadata(ok('<EXCLUDE_FILES path="/a" filespec="*" recursive="perhaps"/>')), /recursive/);
    rejects(() => parseWriterMetadata(ok('hello')), /unexpected text "hello"/);
    rejects(() => parseWriterMetadata(ok('<![CDATA[x]]>')), /CDATA/);
    rejects(() => parseWriterMetadata(wmd(`<IDENTIFICATION ${ID}/><RESTORE_METHOD method="NOPE"/><BACKUP_LOCATIONS/>`)), /method .*NOPE.*expected one of/);
    rejects(() => parseBackupComponents('<BACKUP_COMPONENTS backupType="weekly"/>'), /backupType/);
    rejects(() => parseBackupComponents('<BACKUP_COMPONENTS><WRITER_COMPONENTS writerId="11111111-2222-3333-4444-555555555555"/></BACKUP_COMPONENTS>'), /instanceId/);
    rejects(
      () => parseBackupComponents('<BACKUP_COMPONENTS><WRITER_COMPONENTS writerId="11111111-2222-3333-4444-555555555555" instanceId="11111111-2222-3333-4444-555555555555"><COMPONENT componentName="c"/></WRITER_COMPONENTS></BACKUP_COMPONENTS>'),
      /componentType/,
    );
  });

  test('positions are those of the offending element', () => {
    const text = `<WRITER_METADATA>\n  <IDENTIFICATION ${ID}/>\n  <BACKUP_LOCATIONS>\n    <FILE_GROUP componentName="c" selectable="maybe"/>\n  </BACKUP_LOCATIONS>\n</WRITER_METADATA>`;
    rejects(() => parseWriterMetadata(text, 'x.xml'), /selectable/, { line: 4, column: 5 });
    assert.throws(() => parseWriterMetadata(text, 'x.xml'), /VSS_E_INVALID_XML_DOCUMENT: x\.xml:4:5: /);
    rejects(() => parseWriterMetadata('<WRITER_METADATA>\n<a b=1/>'), /unquoted/, { line: 2, column: 6 });
  });

  test('the reader is reused between documents: a failed read leaves nothing behind, positions restart', () => {
    const text = `<WRITER_METADATA>\n  <IDENTIFICATION ${ID}/>\n  <BACKUP_LOCATIONS>\n    <FILE_GROUP componentName="c" selectable="maybe"/>\n  </BACKUP_LOCATIONS>\n</WRITER_METADATA>`;
    for (let i = 0; i < 3; i++) {
      assert.equal(parseWriterMetadata(ok('<FILE_GROUP componentName="a"/>')).components.length, 1);
      rejects(() => parseWriterMetadata(ok().slice(0, -5)), /malformed XML/);
      assert.equal(parseWriterMetadata(ok()).components.length, 0, 'no component of an earlier document');
      rejects(() => parseWriterMetadata(text), /selectable/, { line: 4, column: 5 });
      rejects(() => parseWriterMetadata(''), /root element/);
      assert.equal(parseBackupComponents(writeBackupComponents(parseBackupComponents('<BACKUP_COMPONENTS xmlns="x-schema:#VssComponentMetadata"/>'))).writers.length, 0);
    }
  });

  test('unknown elements and attributes are tolerated (newer Windows versions add some)', () => {
    const w = parseWriterMetadata(ok('<FUTURE_THING x="1"><FILE_LIST path="/a" filespec="*"/></FUTURE_THING><FILE_GROUP componentName="c" futureAttr="1"/>'));
    assert.equal(w.components.length, 1);
    assert.equal(w.components[0]!.files.length, 0, 'children of an unknown element are not read as ours');
  });
});

describe('fuzz: both readers never crash and never return a partial model', () => {
  /** Parses, and when that succeeds, checks the result writes and rereads to the same model. */
  function parseOrReject(input: string | Uint8Array): void {
    let doc;
    try {
      doc = parseVssDocument(input);
    } catch (e) {
      if (e instanceof VssXmlError && e.line >= 1 && e.column >= 1) return;
      throw e;
    }
    const again = doc.kind === 'writerMetadata' ? parseWriterMetadata(writeWriterMetadata(doc.document)) : parseBackupComponents(writeBackupComponents(doc.document));
    assert.deepEqual(JSON.parse(JSON.stringify(again)), JSON.parse(JSON.stringify(doc.document)));
  }

  test('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => parseOrReject(bytes)), { numRuns: 500 });
  });

  test('random text around XML-ish tokens', () => {
    const token = fc.constantFrom('<', '>', '/>', '</', '"', '=', ' ', 'WRITER_METADATA', 'BACKUP_COMPONENTS', 'IDENTIFICATION', 'BACKUP_LOCATIONS', 'FILE_GROUP', 'COMPONENT', 'yes', 'no', '&amp;', '&#0;', '\r\n');
    fc.assert(fc.property(fc.array(fc.oneof(token, fc.string({ maxLength: 4 })), { maxLength: 60 }), (parts) => parseOrReject(parts.join(''))), { numRuns: 500 });
  });

  const small = fixtureFiles().filter((f) => !f.includes('WM3-system-writer'));
  test('mutated genuine documents', { skip: small.length === 0 ? NO_FIXTURES : false }, () => {
    const texts = small.map((f) => readFileSync(f, 'utf8'));
    const mutation = fc.record({
      doc: fc.nat({ max: texts.length - 1 }),
      at: fc.nat(),
      len: fc.nat({ max: 40 }),
      kind: fc.constantFrom('delete', 'insert', 'duplicate', 'replace', 'truncate'),
      text: fc.string({ maxLength: 12 }),
    });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        let t = texts[mutations[0]!.doc]!;
        for (const m of mutations) {
          const at = m.at % (t.length + 1);
          if (m.kind === 'delete') t = t.slice(0, at) + t.slice(at + m.len);
          else if (m.kind === 'insert') t = t.slice(0, at) + m.text + t.slice(at);
          else if (m.kind === 'duplicate') t = t.slice(0, at + m.len) + t.slice(at, at + m.len) + t.slice(at + m.len);
          else if (m.kind === 'replace') t = t.slice(0, at) + m.text + t.slice(at + m.text.length);
          else t = t.slice(0, at);
        }
        parseOrReject(t);
        parseOrReject(Buffer.from(t, 'utf16le'));
      }),
      { numRuns: 1000 },
    );
  });
});
