// Backup Components Document <-> XML, in the genuine Windows format (docs/xml.md).
// Names with no genuine sample (restore-time state, spec §12.4) use one canonical spelling
// of ours, written only when the value is set, so genuine documents reproduce byte for byte.
import {
  BackupComponentsDocument,
  type Component,
  WriterComponents,
} from '../backup-components.js';
import {
  BackupType,
  backupTypeCodec,
  componentTypeCodec,
  FileRestoreStatus,
  fileRestoreStatusCodec,
  RestoreTarget,
  restoreTargetCodec,
  RestoreType,
  restoreTypeCodec,
  RollForwardType,
  rollForwardTypeCodec,
} from '../enums.js';
import { AttributeReader, attr, decodeDocument, type Frame, readXml, type XmlElement, type XmlSink, writeXml, yesNo } from './tree.js';

export const BCD_NAMESPACE = 'x-schema:#VssComponentMetadata';

/** IVssBackupComponents::InitializeForRestore / LoadFromXML. Throws VSS_E_INVALID_XML_DOCUMENT with line and column. */
export function parseBackupComponents(input: string | Uint8Array, source?: string): BackupComponentsDocument {
  let result: BackupComponentsDocument | undefined;
  readXml(decodeDocument(input, source), source, (root) => backupComponentsFrame(root, new AttributeReader(source), (doc) => (result = doc)));
  return result!;
}

/** The frame of a BACKUP_COMPONENTS root; `done` receives the document when the root closes. */
export function backupComponentsFrame(root: XmlElement, a: AttributeReader, done: (doc: BackupComponentsDocument) => void): Frame {
  a.expectRoot(root, 'BACKUP_COMPONENTS');
  const doc = new BackupComponentsDocument();
  doc.version = a.str(root, 'version') ?? '1.2';
  doc.bootableSystemStateBackup = a.bool(root, 'bootableSystemStateBackup');
  doc.selectComponents = a.bool(root, 'selectComponents');
  doc.backupType = a.enumToken(root, 'backupType', backupTypeCodec, BackupType.UNDEFINED);
  doc.partialFileSupport = a.bool(root, 'partialFileSupport');
  doc.snapshotSetId = a.optionalGuid(root, 'snapshotSetId');
  doc.restoreType = a.enumToken(root, 'restoreType', restoreTypeCodec, RestoreType.UNDEFINED);
  return {
    open(wEl) {
      if (wEl.name !== 'WRITER_COMPONENTS') return undefined;
      const w = new WriterComponents(a.guid(wEl, 'writerId'), a.guid(wEl, 'instanceId'), a.str(wEl, 'instanceName') ?? '', a.uint(wEl, 'backupSchema'));
      if (doc.findWriter(w.writerId, w.instanceId)) a.fail(wEl, `writer ${w.writerId} instance ${w.instanceId} appears twice: expected one <WRITER_COMPONENTS> per writer instance`);
      doc.writers.push(w);
      return { open: (cEl) => (cEl.name === 'COMPONENT' ? componentFrame(readComponent(cEl, w, a), a) : undefined) };
    },
    close: () => done(doc),
  };
}

function readComponent(el: XmlElement, w: WriterComponents, a: AttributeReader): Component {
  const type = a.enumToken(el, 'componentType', componentTypeCodec);
  const lp = a.str(el, 'logicalPath') ?? '';
  const name = a.required(el, 'componentName');
  if (w.findComponent(lp, name)) a.fail(el, `component "${lp ? `${lp}\\` : ''}${name}" appears twice in one writer: expected each logical path and name once`);
  const c = w.addComponent(type, lp, name);
  c.backupStamp = a.str(el, 'backupStamp') ?? '';
  c.previousBackupStamp = a.str(el, 'previousBackupStamp') ?? '';
  if (el.attrs.backupSucceeded !== undefined) c.setBackupSucceeded(a.bool(el, 'backupSucceeded'));
  c.backupOptions = a.str(el, 'backupOptions') ?? '';
  c.selectedForRestore = a.bool(el, 'selectedForRestore');
  c.restoreInstanceId = a.optionalGuid(el, 'restoreInstanceId');
  c.additionalRestores = a.bool(el, 'additionalRestores');
  c.restoreOptions = a.str(el, 'restoreOptions') ?? '';
  c.restoreTarget = a.enumToken(el, 'restoreTarget', restoreTargetCodec, RestoreTarget.ORIGINAL);
  c.fileRestoreStatus = a.enumToken(el, 'filesRestored', fileRestoreStatusCodec, FileRestoreStatus.UNDEFINED);
  c.preRestoreFailureMsg = a.str(el, 'preRestoreFailureMsg') ?? '';
  c.postRestoreFailureMsg = a.str(el, 'postRestoreFailureMsg') ?? '';
  c.prepareForBackupFailureMsg = a.str(el, 'prepareForBackupFailureMsg') ?? '';
  c.postSnapshotFailureMsg = a.str(el, 'postSnapshotFailureMsg') ?? '';
  c.authoritativeRestore = a.bool(el, 'authoritativeRestore');
  c.rollForwardType = a.enumToken(el, 'rollForwardType', rollForwardTypeCodec, RollForwardType.UNDEFINED);
  c.rollForwardPoint = a.str(el, 'rollForwardPoint') ?? '';
  c.restoreName = a.str(el, 'restoreName') ?? '';
  if (el.attrs.failureHr !== undefined) {
    c.failure = { hr: a.uint(el, 'failureHr'), hrApplication: a.uint(el, 'failureApplicationHr'), applicationMessage: a.str(el, 'failureMsg') ?? '' };
  }
  return c;
}

