// Property tests over random component trees and file trees (fast-check, 200+ runs each).
// The oracles below recompute what the module must produce from the rules directly, by
// scanning, so they share no index or matcher with the code under test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BackupComponentsDocument } from '../../src/vss/backup-components.js';
import { ComponentType, RestoreMethod, SourceType, UsageType, WriterRestore } from '../../src/vss/enums.js';
import { VssError } from '../../src/vss/errors.js';
import { fullPath } from '../../src/vss/strings.js';
import { WriterMetadataBuilder, type WriterMetadata } from '../../src/vss/writer-metadata.js';
import { BackupSelection, computeBackupSet, computeRestoreSet, MemoryFileTree, RestoreSelection } from '../../src/vss/selection/index.js';

const RUNS = { numRuns: 200 };
const WID = '22222222-0000-0000-0000-000000000001';

interface Comp { lp: string; name: string; selectable: boolean; selR: boolean; spec: string; recursive: boolean }
interface Exclude { comp: number; sub: string; spec: string; recursive: boolean }
interface World { comps: Comp[]; files: { comp: number; rel: string }[]; excludes: Exclude[]; ops: number[] }

const compArb: fc.Arbitrary<Comp> = fc.record({
  lp: fc.array(fc.constantFrom('A', 'B', 'C'), { maxLength: 3 }).map((a) => a.join('\\')),
  name: fc.constantFrom('A', 'B', 'C', 'x'),
  selectable: fc.boolean(),
  selR: fc.boolean(),
  spec: fc.constantFrom('*', '*.a', 'f?', 'f1'),
  recursive: fc.boolean(),
});
const worldArb: fc.Arbitrary<World> = fc.record({
  comps: fc.uniqueArray(compArb, { minLength: 1, maxLength: 20, selector: (c) => fullPath(c.lp, c.name).toUpperCase() }),
  files: fc.array(fc.record({ comp: fc.nat(), rel: fc.constantFrom('f1', 'f2.a', 'x.a', 'sub/f3.a', 'sub/deep/f1', 'sub/empty/', 'e/') }), { maxLength: 60 }),
  excludes: fc.array(fc.record({ comp: fc.nat(), sub: fc.constantFrom('', '/sub'), spec: fc.constantFrom('*', '*.a', 'f1', 'empty'), recursive: fc.boolean() }), { maxLength: 3 }),
  ops: fc.array(fc.nat(), { maxLength: 25 }),
});

const dir = (i: number) => `/d/c${i}`;

function build(w: World): { wmd: WriterMetadata; tree: MemoryFileTree } {
  const b = new WriterMetadataBuilder({ writerId: WID, instanceId: '22222222-0000-0000-0000-0000000000aa', writerName: 'Random', usage: UsageType.USERDATA, source: SourceType.OTHER });
  w.comps.forEach((c, i) => {
    b.addComponent({ type: ComponentType.FILEGROUP, logicalPath: c.lp, componentName: c.name, selectable: c.selectable, selectableForRestore: c.selR });
    b.addFilesToFileGroup(c.lp, c.name, dir(i), c.spec, c.recursive);
  });
  for (const e of w.excludes) b.addExcludeFiles(`${dir(e.comp % w.comps.length)}${e.sub}`, e.spec, e.recursive);
  b.setRestoreMethod(RestoreMethod.RESTORE_IF_CAN_REPLACE, undefined, undefined, WriterRestore.ALWAYS, false);
  const tree = new MemoryFileTree();
  for (const f of w.files) {
    const p = `${dir(f.comp % w.comps.length)}/${f.rel}`;
    if (p.endsWith('/')) tree.addDir(p.slice(0, -1));
    else if (!tree.allFiles().includes(p)) tree.add(p);
  }
  return { wmd: b.build(), tree };
}

