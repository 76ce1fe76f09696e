import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackupComponentsDocument } from '../../src/vss/backup-components.js';
import { BackupSchema, RestoreMethod, RestoreTarget } from '../../src/vss/enums.js';
import { BackupSelection, computeBackupSet, computeRestoreSet, RestoreSelection, type BackupSet } from '../../src/vss/selection/index.js';
import { MY_WRITER_ID, myWriter, myWriterFiles, type MyWriterOptions } from '../support/my-writer.js';
import { throwsVss } from '../support/assert.js';

const ref = (logicalPath: string, componentName: string) => ({ writerId: MY_WRITER_ID, logicalPath, componentName });
const RUNNING = [{ writerId: MY_WRITER_ID }];


/** A stored backup of MyWriter with writerData and the required components explicit. */
function storedBackup(o: MyWriterOptions = {}, explicit: [string, string][] = [['', 'writerData']]): { bcd: BackupComponentsDocument; wmd: ReturnType<typeof myWriter>; set: BackupSet } {
  const wmd = myWriter(o);
  const s = new BackupSelection([wmd]);
  for (const [lp, n] of explicit) s.addComponent(ref(lp, n));
  s.addRequiredComponents();
  const bcd = new BackupComponentsDocument();
  s.applyTo(bcd);
  return { bcd, wmd, set: computeBackupSet(s.result(), myWriterFiles()) };
}

test('setSelectedForRestore: any explicit component; implicit ones point to their defining component', () => {
  const { bcd, wmd } = storedBackup();
  const r = new RestoreSelection(bcd, [wmd], RUNNING);
  r.setSelectedForRestore(ref('', 'writerData'));
  r.setSelectedForRestore(ref('Executables', 'ConfigFiles'));
  assert.ok(bcd.getComponent(wmd.identity.writerId, undefined, '', 'writerData').isSelectedForRestore());
  throwsVss(() => r.setSelectedForRestore(ref('writerData', 'Set1')), 'VSS_E_OBJECT_NOT_FOUND', /part of "writerData".*addRestoreSubcomponent/);
  throwsVss(() => r.setSelectedForRestore(ref('', 'LicenseInfo')), 'VSS_E_OBJECT_NOT_FOUND', /"LicenseInfo" was not explicitly backed up/);
  throwsVss(() => r.setSelectedForRestore({ writerId: '99999999-0000-0000-0000-000000000000', componentName: 'x' }), 'VSS_E_OBJECT_NOT_FOUND');
  throwsVss(() => r.setSelectedForRestore(ref('a\\\\b', 'x')), 'E_INVALIDARG', /a\\\\b/);
});

test('a component of a writer that is not running now: VSS_E_OBJECT_NOT_FOUND', () => {
  const { bcd, wmd } = storedBackup();
  const r = new RestoreSelection(bcd, [wmd], []);
  throwsVss(() => r.setSelectedForRestore(ref('', 'writerData')), 'VSS_E_OBJECT_NOT_FOUND', /not running/);
});

