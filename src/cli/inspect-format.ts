// Human-readable summaries of the two VSS documents, for `shadowcopy inspect`.
import {
  type BackupComponentsDocument,
  BACKUP_SCHEMA_PREFIX,
  BackupSchema,
  backupTypeCodec,
  COMPONENT_FLAGS_PREFIX,
  ComponentFlags,
  componentTypeCodec,
  FileRestoreStatus,
  fileRestoreStatusCodec,
  flagNames,
  RestoreTarget,
  restoreTargetCodec,
  RestoreType,
  restoreTypeCodec,
  restoreMethodCodec,
  sourceTypeCodec,
  usageTypeCodec,
  type WmdComponent,
  type WriterMetadata,
  writerRestoreCodec,
} from '../vss/index.js';

const oneLine = (s: string): string => s.replace(/\s*[\r\n]+\s*/g, ' ');

function schemaText(mask: number): string {
  return mask === 0 ? '0 (full backups only)' : `${mask} (${flagNames(BACKUP_SCHEMA_PREFIX, BackupSchema, mask).join(' | ')})`;
}

interface TreeNode {
  name: string;
  children: Map<string, TreeNode>;
  component?: WmdComponent;
}

/** Components arranged by logical path: intermediate path elements need not be components. */
function componentTree(components: readonly WmdComponent[]): TreeNode {
  const root: TreeNode = { name: '', children: new Map() };
  for (const c of components) {
    let node = root;
    const elements = [...(c.logicalPath ? c.logicalPath.split('\\') : []), c.componentName];
    for (const el of elements) {
      let next = node.children.get(el);
      if (!next) {
        next = { name: el, children: new Map() };
        node.children.set(el, next);
      }
      node = next;
    }
    node.component = c;
  }
  return root;
}

function describeComponent(c: WmdComponent): string {
  const kind = c.selectable ? 'selectable' : 'not selectable';
  const parts = [componentTypeCodec.tokenOf(c.type)!, kind];
  if (c.selectableForRestore) parts.push('selectable for restore');
  const files = c.files.length + c.databaseFiles.length;
  parts.push(`${files} file set${files === 1 ? '' : 's'}`);
  if (c.logFiles.length) parts.push(`${c.logFiles.length} log file set${c.logFiles.length === 1 ? '' : 's'}`);
  if (c.dependencies.length) parts.push(`${c.dependencies.length} dependenc${c.dependencies.length === 1 ? 'y' : 'ies'}`);
  if (c.componentFlags) parts.push(flagNames(COMPONENT_FLAGS_PREFIX, ComponentFlags, c.componentFlags).join('|'));
  return parts.join(', ');
}

export function formatWriterMetadata(wmd: WriterMetadata): string {
  const id = wmd.identity;
  const rm = wmd.getRestoreMethod();
  const lines = [
    'Writer Metadata Document',
    `  Writer name:     ${id.writerName}`,
    `  Writer class id: ${id.writerId}`,
    `  Instance id:     ${id.instanceId}`,
    ...(id.instanceName ? [`  Instance name:   ${id.instanceName}`] : []),
    `  Usage:           ${usageTypeCodec.nameOf(id.usage)}`,
    `  Source:          ${sourceTypeCodec.nameOf(id.source)}`,
    `  Version:         ${id.versionMajor}.${id.versionMinor}`,
    `  Backup schema:   ${schemaText(wmd.backupSchema)}`,
    wmd.restoreMethod
      ? `  Restore method:  ${restoreMethodCodec.nameOf(rm.method)}${rm.service ? ` (service ${rm.service})` : ''}, writer restore ${writerRestoreCodec.nameOf(rm.writerRestore)}, reboot ${rm.rebootRequired ? 'required' : 'not required'}`
      : '  Restore method:  none declared (VSS_RME_UNDEFINED)',
  ];
  for (const m of wmd.alternateLocationMappings) lines.push(`    mapping ${m.path} ${m.filespec}${m.recursive ? ' (recursive)' : ''} -> ${m.destination}`);
  lines.push(`  Components (${wmd.components.length}):`);
  const walk = (node: TreeNode, depth: number): void => {
    for (const child of node.children.values()) {
      const pad = '    ' + '  '.repeat(depth);
      const label = child.component ? `${child.name}  [${describeComponent(child.component)}]` : `${child.name}  (logical path only)`;
      lines.push(pad + label);
      if (child.component?.caption && child.component.caption !== child.name) lines.push(`${pad}  caption: ${oneLine(child.component.caption)}`);
      walk(child, depth + 1);
    }
  };
  walk(componentTree(wmd.components), 0);
  if (wmd.excludeFiles.length) {
    lines.push(`  Excluded files (${wmd.excludeFiles.length}):`);
    for (const x of wmd.excludeFiles) lines.push(`    ${x.path} ${x.filespec}${x.recursive ? ' (recursive)' : ''}`);
  }
  if (wmd.excludeFilesFromSnapshot.length) {
    lines.push(`  Excluded from the snapshot (${wmd.excludeFilesFromSnapshot.length}):`);
    for (const x of wmd.excludeFilesFromSnapshot) lines.push(`    ${x.path} ${x.filespec}${x.recursive ? ' (recursive)' : ''}`);
  }
  return lines.join('\n');
}

