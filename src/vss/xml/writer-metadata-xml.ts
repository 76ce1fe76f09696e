// Writer Metadata Document <-> XML, in the genuine Windows format (docs/xml.md).
import {
  ComponentType,
  DEFAULT_FILESPEC_BACKUP_TYPE,
  RestoreMethod,
  restoreMethodCodec,
  SourceType,
  sourceTypeCodec,
  UsageType,
  usageTypeCodec,
  WriterRestore,
  writerRestoreCodec,
} from '../enums.js';
import {
  type AlternateLocationMapping,
  type FileDescriptor,
  type FileSpec,
  type RestoreMethodInfo,
  type WmdComponent,
  type WriterIdentity,
  WriterMetadata,
} from '../writer-metadata.js';
import { fullPath } from '../strings.js';
import { AttributeReader, attr, decodeDocument, type Frame, readXml, type XmlElement, type XmlSink, writeXml, yesNo } from './tree.js';

export const WMD_NAMESPACE = 'x-schema:#VssWriterMetadataInfo';

/** IVssExamineWriterMetadata::LoadFromXML. Throws VSS_E_INVALID_XML_DOCUMENT with line and column. */
export function parseWriterMetadata(input: string | Uint8Array, source?: string): WriterMetadata {
  let result: WriterMetadata | undefined;
  readXml(decodeDocument(input, source), source, (root) => writerMetadataFrame(root, new AttributeReader(source), (wmd) => (result = wmd)));
  return result!;
}

/** The frame of a WRITER_METADATA root; `done` receives the model when the root closes. */
export function writerMetadataFrame(root: XmlElement, a: AttributeReader, done: (wmd: WriterMetadata) => void): Frame {
  a.expectRoot(root, 'WRITER_METADATA');
  let identity: WriterIdentity | undefined;
  let restoreMethod: RestoreMethodInfo | undefined;
  let sawRestoreMethod = false;
  let sawLocations = false;
  let restoreMethodAfterLocations = false;
  const mappings: AlternateLocationMapping[] = [];
  const components: WmdComponent[] = [];
  const excludeFiles: FileSpec[] = [];
  const excludeFilesFromSnapshot: FileSpec[] = [];
  const seen = new Set<string>();
  let order = '';

  const mappingFrame: Frame = {
    open(el) {
      if (el.name === 'ALTERNATE_LOCATION_MAPPING') mappings.push(mapping(el, a));
      return undefined;
    },
  };
  const locationsFrame: Frame = {
    open(el) {
      switch (el.name) {
        case 'FILE_GROUP':
        case 'DATABASE': {
          const c = component(el, a);
          const key = fullPath(c.logicalPath, c.componentName);
          if (seen.has(key)) a.fail(el, `component "${key}" appears twice: expected each logical path and name once per writer`);
          seen.add(key);
          components.push(c);
          order += 'C';
          return componentFrame(c, a);
        }
        case 'EXCLUDE_FILES':
          excludeFiles.push(fileSpec(el, a));
          order += 'X';
          return undefined;
        case 'EXCLUDE_FILES_FROM_SNAPSHOT':
          excludeFilesFromSnapshot.push(fileSpec(el, a));
          order += 'S';
          return undefined;
        case 'ALTERNATE_LOCATION_MAPPING':
          mappings.push(mapping(el, a));
          return undefined;
        case 'FILE_LIST':
        case 'DATABASE_FILES':
        case 'DATABASE_LOGFILES':
          return a.fail(el, `<${el.name}> directly inside <BACKUP_LOCATIONS>: expected it inside a <FILE_GROUP> or <DATABASE>`);
      }
      return undefined;
    },
  };

  return {
    open(el) {
      switch (el.name) {
        case 'IDENTIFICATION':
          a.once(root.name, el, identity !== undefined);
          identity = {
            writerId: a.guid(el, 'writerId'),
            instanceId: a.guid(el, 'instanceId'),
            instanceName: a.str(el, 'instanceName') ?? '',
            writerName: a.required(el, 'friendlyName'),
            usage: a.enumToken(el, 'usage', usageTypeCodec, UsageType.UNDEFINED),
            source: a.enumToken(el, 'dataSource', sourceTypeCodec, SourceType.UNDEFINED),
            versionMajor: a.uint(el, 'majorVersion'),
            versionMinor: a.uint(el, 'minorVersion'),
          };
          return undefined;
        case 'RESTORE_METHOD':
          a.once(root.name, el, sawRestoreMethod);
          sawRestoreMethod = true;
          restoreMethodAfterLocations = sawLocations;
          restoreMethod = {
            method: a.enumToken(el, 'method', restoreMethodCodec),
            service: a.str(el, 'service') ?? '',
            userProcedure: a.str(el, 'userProcedure') ?? '',
            writerRestore: a.enumToken(el, 'writerRestore', writerRestoreCodec, WriterRestore.UNDEFINED),
            rebootRequired: a.bool(el, 'rebootRequired'),
          };
          return mappingFrame;
        case 'BACKUP_LOCATIONS':
          a.once(root.name, el, sawLocations);
          sawLocations = true;
          return locationsFrame;
      }
      return undefined;
    },
    close() {
      a.requireChild(root, identity !== undefined, 'IDENTIFICATION');
      a.requireChild(root, sawLocations, 'BACKUP_LOCATIONS');
      done(
        new WriterMetadata(
          {
            version: a.str(root, 'version') ?? '1.2',
            identity: identity!,
            restoreMethod,
            alternateLocationMappings: mappings,
            backupSchema: a.uint(root, 'backupSchema'),
            components,
            excludeFiles,
            excludeFilesFromSnapshot,
          },
          { restoreMethodAfterLocations, locationOrder: order },
        ),
      );
    },
  };
}