test('addRestoreSubcomponent: after the defining component is selected, only selectable-for-restore descendants of its set', () => {
  const { bcd, wmd } = storedBackup();
  const r = new RestoreSelection(bcd, [wmd], RUNNING);
  throwsVss(() => r.addRestoreSubcomponent(ref('', 'writerData'), 'writerData', 'Set1'), 'VSS_E_BAD_STATE', /select "writerData"/);
  r.setSelectedForRestore(ref('', 'writerData'));
  throwsVss(() => r.addRestoreSubcomponent(ref('', 'writerData'), 'writerData\\Set1', 'Jan'), 'E_INVALIDARG', /"writerData\\Set1\\Jan" is not selectable for restore/);
  throwsVss(() => r.addRestoreSubcomponent(ref('', 'writerData'), 'Security', 'UserInfo'), 'E_INVALIDARG', /"Security\\UserInfo" is not a descendant of "writerData"/);
  throwsVss(() => r.addRestoreSubcomponent(ref('', 'writerData'), 'writerData', 'Nope'), 'VSS_E_OBJECT_NOT_FOUND', /writerData\\Nope/);
  throwsVss(() => r.addRestoreSubcomponent(ref('', 'writerData'), 'writerData\\\\x', 'Nope'), 'E_INVALIDARG', /doubled backslash/);
  throwsVss(() => r.addRestoreSubcomponent(ref('', 'Executables'), 'Executables', 'ConfigFiles'), 'E_INVALIDARG', /backed up explicitly/);
  r.addRestoreSubcomponent(ref('', 'writerData'), 'writerData', 'Set2');
  throwsVss(() => r.addRestoreSubcomponent(ref('', 'writerData'), 'writerData', 'Set2'), 'VSS_E_OBJECT_ALREADY_EXISTS');
  r.close();
  throwsVss(() => r.setSelectedForRestore(ref('', 'Executables')), 'VSS_E_BAD_STATE', /PreRestore/);
  throwsVss(() => r.addRestoreSubcomponent(ref('', 'writerData'), 'writerData', 'Usage'), 'VSS_E_BAD_STATE');
  throwsVss(() => r.addNewTarget(ref('', 'writerData'), '/data/writerData', '*', false, '/new'), 'VSS_E_BAD_STATE');
});

test('a subcomponent implicit in Usage\'s own backup-time set is added to Usage, not writerData', () => {
  const { bcd, wmd } = storedBackup({}, [['writerData', 'Usage']]);
  const r = new RestoreSelection(bcd, [wmd], RUNNING);
  r.setSelectedForRestore(ref('writerData', 'Usage'));
  throwsVss(() => r.addRestoreSubcomponent(ref('writerData', 'Usage'), 'writerData', 'Set1'), 'E_INVALIDARG', /not a descendant/);
  throwsVss(() => r.addRestoreSubcomponent(ref('writerData', 'Usage'), 'writerData\\Usage', 'Jan'), 'E_INVALIDARG', /not selectable for restore/);
});

test('restore set: whole set, or only added subcomponents; destinations follow the method', () => {
  const { bcd, wmd, set } = storedBackup({ mappings: true });
  const r = new RestoreSelection(bcd, [wmd], RUNNING);
  r.setSelectedForRestore(ref('', 'writerData'));
  r.addRestoreSubcomponent(ref('', 'writerData'), 'writerData', 'Set1');
  r.setSelectedForRestore(ref('', 'Executables'));
  r.close();
  const rs = computeRestoreSet(bcd, [wmd], set.entries);
  assert.deepEqual(rs.plans.map((p) => p.definingComponent.fullPath), ['Executables', 'writerData']);
  const wd = rs.plans[1]!;
  assert.deepEqual(wd.subcomponents.map((s) => s.fullPath), ['writerData\\Set1']);
  assert.deepEqual([...new Set(wd.files.map((f) => f.entry.component.fullPath))], ['writerData\\Set1', 'writerData\\Set1\\Jan', 'writerData\\Set1\\Dec']);
  // RESTORE_IF_CAN_REPLACE: in place, with the writer's mapping as the fallback.
  assert.equal(wd.copyMode, 'if-can-replace');
  const f = wd.files[0]!;
  assert.equal(f.via, 'original');
  assert.equal(f.destination, f.entry.path);
  assert.equal(f.fallback, `/alt${f.entry.path}`);
  assert.deepEqual(wd.errors, []);
});