function componentFrame(c: Component, a: AttributeReader): Frame {
  return {
    open(ch) {
      switch (ch.name) {
        case 'BACKUP_METADATA':
          c.backupMetadata = a.str(ch, 'metadata') ?? '';
          break;
        case 'RESTORE_METADATA':
          c.restoreMetadata = a.str(ch, 'metadata') ?? '';
          break;
        case 'PARTIAL_FILE':
          c.partialFiles.push({ path: a.required(ch, 'path'), filename: a.required(ch, 'filename'), ranges: a.required(ch, 'ranges'), metadata: a.str(ch, 'metadata') ?? '' });
          break;
        case 'DIFFERENCED_FILE': {
          const low = BigInt(a.uint(ch, 'lastModifyTimeLow'));
          const high = BigInt(a.uint(ch, 'lastModifyTimeHigh'));
          c.differencedFiles.push({
            path: a.required(ch, 'path'),
            filespec: a.required(ch, 'filespec'),
            recursive: a.bool(ch, 'recursive'),
            lsnString: a.str(ch, 'lastModifyLSN') ?? '',
            lastModifyTime: (high << 32n) | low,
          });
          break;
        }
        case 'RESTORE_SUBCOMPONENT':
          c.restoreSubcomponents.push({ logicalPath: a.str(ch, 'logicalPath') ?? '', componentName: a.required(ch, 'componentName'), repair: a.bool(ch, 'repair') });
          break;
        case 'NEW_TARGET':
          c.newTargets.push({ path: a.required(ch, 'path'), filespec: a.required(ch, 'filespec'), recursive: a.bool(ch, 'recursive'), alternatePath: a.required(ch, 'alternatePath') });
          break;
        case 'ALTERNATE_LOCATION_MAPPING':
          c.alternateLocationMappings.push({ path: a.required(ch, 'path'), filespec: a.required(ch, 'filespec'), recursive: a.bool(ch, 'recursive'), destination: a.required(ch, 'alternatePath') });
          break;
        case 'DIRECTED_TARGET':
          c.directedTargets.push({
            sourcePath: a.required(ch, 'sourcePath'),
            sourceFilename: a.required(ch, 'sourceFilespec'),
            sourceRangeList: a.str(ch, 'sourceRanges') ?? '',
            destinationPath: a.required(ch, 'targetPath'),
            destinationFilename: a.required(ch, 'targetFilespec'),
            destinationRangeList: a.str(ch, 'targetRanges') ?? '',
          });
          break;
      }
      return undefined;
    },
  };
}

// Output ------------------------------------------------------------------------------

const opt = (s: string): string | undefined => (s === '' ? undefined : s);
const flag = (b: boolean): string | undefined => (b ? 'yes' : undefined);