function fileSpec(el: XmlElement, a: AttributeReader): FileSpec {
  return { path: a.required(el, 'path'), filespec: a.required(el, 'filespec'), recursive: a.bool(el, 'recursive') };
}

function mapping(el: XmlElement, a: AttributeReader): AlternateLocationMapping {
  return { path: a.required(el, 'path'), filespec: a.required(el, 'filespec'), recursive: a.bool(el, 'recursive'), destination: a.required(el, 'alternatePath') };
}

function descriptor(el: XmlElement, a: AttributeReader): FileDescriptor {
  const d: FileDescriptor = {
    path: a.required(el, 'path'),
    filespec: a.required(el, 'filespec'),
    recursive: a.bool(el, 'recursive'),
    backupTypeMask: a.uint(el, 'filespecBackupType', DEFAULT_FILESPEC_BACKUP_TYPE),
  };
  const alt = el.attrs.alternatePath;
  if (alt) d.alternateLocation = alt;
  return d;
}

function component(el: XmlElement, a: AttributeReader): WmdComponent {
  const name = a.required(el, 'componentName');
  if (name.includes('\\')) a.fail(el, `componentName "${name}" contains a backslash: expected hierarchy in logicalPath`);
  const c: WmdComponent = {
    type: el.name === 'DATABASE' ? ComponentType.DATABASE : ComponentType.FILEGROUP,
    logicalPath: a.str(el, 'logicalPath') ?? '',
    componentName: name,
    caption: a.str(el, 'caption') ?? '',
    restoreMetadata: a.bool(el, 'restoreMetadata'),
    notifyOnBackupComplete: a.bool(el, 'notifyOnBackupComplete'),
    selectable: a.bool(el, 'selectable'),
    selectableForRestore: a.bool(el, 'selectableForRestore'),
    componentFlags: a.uint(el, 'componentFlags'),
    files: [],
    databaseFiles: [],
    logFiles: [],
    dependencies: [],
  };
  const icon = el.attrs.icon;
  if (icon) c.icon = new Uint8Array(Buffer.from(icon, 'base64'));
  return c;
}

function componentFrame(c: WmdComponent, a: AttributeReader): Frame {
  const isDatabase = c.type === ComponentType.DATABASE;
  return {
    open(el) {
      switch (el.name) {
        case 'FILE_LIST':
          if (isDatabase) a.fail(el, '<FILE_LIST> inside <DATABASE>: expected <DATABASE_FILES> or <DATABASE_LOGFILES>');
          c.files.push(descriptor(el, a));
          break;
        case 'DATABASE_FILES':
        case 'DATABASE_LOGFILES':
          if (!isDatabase) a.fail(el, `<${el.name}> inside <FILE_GROUP>: expected <FILE_LIST>`);
          (el.name === 'DATABASE_FILES' ? c.databaseFiles : c.logFiles).push(descriptor(el, a));
          break;
        case 'DEPENDENCY':
          c.dependencies.push({ writerId: a.guid(el, 'writerId'), logicalPath: a.str(el, 'logicalPath') ?? '', componentName: a.required(el, 'componentName') });
          break;
      }
      return undefined;
    },
  };
}

// Output ------------------------------------------------------------------------------

function writeFileSpec(tag: string, f: FileSpec): string {
  return `<${tag}${attr('path', f.path)}${attr('filespec', f.filespec)}${attr('recursive', yesNo(f.recursive))}/>`;
}

function writeMapping(m: AlternateLocationMapping): string {
  return `<ALTERNATE_LOCATION_MAPPING${attr('path', m.path)}${attr('filespec', m.filespec)}${attr('recursive', yesNo(m.recursive))}${attr('alternatePath', m.destination)}/>`;
}

function writeDescriptor(tag: string, f: FileDescriptor, withRecursive: boolean): string {
  // Windows writes recursive only when it is yes.
  return `<${tag}${attr('path', f.path)}${attr('filespec', f.filespec)}${withRecursive && f.recursive ? ' recursive="yes"' : ''}${attr('alternatePath', f.alternateLocation || undefined)}${attr('filespecBackupType', f.backupTypeMask)}/>`;
}