test('restore targets: ALTERNATE and RESTORE_TO_ALTERNATE_LOCATION need mappings; ORIGINAL_LOCATION ignores them; DIRECTED per file', () => {
  for (const [method, target, expectVia, expectErrors] of [
    [RestoreMethod.RESTORE_TO_ALTERNATE_LOCATION, RestoreTarget.ORIGINAL, 'alternate-mapping', false],
    [RestoreMethod.RESTORE_IF_CAN_REPLACE, RestoreTarget.ALTERNATE, 'alternate-mapping', false],
    [RestoreMethod.RESTORE_TO_ALTERNATE_LOCATION, RestoreTarget.ORIGINAL_LOCATION, 'original', false],
    [RestoreMethod.RESTORE_AT_REBOOT, RestoreTarget.ALTERNATE, 'original', false], // targets cannot affect at-reboot restores
  ] as const) {
    for (const mappings of [true, false]) {
      const { bcd, wmd, set } = storedBackup({ method, mappings });
      const r = new RestoreSelection(bcd, [wmd], RUNNING);
      r.setSelectedForRestore(ref('', 'Executables'));
      r.close();
      bcd.getComponent(wmd.identity.writerId, undefined, '', 'Executables').setRestoreTarget(target); // the writer, in PreRestore
      const plan = computeRestoreSet(bcd, [wmd], set.entries).plans[0]!;
      if (expectVia === 'alternate-mapping' && !mappings) {
        assert.equal(plan.files.length, 0);
        assert.equal(plan.errors[0]?.code, 'VSS_E_OBJECT_NOT_FOUND');
        assert.match(plan.errors[0]!.message, /declares no mapping/);
      } else {
        assert.equal(plan.errors.length, expectErrors ? 1 : 0, plan.errors.map((e) => e.message).join());
        assert.ok(plan.files.length === 2 && plan.files.every((x) => x.via === expectVia), `${method}/${target}: ${plan.files.map((x) => x.via)}`);
        if (expectVia === 'alternate-mapping') assert.equal(plan.files[0]!.destination, '/alt/data/Executables/a.dat');
      }
    }
  }
  // DIRECTED: the named file goes where the writer says, with ranges; a target naming no file is an error.
  const { bcd, wmd, set } = storedBackup();
  const r = new RestoreSelection(bcd, [wmd], RUNNING);
  r.setSelectedForRestore(ref('', 'Executables'));
  r.close();
  const c = bcd.getComponent(wmd.identity.writerId, undefined, '', 'Executables');
  c.setRestoreTarget(RestoreTarget.DIRECTED);
  c.addDirectedTarget('/data/Executables', 'a.dat', '0:10', '/restored', 'a2.dat', '0:10');
  c.addDirectedTarget('/data/Executables', 'ghost', '0:1', '/restored', 'g', '0:1');
  const plan = computeRestoreSet(bcd, [wmd], set.entries).plans[0]!;
  assert.deepEqual(plan.files.map((f) => `${f.via}:${f.destination}`), ['directed:/restored/a2.dat', 'original:/data/Executables/b.log']);
  assert.equal(plan.files[0]!.sourceRanges, '0:10');
  assert.equal(plan.errors.length, 1);
  assert.match(plan.errors[0]!.message, /ghost/);
});

