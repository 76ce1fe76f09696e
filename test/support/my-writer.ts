// The "MyWriter" tree of spec §13.4, with one file set per component so backup and
// restore sets can be checked file by file: component <LP\name> owns /data/<LP/name>/*.
import { ComponentType, RestoreMethod, SourceType, UsageType, WriterRestore } from '../../src/vss/enums.js';
import { WriterMetadataBuilder, type WriterMetadata } from '../../src/vss/writer-metadata.js';
import { MemoryFileTree } from '../../src/vss/selection/index.js';

export const MY_WRITER_ID = '11111111-2222-3333-4444-555555555555';
export const MY_INSTANCE_ID = '11111111-2222-3333-4444-000000000001';

// [name, LP, selectable, selectableForRestore]
export const MY_WRITER_TREE: readonly [string, string, boolean, boolean][] = [
  ['Executables', '', false, false],
  ['ConfigFiles', 'Executables', false, false],
  ['LicenseInfo', '', true, false],
  ['Security', '', true, false],
  ['UserInfo', 'Security', false, false],
  ['Certificates', 'Security', false, false],
  ['writerData', '', true, true],
  ['Set1', 'writerData', false, true],
  ['Jan', 'writerData\\Set1', false, false],
  ['Dec', 'writerData\\Set1', false, false],
  ['Set2', 'writerData', false, true],
  ['Jan', 'writerData\\Set2', false, false],
  ['Dec', 'writerData\\Set2', false, false],
  ['Query', 'writerData\\QueryLogs', false, false],
  ['Usage', 'writerData', true, true],
  ['Jan', 'writerData\\Usage', false, false],
  ['Dec', 'writerData\\Usage', false, false],
];

export function dirOf(lp: string, name: string): string {
  return `/data/${[...(lp ? lp.split('\\') : []), name].join('/')}`;
}

export interface MyWriterOptions {
  method?: RestoreMethod;
  mappings?: boolean;
  schema?: number;
  instanceId?: string;
}

export function myWriter(o: MyWriterOptions = {}): WriterMetadata {
  const b = new WriterMetadataBuilder({ writerId: MY_WRITER_ID, instanceId: o.instanceId ?? MY_INSTANCE_ID, writerName: 'MyWriter', usage: UsageType.USERDATA, source: SourceType.OTHER });
  for (const [name, lp, sel, selR] of MY_WRITER_TREE) {
    b.addComponent({ type: ComponentType.FILEGROUP, logicalPath: lp, componentName: name, selectable: sel, selectableForRestore: selR });
    b.addFilesToFileGroup(lp, name, dirOf(lp, name), '*', false);
    if (o.mappings) b.addAlternateLocationMapping(dirOf(lp, name), '*', false, `/alt${dirOf(lp, name)}`);
  }
  b.setRestoreMethod(o.method ?? RestoreMethod.RESTORE_IF_CAN_REPLACE, undefined, undefined, WriterRestore.ALWAYS, false);
  if (o.schema) b.setBackupSchema(o.schema);
  return b.build();
}

/** Two files in the directory of every MyWriter component (skipping the subdirectories that hold children). */
export function myWriterFiles(): MemoryFileTree {
  const t = new MemoryFileTree();
  for (const [name, lp] of MY_WRITER_TREE) {
    t.add(`${dirOf(lp, name)}/a.dat`, { size: 1 });
    t.add(`${dirOf(lp, name)}/b.log`, { size: 2 });
  }
  return t;
}