function writeComponent(c: Component, out: XmlSink): void {
  const head =
    `<COMPONENT${attr('logicalPath', opt(c.logicalPath))}${attr('componentName', c.componentName)}${attr('componentType', componentTypeCodec.tokenOf(c.componentType))}` +
    `${attr('backupStamp', opt(c.backupStamp))}${attr('previousBackupStamp', opt(c.previousBackupStamp))}` +
    `${attr('backupSucceeded', c.backupSucceededSet ? yesNo(c.backupSucceeded) : undefined)}${attr('backupOptions', opt(c.backupOptions))}` +
    `${attr('selectedForRestore', flag(c.selectedForRestore))}${attr('restoreInstanceId', c.restoreInstanceId?.value)}` +
    `${attr('additionalRestores', flag(c.additionalRestores))}${attr('restoreOptions', opt(c.restoreOptions))}` +
    `${attr('restoreTarget', c.restoreTarget === RestoreTarget.ORIGINAL ? undefined : restoreTargetCodec.tokenOf(c.restoreTarget))}` +
    `${attr('filesRestored', c.fileRestoreStatus === FileRestoreStatus.UNDEFINED ? undefined : fileRestoreStatusCodec.tokenOf(c.fileRestoreStatus))}` +
    `${attr('preRestoreFailureMsg', opt(c.preRestoreFailureMsg))}${attr('postRestoreFailureMsg', opt(c.postRestoreFailureMsg))}` +
    `${attr('prepareForBackupFailureMsg', opt(c.prepareForBackupFailureMsg))}${attr('postSnapshotFailureMsg', opt(c.postSnapshotFailureMsg))}` +
    `${attr('authoritativeRestore', flag(c.authoritativeRestore))}` +
    `${attr('rollForwardType', c.rollForwardType === RollForwardType.UNDEFINED ? undefined : rollForwardTypeCodec.tokenOf(c.rollForwardType))}` +
    `${attr('rollForwardPoint', opt(c.rollForwardPoint))}${attr('restoreName', opt(c.restoreName))}` +
    (c.failure ? `${attr('failureHr', c.failure.hr)}${attr('failureApplicationHr', c.failure.hrApplication)}${attr('failureMsg', opt(c.failure.applicationMessage))}` : '');
  const children: string[] = [];
  if (c.backupMetadata) children.push(`<BACKUP_METADATA${attr('metadata', c.backupMetadata)}/>`);
  if (c.restoreMetadata) children.push(`<RESTORE_METADATA${attr('metadata', c.restoreMetadata)}/>`);
  for (const p of c.partialFiles) children.push(`<PARTIAL_FILE${attr('path', p.path)}${attr('filename', p.filename)}${attr('ranges', p.ranges)}${attr('metadata', opt(p.metadata))}/>`);
  for (const d of c.differencedFiles) {
    const t = BigInt.asUintN(64, d.lastModifyTime);
    children.push(
      `<DIFFERENCED_FILE${attr('path', d.path)}${attr('filespec', d.filespec)}${attr('recursive', yesNo(d.recursive))}` +
        `${attr('lastModifyTimeLow', Number(t & 0xffffffffn))}${attr('lastModifyTimeHigh', Number(t >> 32n))}${attr('lastModifyLSN', opt(d.lsnString))}/>`,
    );
  }
  for (const s of c.restoreSubcomponents) children.push(`<RESTORE_SUBCOMPONENT${attr('logicalPath', opt(s.logicalPath))}${attr('componentName', s.componentName)}${attr('repair', yesNo(s.repair))}/>`);
  for (const n of c.newTargets) children.push(`<NEW_TARGET${attr('path', n.path)}${attr('filespec', n.filespec)}${attr('recursive', yesNo(n.recursive))}${attr('alternatePath', n.alternatePath)}/>`);
  for (const m of c.alternateLocationMappings) children.push(`<ALTERNATE_LOCATION_MAPPING${attr('path', m.path)}${attr('filespec', m.filespec)}${attr('recursive', yesNo(m.recursive))}${attr('alternatePath', m.destination)}/>`);
  for (const d of c.directedTargets) {
    children.push(
      `<DIRECTED_TARGET${attr('sourcePath', d.sourcePath)}${attr('sourceFilespec', d.sourceFilename)}${attr('sourceRanges', opt(d.sourceRangeList))}` +
        `${attr('targetPath', d.destinationPath)}${attr('targetFilespec', d.destinationFilename)}${attr('targetRanges', opt(d.destinationRangeList))}/>`,
    );
  }
  out.push(children.length ? `${head}>${children.join('')}</COMPONENT>` : `${head}/>`);
}

/** IVssBackupComponents::SaveAsXML: one line, no declaration, lowercase GUIDs. */
export function writeBackupComponents(doc: BackupComponentsDocument): string {
  return writeXml((out) => writeDocument(doc, out));
}

function writeDocument(doc: BackupComponentsDocument, out: XmlSink): void {
  out.push(
    `<BACKUP_COMPONENTS xmlns="${BCD_NAMESPACE}"${attr('version', doc.version)}${attr('bootableSystemStateBackup', yesNo(doc.bootableSystemStateBackup))}` +
      `${attr('selectComponents', yesNo(doc.selectComponents))}${attr('backupType', backupTypeCodec.tokenOf(doc.backupType))}` +
      `${attr('partialFileSupport', yesNo(doc.partialFileSupport))}${attr('snapshotSetId', doc.snapshotSetId?.value)}` +
      `${attr('restoreType', doc.restoreType === RestoreType.UNDEFINED ? undefined : restoreTypeCodec.tokenOf(doc.restoreType))}>`,
  );
  for (const w of doc.writers) {
    const head = `<WRITER_COMPONENTS${attr('instanceId', w.instanceId.value)}${attr('writerId', w.writerId.value)}${attr('instanceName', opt(w.instanceName))}${attr('backupSchema', w.backupSchema)}`;
    if (w.components.length === 0) {
      out.push(`${head}/>`);
      continue;
    }
    out.push(`${head}>`);
    for (const c of w.components) writeComponent(c, out);
    out.push('</WRITER_COMPONENTS>');
  }
  out.push('</BACKUP_COMPONENTS>');
}