test('new targets and mappings used: exact file set of the defining component\'s set, else a typed error naming it', () => {
  const { bcd, wmd, set } = storedBackup({ schema: BackupSchema.WRITER_SUPPORTS_NEW_TARGET, mappings: true });
  const r = new RestoreSelection(bcd, [wmd], RUNNING);
  r.setSelectedForRestore(ref('', 'writerData'));
  // Per-file-set properties go on the defining component, with a member's exact file set.
  r.addNewTarget(ref('', 'writerData'), '/data/writerData/Set1/', '*', false, '/new/set1');
  throwsVss(() => r.addNewTarget(ref('', 'writerData'), '/data/writerData/Set1', '*.dat', false, '/x'), 'VSS_E_OBJECT_NOT_FOUND', /\/data\/writerData\/Set1 \*\.dat/);
  throwsVss(() => r.addNewTarget(ref('', 'writerData'), '/data/writerData/Set1', '*', true, '/x'), 'VSS_E_OBJECT_NOT_FOUND', /recursive/);
  throwsVss(() => r.addNewTarget(ref('', 'writerData'), '/data/Executables', '*', false, '/x'), 'VSS_E_OBJECT_NOT_FOUND', /"writerData"/);
  throwsVss(() => r.addNewTarget(ref('', 'writerData'), '/data', 'a/b', false, '/x'), 'E_INVALIDARG', /"a\/b"/);
  r.close();
  const plan = computeRestoreSet(bcd, [wmd], set.entries).plans[0]!;
  const set1 = plan.files.filter((f) => f.entry.component.fullPath === 'writerData\\Set1');
  assert.deepEqual(set1.map((f) => `${f.via}:${f.destination}`), ['new-target:/new/set1/a.dat', 'new-target:/new/set1/b.log']);
  assert.ok(plan.files.filter((f) => f.entry.component.fullPath !== 'writerData\\Set1').every((f) => f.via === 'original'));
  assert.equal(plan.fileSets.find((s) => s.component.fullPath === 'writerData\\Set1')!.newTarget?.alternatePath, '/new/set1');
  // Recording a mapping used (allowed after PreRestore, while copying).
  r.addAlternativeLocationMapping(ref('', 'writerData'), '/data/writerData/Set2', '*', false, '/alt/data/writerData/Set2');
  throwsVss(() => r.addAlternativeLocationMapping(ref('', 'writerData'), '/nowhere', '*', false, '/x'), 'VSS_E_OBJECT_NOT_FOUND', /\/nowhere/);
  assert.equal(computeRestoreSet(bcd, [wmd], set.entries).plans[0]!.fileSets.find((s) => s.component.fullPath === 'writerData\\Set2')!.mappingsUsed.length, 1);
  // A writer without VSS_BS_WRITER_SUPPORTS_NEW_TARGET refuses new targets.
  const plain = storedBackup();
  const r2 = new RestoreSelection(plain.bcd, [plain.wmd], RUNNING);
  throwsVss(() => r2.addNewTarget(ref('', 'writerData'), '/data/writerData/Set1', '*', false, '/x'), 'E_INVALIDARG', /new targets/);
});

test('restore set from a stored BCD with a bad subcomponent or new target: typed errors naming the value', () => {
  const { bcd, wmd, set } = storedBackup({ schema: BackupSchema.WRITER_SUPPORTS_NEW_TARGET });
  const c = bcd.getComponent(wmd.identity.writerId, undefined, '', 'writerData');
  c.setSelectedForRestore(true);
  c.addNewTarget('/not/a/set', '*', false, '/x');
  const plan = computeRestoreSet(bcd, [wmd], set.entries).plans[0]!;
  assert.match(plan.errors[0]!.message, /\/not\/a\/set/);
  c.addRestoreSubcomponent('Security', 'UserInfo');
  throwsVss(() => computeRestoreSet(bcd, [wmd], set.entries), 'E_INVALIDARG', /"Security\\UserInfo".*not a descendant/);
  // Restore needs the stored metadata of every writer in the document.
  throwsVss(() => computeRestoreSet(bcd, [], set.entries), 'VSS_E_OBJECT_NOT_FOUND', /stored writer metadata/);
});

test('method and plan properties: set-wide ones come from the defining component; UNDEFINED is a writer error', () => {
  const b = storedBackup({ method: RestoreMethod.RESTORE_AT_REBOOT_IF_CANNOT_REPLACE });
  const r = new RestoreSelection(b.bcd, [b.wmd], RUNNING);
  r.setSelectedForRestore(ref('', 'writerData'));
  const c = b.bcd.getComponent(b.wmd.identity.writerId, undefined, '', 'writerData');
  c.setRestoreOptions('"Roll Forward"="None"');
  c.setAdditionalRestores(true);
  r.close();
  const plan = computeRestoreSet(b.bcd, [b.wmd], b.set.entries).plans[0]!;
  assert.equal(plan.copyMode, 'at-reboot-if-cannot-replace');
  assert.equal(plan.restoreOptions, '"Roll Forward"="None"');
  assert.equal(plan.additionalRestores, true);
  assert.equal(plan.files.length, 22);
  // A writer with no restore method (genuine BITS documents): files listed, and an error.
  (b.wmd as { restoreMethod: unknown }).restoreMethod = undefined;
  const p2 = computeRestoreSet(b.bcd, [b.wmd], b.set.entries).plans[0]!;
  assert.equal(p2.copyMode, 'none');
  assert.match(p2.errors[0]!.message, /no restore method/);
});