const specRe = (spec: string) => new RegExp(`^${spec.replace(/\./g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);

/** Oracle: is `path` excluded by the writer's list? Scans every rule. */
function excluded(w: World, path: string): boolean {
  const d = path.slice(0, path.lastIndexOf('/'));
  const name = path.slice(path.lastIndexOf('/') + 1);
  return w.excludes.some((e) => {
    const ed = `${dir(e.comp % w.comps.length)}${e.sub}`;
    return (d === ed || (e.recursive && d.startsWith(`${ed}/`))) && specRe(e.spec).test(name);
  });
}

/** Oracle: files component i's file set lists (before exclusion). */
function listed(w: World, tree: MemoryFileTree, i: number): string[] {
  const c = w.comps[i]!;
  return tree.allFiles().filter((p) => {
    if (!p.startsWith(`${dir(i)}/`)) return false;
    const rest = p.slice(dir(i).length + 1);
    return (c.recursive || !rest.includes('/')) && specRe(c.spec).test(rest.slice(rest.lastIndexOf('/') + 1));
  });
}

/** Oracle: is B an ancestor of A by the prefix rule (case-insensitive)? */
function isAncestor(w: World, a: number, b: number): boolean {
  const lp = w.comps[a]!.lp.toUpperCase().split('\\');
  const fp = fullPath(w.comps[b]!.lp, w.comps[b]!.name).toUpperCase().split('\\');
  return w.comps[a]!.lp !== '' && fp.length <= lp.length && fp.every((e, k) => lp[k] === e);
}

function select(w: World, wmd: WriterMetadata, ops: readonly number[]): { s: BackupSelection; accepted: number[] } {
  const s = new BackupSelection([wmd]);
  const accepted: number[] = [];
  for (const op of ops) {
    const c = w.comps[op % w.comps.length]!;
    try {
      s.addComponent({ writerId: WID, logicalPath: c.lp, componentName: c.name });
      accepted.push(op % w.comps.length);
    } catch (e) {
      assert.ok(VssError.is(e), String(e));
    }
  }
  return { s, accepted };
}

test('property: every file of every included component (explicit or implicit) is in the backup set, unless excluded', () => {
  fc.assert(
    fc.property(worldArb, (w) => {
      const { wmd, tree } = build(w);
      const { s, accepted } = select(w, wmd, w.ops);
      s.addRequiredComponents();
      const set = computeBackupSet(s.result(), tree);
      const paths = new Set(set.entries.map((e) => `${e.component.fullPath}|${e.path}`));
      const explicit = new Set(s.result().writers.flatMap((x) => x.components.map((c) => c.node.index)));
      for (const i of accepted) assert.ok(explicit.has(i));
      w.comps.forEach((c, i) => {
        // Oracle for inclusion: explicit, or some explicit selectable ancestor.
        const included = explicit.has(i) || [...explicit].some((a) => w.comps[a]!.selectable && isAncestor(w, i, a));
        const files = listed(w, tree, i);
        const failed = set.failures.some((f) => f.component.fullPath === fullPath(c.lp, c.name));
        assert.equal(failed, included && !/[*?]/.test(c.spec) && files.length === 0, `failure of ${fullPath(c.lp, c.name)}`);
        for (const p of files) {
          const inSet = paths.has(`${fullPath(c.lp, c.name)}|${p}`);
          assert.equal(inSet, included && !excluded(w, p), `${p} of ${fullPath(c.lp, c.name)} (included=${included})`);
        }
      });
    }),
    RUNS,
  );
});

test('property: no excluded file or directory is ever in the backup set', () => {
  fc.assert(
    fc.property(worldArb, (w) => {
      const { wmd, tree } = build(w);
      const s = new BackupSelection([wmd]);
      // Everything includable, to expose as many files as possible.
      for (let i = 0; i < w.comps.length; i++) {
        try {
          s.addComponent({ writerId: WID, logicalPath: w.comps[i]!.lp, componentName: w.comps[i]!.name });
        } catch { /* implicit-only or nested: covered by an ancestor */ }
      }
      s.addRequiredComponents();
      for (const e of computeBackupSet(s.result(), tree).entries) assert.ok(!excluded(w, e.path), `${e.path} is excluded`);
    }),
    RUNS,
  );
});

test('property: a required component is never left out silently', () => {
  fc.assert(
    fc.property(worldArb, (w) => {
      const { wmd } = build(w);
      const { s } = select(w, wmd, w.ops);
      // Oracle for "required": nonselectable with no selectable ancestor.
      const required = w.comps.map((_, i) => i).filter((i) => !w.comps[i]!.selectable && !w.comps.some((_, a) => w.comps[a]!.selectable && isAncestor(w, i, a)));
      let result;
      try {
        result = s.result();
      } catch (e) {
        assert.ok(VssError.is(e, 'E_INVALIDARG'));
        const explicit = new Set(s.writers[0]!.explicit);
        const missing = required.filter((i) => ![...explicit].some((n) => n.index === i));
        assert.ok(missing.length > 0);
        for (const i of missing) assert.ok(e.message.includes(`"${fullPath(w.comps[i]!.lp, w.comps[i]!.name)}"`), `${e.message} names ${i}`);
        return;
      }
      for (const wr of result.writers) {
        const explicit = new Set(wr.components.map((c) => c.node.index));
        for (const i of required) assert.ok(explicit.has(i), `required ${fullPath(w.comps[i]!.lp, w.comps[i]!.name)} left out`);
      }
    }),
    RUNS,
  );
});

const restoreOpsArb = fc.array(fc.record({ comp: fc.nat(), sub: fc.option(fc.nat(), { nil: undefined }) }), { maxLength: 12 });

function restoreRun(w: World, wmd: WriterMetadata, bcdXmlLess: () => BackupComponentsDocument, ops: { comp: number; sub: number | undefined }[]) {
  const bcd = bcdXmlLess();
  const r = new RestoreSelection(bcd, [wmd], [{ writerId: WID }]);
  const accepted: typeof ops = [];
  const explicit = bcd.writers[0]?.components ?? [];
  for (const op of ops.filter((o) => o.sub === undefined).concat(ops.filter((o) => o.sub !== undefined))) {
    if (explicit.length === 0) break;
    const c = explicit[op.comp % explicit.length]!;
    const at = { writerId: WID, logicalPath: c.logicalPath, componentName: c.componentName };
    try {
      if (op.sub === undefined) r.setSelectedForRestore(at);
      else r.addRestoreSubcomponent(at, w.comps[op.sub % w.comps.length]!.lp, w.comps[op.sub % w.comps.length]!.name);
      accepted.push(op);
    } catch (e) {
      assert.ok(VssError.is(e), String(e));
    }
  }
  r.close();
  return { bcd, accepted };
}

test('property: a restore set only names files of the backup set, of components selected for restore', () => {
  fc.assert(
    fc.property(worldArb, restoreOpsArb, (w, rops) => {
      const { wmd, tree } = build(w);
      const { s } = select(w, wmd, w.ops);
      s.addRequiredComponents();
      const set = computeBackupSet(s.result(), tree);
      const key = (e: { definingComponent: { fullPath: string }; component: { fullPath: string }; path: string }) => `${e.definingComponent.fullPath}|${e.component.fullPath}|${e.path}`;
      const inBackup = new Set(set.entries.map(key));
      const { bcd } = restoreRun(w, wmd, () => {
        const d = new BackupComponentsDocument();
        s.applyTo(d);
        return d;
      }, rops);
      const selected = new Set((bcd.writers[0]?.components ?? []).filter((c) => c.isSelectedForRestore()).map((c) => c.fullPath));
      for (const plan of computeRestoreSet(bcd, [wmd], set.entries).plans) {
        assert.ok(selected.has(plan.definingComponent.fullPath));
        for (const f of plan.files) {
          assert.ok(inBackup.has(key(f.entry)), `${key(f.entry)} is not in the backup set`);
          assert.equal(f.entry.definingComponent.fullPath, plan.definingComponent.fullPath);
        }
      }
    }),
    RUNS,
  );
});

test('property: selecting the same things in a different order gives the same backup and restore sets', () => {
  fc.assert(
    fc.property(worldArb, restoreOpsArb, fc.nat(), (w, rops, seed) => {
      const { wmd, tree } = build(w);
      const first = select(w, wmd, w.ops);
      // The accepted additions, in another order: all must be accepted again.
      const shuffled = shuffle(first.accepted, seed);
      const second = select(w, wmd, shuffled);
      assert.deepEqual(second.accepted.length, first.accepted.length);
      first.s.addRequiredComponents();
      second.s.addRequiredComponents();
      const a = computeBackupSet(first.s.result(), tree);
      const b = computeBackupSet(second.s.result(), tree);
      assert.deepEqual(b.entries, a.entries);
      assert.deepEqual(b.failures.map((f) => f.error.message), a.failures.map((f) => f.error.message));
      const docOf = (s: BackupSelection) => () => {
        const d = new BackupComponentsDocument();
        s.applyTo(d);
        return d;
      };
      const r1 = restoreRun(w, wmd, docOf(first.s), rops);
      const selects = shuffle(r1.accepted.filter((o) => o.sub === undefined), seed + 1);
      const subs = shuffle(r1.accepted.filter((o) => o.sub !== undefined), seed + 2);
      const r2 = restoreRun(w, wmd, docOf(second.s), [...selects, ...subs]);
      assert.equal(r2.accepted.length, r1.accepted.length);
      const plans = (d: BackupComponentsDocument) => computeRestoreSet(d, [wmd], a.entries).plans.map((p) => ({ d: p.definingComponent.fullPath, subs: p.subcomponents.map((x) => x.fullPath), files: p.files.map((f) => `${f.entry.component.fullPath}|${f.destination}`) }));
      assert.deepEqual(plans(r2.bcd), plans(r1.bcd));
    }),
    RUNS,
  );
});

function shuffle<T>(a: readonly T[], seed: number): T[] {
  const out = [...a];
  let x = seed + 1;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
