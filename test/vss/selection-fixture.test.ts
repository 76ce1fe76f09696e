// The genuine ASR Writer document (spec §13.4): logical paths "Volumes" and "Disks" with no
// component of that name, and components "ASR" and "BCD" whose logical path equals their name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BackupComponentsDocument } from '../../src/vss/backup-components.js';
import { VssError } from '../../src/vss/errors.js';
import { parseWriterMetadata } from '../../src/vss/xml/index.js';
import { BackupSelection, ComponentTree, computeBackupSet, MemoryFileTree, RestoreSelection } from '../../src/vss/selection/index.js';
import { fixture, NO_FIXTURES } from '../support/fixtures.js';

const file = fixture('WM4-asr');
const ASR = 'be000cbe-11fe-4426-9c58-531aa6355fc4';
const REQUIRED = ['ASR\\ASR', 'Volumes\\Volume{c7463aba-f40d-11e9-80c7-806e6f6e6963}', 'Volumes\\Volume{c7463abb-f40d-11e9-80c7-806e6f6e6963}', 'BCD\\BCD'];

test('ASR Writer: kinds, selection, backup set and restore selection on the genuine document', { skip: file ? false : NO_FIXTURES }, () => {
  const wmd = parseWriterMetadata(readFileSync(file!), file);
  const tree = new ComponentTree(wmd);
  // A logical path equal to the component's own name is not its own ancestor.
  const asr = tree.get('ASR', 'ASR');
  assert.equal(asr.parent, undefined);
  assert.equal(asr.kind, 'required');
  assert.equal(tree.find('', 'ASR'), undefined);
  assert.deepEqual(tree.componentSet(asr).map((n) => n.fullPath), ['ASR\\ASR']);
  // "Volumes" and "Disks" are path elements only: their members have no ancestor.
  assert.equal(tree.find('', 'Volumes'), undefined);
  assert.equal(tree.get('Disks', 'harddisk0').kind, 'optional-top');
  assert.equal(tree.get('Volumes', 'Volume{43025f8a-07b0-11ea-80d1-0050569f7760}').kind, 'optional-top');
  assert.deepEqual(tree.required().map((n) => n.fullPath), REQUIRED);

  const s = new BackupSelection([wmd]);
  assert.throws(() => s.addComponent({ writerId: ASR, componentName: 'Volumes' }), (e: unknown) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND') && /"Volumes"/.test(e.message));
  assert.throws(() => s.addComponent({ writerId: ASR, componentName: 'ASR' }), (e: unknown) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
  s.addComponent({ writerId: ASR, logicalPath: 'Disks', componentName: 'harddisk0' });
  assert.throws(() => s.result(), (e: unknown) => VssError.is(e, 'E_INVALIDARG') && REQUIRED.every((r) => e.message.includes(`"${r}"`)));
  s.addRequiredComponents();
  const r = s.result();
  assert.deepEqual(r.writers[0]!.components.map((c) => c.node.fullPath), [REQUIRED[0], REQUIRED[1], REQUIRED[2], 'Disks\\harddisk0', REQUIRED[3]]);

  // BCD\BCD lists a Windows volume path: an error for that component only.
  const set = computeBackupSet(r, MemoryFileTree.from({ '/x': {} }));
  assert.equal(set.failures.length, 1);
  assert.equal(set.failures[0]!.definingComponent.fullPath, 'BCD\\BCD');
  assert.match(set.failures[0]!.error.message, /\\\\\?\\Volume\{c7463aba-f40d-11e9-80c7-806e6f6e6963\}\\Boot/);

  // Restore: explicit components can be selected; the writer must be running.
  const bcd = new BackupComponentsDocument();
  s.applyTo(bcd);
  const rs = new RestoreSelection(bcd, [wmd], [{ writerId: ASR }]);
  rs.setSelectedForRestore({ writerId: ASR, logicalPath: 'Disks', componentName: 'harddisk0' });
  assert.throws(() => rs.setSelectedForRestore({ writerId: ASR, logicalPath: 'Disks', componentName: 'harddisk1' }), (e: unknown) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND'));
  assert.throws(
    () => new RestoreSelection(bcd, [wmd], []).setSelectedForRestore({ writerId: ASR, logicalPath: 'BCD', componentName: 'BCD' }),
    (e: unknown) => VssError.is(e, 'VSS_E_OBJECT_NOT_FOUND') && /not running/.test(e.message),
  );
});
