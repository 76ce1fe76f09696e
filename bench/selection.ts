// Selection plus backup-set expansion on synthetic writers of 10k and 100k components with
// 10 files each. The goal is linear cost: per-component time of the larger within 1.3× of
// the smaller (components are indexed by full path; nothing scans the component list).
import { medianMs, report } from './report.js';
import { ComponentType, DEFAULT_FILESPEC_BACKUP_TYPE, SourceType, UsageType } from '../src/vss/enums.js';
import { Guid } from '../src/vss/guid.js';
import { WriterMetadata, type WmdComponent } from '../src/vss/writer-metadata.js';
import { BackupSelection, computeBackupSet, MemoryFileTree } from '../src/vss/selection/index.js';

const WRITER = Guid.parse('44444444-0000-0000-0000-000000000001');

/**
 * Groups of 10 components: a selectable top set `gK` with an implicit child, a selectable
 * subcomponent and its implicit children two levels down, and one required component.
 */
function synthetic(n: number): { wmd: WriterMetadata; tree: MemoryFileTree; tops: WmdComponent[] } {
  const components: WmdComponent[] = [];
  const tree = new MemoryFileTree();
  const add = (logicalPath: string, componentName: string, selectable: boolean): WmdComponent => {
    const i = components.length;
    const c: WmdComponent = {
      type: ComponentType.FILEGROUP, logicalPath, componentName, caption: '', restoreMetadata: false, notifyOnBackupComplete: false,
      selectable, selectableForRestore: false, componentFlags: 0,
      files: [{ path: `/data/${Math.floor(i / 1000)}/c${i}`, filespec: '*', recursive: false, backupTypeMask: DEFAULT_FILESPEC_BACKUP_TYPE }],
      databaseFiles: [], logFiles: [], dependencies: [],
    };
    for (let f = 0; f < 10; f++) tree.add(`/data/${Math.floor(i / 1000)}/c${i}/f${f}.dat`, { size: f });
    components.push(c);
    return c;
  };
  const tops: WmdComponent[] = [];
  for (let g = 0; components.length < n; g++) {
    tops.push(add('', `g${g}`, true));
    add(`g${g}`, 'data', false);
    add(`g${g}`, 'logs', false);
    add(`g${g}`, 'sub', true);
    for (const m of ['a', 'b', 'c', 'd', 'e']) add(`g${g}\\sub`, m, false);
    add('', `r${g}`, false);
  }
  const wmd = new WriterMetadata({
    version: '1.2',
    identity: { writerId: WRITER, instanceId: Guid.parse('44444444-0000-0000-0000-0000000000aa'), instanceName: '', writerName: 'Synthetic', usage: UsageType.USERDATA, source: SourceType.OTHER, versionMajor: 0, versionMinor: 0 },
    restoreMethod: undefined, alternateLocationMappings: [], backupSchema: 0, components,
    excludeFiles: [{ path: '/data', filespec: 'f9.dat', recursive: true }], excludeFilesFromSnapshot: [],
  });
  return { wmd, tree, tops };
}

function run(s: ReturnType<typeof synthetic>): number {
  const sel = new BackupSelection([s.wmd]);
  for (const c of s.tops) sel.addComponent({ writerId: WRITER, logicalPath: c.logicalPath, componentName: c.componentName });
  sel.addRequiredComponents();
  const set = computeBackupSet(sel.result(), s.tree);
  return set.entries.length;
}

const small = synthetic(10_000);
const expected = (n: number) => n * 9; // f9.dat is excluded everywhere
if (run(small) !== expected(10_000)) throw new Error(`10k: wrong backup set size ${run(small)}`);
const smallMs = await medianMs(() => run(small), 7, 2);
const large = synthetic(100_000);
if (run(large) !== expected(100_000)) throw new Error('100k: wrong backup set size');
const largeMs = await medianMs(() => run(large), 5, 1);

const perSmall = (smallMs * 1000) / 10_000;
const perLarge = (largeMs * 1000) / 100_000;
report('selection', 'us_per_component_10k', perSmall);
report('selection', 'us_per_component_100k', perLarge);
report('selection', 'ratio_100k_to_10k', perLarge / perSmall, { op: '<=', target: 1.3 });