export function formatBackupComponents(doc: BackupComponentsDocument): string {
  const lines = [
    'Backup Components Document',
    `  Backup type:              ${backupTypeCodec.nameOf(doc.backupType)}`,
    `  Select components:        ${doc.selectComponents ? 'yes' : 'no'}`,
    `  Bootable system state:    ${doc.bootableSystemStateBackup ? 'yes' : 'no'}`,
    `  Partial file support:     ${doc.partialFileSupport ? 'yes' : 'no'}`,
    `  Snapshot set id:          ${doc.snapshotSetId ?? '(none)'}`,
    ...(doc.restoreType !== RestoreType.UNDEFINED ? [`  Restore type:             ${restoreTypeCodec.nameOf(doc.restoreType)}`] : []),
    `  Writers (${doc.writers.length}):`,
  ];
  for (const w of doc.writers) {
    lines.push(`    Writer ${w.writerId}, instance ${w.instanceId}${w.instanceName ? ` (${w.instanceName})` : ''}, backup schema ${schemaText(w.backupSchema)}`);
    for (const c of w.components) {
      lines.push(`      ${c.fullPath}  [${componentTypeCodec.tokenOf(c.componentType)}]`);
      const props: [string, string | undefined][] = [
        ['backup succeeded', c.backupSucceededSet ? (c.backupSucceeded ? 'yes' : 'no') : undefined],
        ['backup stamp', c.backupStamp || undefined],
        ['previous backup stamp', c.previousBackupStamp || undefined],
        ['backup options', c.backupOptions || undefined],
        ['backup metadata', c.backupMetadata ? `${c.backupMetadata.length} characters` : undefined],
        ['selected for restore', c.selectedForRestore ? 'yes' : undefined],
        ['restore subcomponents', c.restoreSubcomponents.length ? c.restoreSubcomponents.map((s) => (s.logicalPath ? `${s.logicalPath}\\${s.componentName}` : s.componentName)).join(', ') : undefined],
        ['restore options', c.restoreOptions || undefined],
        ['additional restores', c.additionalRestores ? 'yes' : undefined],
        ['restore target', c.restoreTarget !== RestoreTarget.ORIGINAL ? restoreTargetCodec.nameOf(c.restoreTarget) : undefined],
        ['file restore status', c.fileRestoreStatus !== FileRestoreStatus.UNDEFINED ? fileRestoreStatusCodec.nameOf(c.fileRestoreStatus) : undefined],
        ['pre-restore failure', c.preRestoreFailureMsg || undefined],
        ['post-restore failure', c.postRestoreFailureMsg || undefined],
        ['partial files', c.partialFiles.length ? String(c.partialFiles.length) : undefined],
        ['differenced files', c.differencedFiles.length ? String(c.differencedFiles.length) : undefined],
        ['new targets', c.newTargets.length ? String(c.newTargets.length) : undefined],
        ['alternate location mappings', c.alternateLocationMappings.length ? String(c.alternateLocationMappings.length) : undefined],
        ['directed targets', c.directedTargets.length ? String(c.directedTargets.length) : undefined],
        ['failure', c.failure ? `0x${c.failure.hr.toString(16)} ${c.failure.applicationMessage}` : undefined],
      ];
      for (const [k, v] of props) if (v !== undefined) lines.push(`        ${k}: ${v}`);
    }
  }
  return lines.join('\n');
}