function writeComponent(c: WmdComponent, out: XmlSink): void {
  const tag = c.type === ComponentType.DATABASE ? 'DATABASE' : 'FILE_GROUP';
  const head =
    `<${tag}${attr('logicalPath', c.logicalPath || undefined)}${attr('componentName', c.componentName)}${attr('caption', c.caption || undefined)}` +
    `${attr('icon', c.icon && c.icon.length ? Buffer.from(c.icon).toString('base64') : undefined)}` +
    `${attr('restoreMetadata', yesNo(c.restoreMetadata))}${attr('notifyOnBackupComplete', yesNo(c.notifyOnBackupComplete))}` +
    `${attr('selectable', yesNo(c.selectable))}${attr('selectableForRestore', yesNo(c.selectableForRestore))}${attr('componentFlags', c.componentFlags)}`;
  if (c.files.length + c.databaseFiles.length + c.logFiles.length + c.dependencies.length === 0) {
    out.push(`${head}/>`);
    return;
  }
  out.push(`${head}>`);
  for (const f of c.files) out.push(writeDescriptor('FILE_LIST', f, true));
  for (const f of c.databaseFiles) out.push(writeDescriptor('DATABASE_FILES', f, false));
  for (const f of c.logFiles) out.push(writeDescriptor('DATABASE_LOGFILES', f, false));
  for (const d of c.dependencies) {
    out.push(`<DEPENDENCY${attr('writerId', d.writerId.spelling)}${attr('logicalPath', d.logicalPath || undefined)}${attr('componentName', d.componentName)}/>`);
  }
  out.push(`</${tag}>`);
}

/** IVssExamineWriterMetadata::SaveAsXML: one line, no declaration, the writer's own GUID spelling. */
export function writeWriterMetadata(wmd: WriterMetadata): string {
  return writeXml((out) => writeDocument(wmd, out));
}

function writeDocument(wmd: WriterMetadata, out: XmlSink): void {
  const id = wmd.identity;
  out.push(`<WRITER_METADATA xmlns="${WMD_NAMESPACE}"${attr('version', wmd.version)}${attr('backupSchema', wmd.backupSchema || undefined)}>`);
  out.push(
    `<IDENTIFICATION${attr('writerId', id.writerId.spelling)}${attr('instanceId', id.instanceId.spelling)}${attr('instanceName', id.instanceName || undefined)}` +
      `${attr('friendlyName', id.writerName)}${attr('usage', usageTypeCodec.tokenOf(id.usage))}${attr('dataSource', sourceTypeCodec.tokenOf(id.source))}` +
      `${attr('majorVersion', id.versionMajor)}${attr('minorVersion', id.versionMinor)}/>`,
  );
  const restore = writeRestoreMethod(wmd.restoreMethod, wmd.alternateLocationMappings);
  const after = wmd.layout?.restoreMethodAfterLocations ?? false;
  if (!after) out.push(restore);
  out.push('<BACKUP_LOCATIONS>');
  // Mappings without a restore method have nowhere else to go.
  if (!wmd.restoreMethod) for (const m of wmd.alternateLocationMappings) out.push(writeMapping(m));
  writeLocations(wmd, out);
  out.push('</BACKUP_LOCATIONS>');
  if (after) out.push(restore);
  out.push('</WRITER_METADATA>');
}

function writeRestoreMethod(rm: RestoreMethodInfo | undefined, mappings: readonly AlternateLocationMapping[]): string {
  if (!rm) return '';
  const head =
    `<RESTORE_METHOD${attr('method', restoreMethodCodec.tokenOf(rm.method) ?? restoreMethodCodec.tokenOf(RestoreMethod.UNDEFINED))}` +
    `${attr('service', rm.service || undefined)}${attr('userProcedure', rm.userProcedure || undefined)}` +
    `${attr('writerRestore', writerRestoreCodec.tokenOf(rm.writerRestore))}${attr('rebootRequired', yesNo(rm.rebootRequired))}`;
  return mappings.length === 0 ? `${head}/>` : `${head}>${mappings.map(writeMapping).join('')}</RESTORE_METHOD>`;
}

/** BACKUP_LOCATIONS children in the document's own order when it is known and still fits. */
function writeLocations(wmd: WriterMetadata, out: XmlSink): void {
  const lists = { C: wmd.components, X: wmd.excludeFiles, S: wmd.excludeFilesFromSnapshot };
  let order = wmd.layout?.locationOrder ?? '';
  const count = (ch: string) => order.split(ch).length - 1;
  if (order.length !== lists.C.length + lists.X.length + lists.S.length || count('C') !== lists.C.length || count('X') !== lists.X.length) {
    order = 'C'.repeat(lists.C.length) + 'X'.repeat(lists.X.length) + 'S'.repeat(lists.S.length);
  }
  const next = { C: 0, X: 0, S: 0 };
  for (const ch of order as Iterable<'C' | 'X' | 'S'>) {
    const i = next[ch]++;
    if (ch === 'C') writeComponent(lists.C[i]!, out);
    else out.push(writeFileSpec(ch === 'X' ? 'EXCLUDE_FILES' : 'EXCLUDE_FILES_FROM_SNAPSHOT', lists[ch][i]!));
  }
}
