// The Backup Components Document (spec §11): the requester's record of a backup or restore.
// Component mirrors IVssComponent / IVssComponentEx / IVssComponentEx2 with a getter and a
// setter for every property; WriterComponents mirrors IVssWriterComponents.
import { VssError } from './errors.js';
import { Guid } from './guid.js';
import {
  BackupType,
  backupTypeCodec,
  ComponentType,
  componentTypeCodec,
  FileRestoreStatus,
  fileRestoreStatusCodec,
  RestoreTarget,
  restoreTargetCodec,
  RestoreType,
  restoreTypeCodec,
  RollForwardType,
  rollForwardTypeCodec,
} from './enums.js';
import { checkXmlText, fullPath } from './strings.js';
import type { AlternateLocationMapping, FileSpec } from './writer-metadata.js';

export interface PartialFile {
  path: string;
  filename: string;
  /** `offset:length[,…]` or `File=<path>` of a binary ranges file. */
  ranges: string;
  metadata: string;
}

export interface DifferencedFile extends FileSpec {
  lsnString: string;
  /** Last modification time as a Windows FILETIME (100 ns since 1601), kept exact as a bigint. */
  lastModifyTime: bigint;
}

export interface RestoreSubcomponent {
  logicalPath: string;
  componentName: string;
  repair: boolean;
}

export interface DirectedTarget {
  sourcePath: string;
  sourceFilename: string;
  sourceRangeList: string;
  destinationPath: string;
  destinationFilename: string;
  destinationRangeList: string;
}

export interface NewTarget extends FileSpec {
  alternatePath: string;
}

export interface ComponentFailure {
  hr: number;
  hrApplication: number;
  applicationMessage: string;
}

/** One explicitly included component of a writer, and every property VSS keeps for it. */
export class Component {
  readonly logicalPath: string;
  readonly componentName: string;
  readonly componentType: ComponentType;

  backupSucceeded = false;
  /** Whether SetBackupSucceeded was called: an unset value is not written to the document. */
  backupSucceededSet = false;
  backupOptions = '';
  backupMetadata = '';
  backupStamp = '';
  previousBackupStamp = '';
  readonly partialFiles: PartialFile[] = [];
  readonly differencedFiles: DifferencedFile[] = [];
  selectedForRestore = false;
  /** Instance the component is restored to (SetSelectedForRestoreEx), when not the backed-up one. */
  restoreInstanceId: Guid | undefined;
  readonly restoreSubcomponents: RestoreSubcomponent[] = [];
  restoreOptions = '';
  additionalRestores = false;
  readonly newTargets: NewTarget[] = [];
  readonly alternateLocationMappings: AlternateLocationMapping[] = [];
  restoreTarget: RestoreTarget = RestoreTarget.ORIGINAL;
  readonly directedTargets: DirectedTarget[] = [];
  restoreMetadata = '';
  preRestoreFailureMsg = '';
  postRestoreFailureMsg = '';
  prepareForBackupFailureMsg = '';
  postSnapshotFailureMsg = '';
  fileRestoreStatus: FileRestoreStatus = FileRestoreStatus.UNDEFINED;
  authoritativeRestore = false;
  rollForwardType: RollForwardType = RollForwardType.UNDEFINED;
  rollForwardPoint = '';
  restoreName = '';
  failure: ComponentFailure | undefined;

  constructor(componentType: ComponentType, logicalPath: string, componentName: string) {
    if (componentType !== ComponentType.DATABASE && componentType !== ComponentType.FILEGROUP) {
      throw new VssError('E_INVALIDARG', `component type ${componentType} is not VSS_CT_DATABASE or VSS_CT_FILEGROUP`);
    }
    if (!componentName) throw new VssError('E_INVALIDARG', 'the component name is required');
    this.componentType = componentType;
    this.logicalPath = checkXmlText('the logical path', logicalPath ?? '');
    this.componentName = checkXmlText('the component name', componentName);
  }

  /** `LP\name`: how the component is addressed in messages and selection. */
  get fullPath(): string {
    return fullPath(this.logicalPath, this.componentName);
  }

  getLogicalPath(): string { return this.logicalPath; }
  getComponentName(): string { return this.componentName; }
  getComponentType(): ComponentType { return this.componentType; }

  getBackupSucceeded(): boolean { return this.backupSucceeded; }
  setBackupSucceeded(succeeded: boolean): void { this.backupSucceeded = succeeded; this.backupSucceededSet = true; }
  getBackupOptions(): string { return this.backupOptions; }
  setBackupOptions(options: string): void { this.backupOptions = checkXmlText('the backup options', options); }
  getBackupMetadata(): string { return this.backupMetadata; }
  setBackupMetadata(metadata: string): void { this.backupMetadata = checkXmlText('the backup metadata', metadata); }
  getBackupStamp(): string { return this.backupStamp; }
  setBackupStamp(stamp: string): void { this.backupStamp = checkXmlText('the backup stamp', stamp); }
  getPreviousBackupStamp(): string { return this.previousBackupStamp; }
  setPreviousBackupStamp(stamp: string): void { this.previousBackupStamp = checkXmlText('the previous backup stamp', stamp); }

  getPartialFileCount(): number { return this.partialFiles.length; }
  getPartialFile(index: number): PartialFile { return at(this.partialFiles, index, 'partial file'); }
  addPartialFile(path: string, filename: string, ranges: string, metadata = ''): void {
    this.partialFiles.push({ path: req('the path', path), filename: req('the file name', filename), ranges: req('the ranges', ranges), metadata: checkXmlText('the metadata', metadata) });
  }
  /** SetRangesFilePath: the ranges file of partial file `index` was restored elsewhere. */
  setRangesFilePath(index: number, rangesFilePath: string): void {
    at(this.partialFiles, index, 'partial file').ranges = `File=${req('the ranges file path', rangesFilePath)}`;
  }

  getDifferencedFilesCount(): number { return this.differencedFiles.length; }
  getDifferencedFile(index: number): DifferencedFile { return at(this.differencedFiles, index, 'differenced file'); }
  addDifferencedFilesByLastModifyTime(path: string, filespec: string, recursive: boolean, lastModifyTime: bigint): void {
    this.differencedFiles.push({ path: req('the path', path), filespec: req('the file spec', filespec), recursive, lsnString: '', lastModifyTime });
  }
  addDifferencedFilesByLastModifyLSN(path: string, filespec: string, recursive: boolean, lsnString: string): void {
    this.differencedFiles.push({ path: req('the path', path), filespec: req('the file spec', filespec), recursive, lsnString: req('the LSN', lsnString), lastModifyTime: 0n });
  }

  isSelectedForRestore(): boolean { return this.selectedForRestore; }
  setSelectedForRestore(selected: boolean, instanceId?: Guid): void {
    this.selectedForRestore = selected;
    this.restoreInstanceId = instanceId;
  }
  getRestoreSubcomponentCount(): number { return this.restoreSubcomponents.length; }
  getRestoreSubcomponent(index: number): RestoreSubcomponent { return at(this.restoreSubcomponents, index, 'restore subcomponent'); }
  addRestoreSubcomponent(logicalPath: string, componentName: string, repair = false): void {
    if (this.restoreSubcomponents.some((s) => s.logicalPath === logicalPath && s.componentName === componentName)) {
      throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `subcomponent "${fullPath(logicalPath, componentName)}" is already selected for restore under "${this.fullPath}"`);
    }
    this.restoreSubcomponents.push({ logicalPath: checkXmlText('the logical path', logicalPath), componentName: req('the component name', componentName), repair });
  }
  getRestoreOptions(): string { return this.restoreOptions; }
  setRestoreOptions(options: string): void { this.restoreOptions = checkXmlText('the restore options', options); }
  getAdditionalRestores(): boolean { return this.additionalRestores; }
  setAdditionalRestores(additional: boolean): void { this.additionalRestores = additional; }

  getNewTargetCount(): number { return this.newTargets.length; }
  getNewTarget(index: number): NewTarget { return at(this.newTargets, index, 'new target'); }
  addNewTarget(path: string, filespec: string, recursive: boolean, alternatePath: string): void {
    this.newTargets.push({ path: req('the path', path), filespec: req('the file spec', filespec), recursive, alternatePath: req('the new target path', alternatePath) });
  }

  getAlternateLocationMappingCount(): number { return this.alternateLocationMappings.length; }
  getAlternateLocationMapping(index: number): AlternateLocationMapping { return at(this.alternateLocationMappings, index, 'alternate location mapping'); }
  addAlternativeLocationMapping(path: string, filespec: string, recursive: boolean, destination: string): void {
    this.alternateLocationMappings.push({ path: req('the path', path), filespec: req('the file spec', filespec), recursive, destination: req('the destination', destination) });
  }

  getRestoreTarget(): RestoreTarget { return this.restoreTarget; }
  setRestoreTarget(target: RestoreTarget): void {
    if (!restoreTargetCodec.has(target) || target === RestoreTarget.UNDEFINED) {
      throw new VssError('E_INVALIDARG', `restore target ${target} is not a defined VSS_RESTORE_TARGET value`);
    }
    this.restoreTarget = target;
  }
  getDirectedTargetCount(): number { return this.directedTargets.length; }
  getDirectedTarget(index: number): DirectedTarget { return at(this.directedTargets, index, 'directed target'); }
  addDirectedTarget(sourcePath: string, sourceFilename: string, sourceRangeList: string, destinationPath: string, destinationFilename: string, destinationRangeList: string): void {
    this.directedTargets.push({
      sourcePath: req('the source path', sourcePath),
      sourceFilename: req('the source file name', sourceFilename),
      sourceRangeList: checkXmlText('the source ranges', sourceRangeList),
      destinationPath: req('the destination path', destinationPath),
      destinationFilename: req('the destination file name', destinationFilename),
      destinationRangeList: checkXmlText('the destination ranges', destinationRangeList),
    });
  }
  getRestoreMetadata(): string { return this.restoreMetadata; }
  setRestoreMetadata(metadata: string): void { this.restoreMetadata = checkXmlText('the restore metadata', metadata); }

  getPreRestoreFailureMsg(): string { return this.preRestoreFailureMsg; }
  setPreRestoreFailureMsg(msg: string): void { this.preRestoreFailureMsg = checkXmlText('the message', msg); }
  getPostRestoreFailureMsg(): string { return this.postRestoreFailureMsg; }
  setPostRestoreFailureMsg(msg: string): void { this.postRestoreFailureMsg = checkXmlText('the message', msg); }
  getPrepareForBackupFailureMsg(): string { return this.prepareForBackupFailureMsg; }
  setPrepareForBackupFailureMsg(msg: string): void { this.prepareForBackupFailureMsg = checkXmlText('the message', msg); }
  getPostSnapshotFailureMsg(): string { return this.postSnapshotFailureMsg; }
  setPostSnapshotFailureMsg(msg: string): void { this.postSnapshotFailureMsg = checkXmlText('the message', msg); }

  getFileRestoreStatus(): FileRestoreStatus { return this.fileRestoreStatus; }
  setFileRestoreStatus(status: FileRestoreStatus): void {
    if (!fileRestoreStatusCodec.has(status)) throw new VssError('E_INVALIDARG', `file restore status ${status} is not a VSS_FILE_RESTORE_STATUS value`);
    this.fileRestoreStatus = status;
  }

  getAuthoritativeRestore(): boolean { return this.authoritativeRestore; }
  setAuthoritativeRestore(authoritative: boolean): void { this.authoritativeRestore = authoritative; }
  getRollForward(): { type: RollForwardType; point: string } { return { type: this.rollForwardType, point: this.rollForwardPoint }; }
  setRollForward(type: RollForwardType, point = ''): void {
    if (!rollForwardTypeCodec.has(type)) throw new VssError('E_INVALIDARG', `roll-forward type ${type} is not a VSS_ROLLFORWARD_TYPE value`);
    this.rollForwardType = type;
    this.rollForwardPoint = checkXmlText('the roll-forward point', point);
  }
  getRestoreName(): string { return this.restoreName; }
  setRestoreName(name: string): void { this.restoreName = checkXmlText('the restore name', name); }

  getFailure(): ComponentFailure { return this.failure ?? { hr: 0, hrApplication: 0, applicationMessage: '' }; }
  setFailure(hr: number, hrApplication: number, applicationMessage: string): void {
    this.failure = { hr: hr >>> 0, hrApplication: hrApplication >>> 0, applicationMessage: checkXmlText('the message', applicationMessage) };
  }

  toJSON(): unknown {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this)) {
      out[k] = typeof v === 'bigint' ? v.toString() : v;
    }
    out.componentType = componentTypeCodec.nameOf(this.componentType);
    out.restoreTarget = restoreTargetCodec.nameOf(this.restoreTarget);
    out.fileRestoreStatus = fileRestoreStatusCodec.nameOf(this.fileRestoreStatus);
    out.rollForwardType = rollForwardTypeCodec.nameOf(this.rollForwardType);
    out.differencedFiles = this.differencedFiles.map((d) => ({ ...d, lastModifyTime: d.lastModifyTime.toString() }));
    return out;
  }
}

/** IVssWriterComponents: one writer instance's explicit components in the document. */
export class WriterComponents {
  readonly components: Component[] = [];

  constructor(
    readonly writerId: Guid,
    readonly instanceId: Guid,
    readonly instanceName: string = '',
    public backupSchema: number = 0,
  ) {
    checkXmlText('the instance name', instanceName);
  }

  getWriterInfo(): { instanceId: Guid; writerId: Guid } {
    return { instanceId: this.instanceId, writerId: this.writerId };
  }
  getComponentCount(): number { return this.components.length; }
  getComponent(index: number): Component { return at(this.components, index, 'component'); }

  findComponent(logicalPath: string, componentName: string): Component | undefined {
    const key = fullPath(logicalPath ?? '', componentName);
    return this.components.find((c) => c.fullPath === key);
  }

  /** Adds an explicit component; the same logical path and name twice is VSS_E_OBJECT_ALREADY_EXISTS. */
  addComponent(componentType: ComponentType, logicalPath: string, componentName: string): Component {
    if (this.findComponent(logicalPath, componentName)) {
      throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `component "${fullPath(logicalPath, componentName)}" of writer ${this.writerId} is already in the backup components document`);
    }
    const c = new Component(componentType, logicalPath, componentName);
    this.components.push(c);
    return c;
  }
}

export interface BackupState {
  selectComponents: boolean;
  bootableSystemStateBackup: boolean;
  backupType: BackupType;
  partialFileSupport: boolean;
}

/** The whole Backup Components Document. */
export class BackupComponentsDocument {
  version = '1.2';
  backupType: BackupType = BackupType.FULL;
  selectComponents = false;
  bootableSystemStateBackup = false;
  partialFileSupport = false;
  snapshotSetId: Guid | undefined;
  restoreType: RestoreType = RestoreType.UNDEFINED;
  readonly writers: WriterComponents[] = [];

  /** SetBackupState. */
  setBackupState(state: BackupState): void {
    if (!backupTypeCodec.has(state.backupType) || state.backupType === BackupType.UNDEFINED) {
      throw new VssError('E_INVALIDARG', `backup type ${state.backupType} is not a defined VSS_BACKUP_TYPE value`);
    }
    this.selectComponents = state.selectComponents;
    this.bootableSystemStateBackup = state.bootableSystemStateBackup;
    this.backupType = state.backupType;
    this.partialFileSupport = state.partialFileSupport;
  }

  /** SetRestoreState. */
  setRestoreState(restoreType: RestoreType): void {
    if (!restoreTypeCodec.has(restoreType)) throw new VssError('E_INVALIDARG', `restore type ${restoreType} is not a VSS_RESTORE_TYPE value`);
    this.restoreType = restoreType;
  }

  /** GetWriterComponentsCount: counts writers, not components (spec §19.5). */
  getWriterComponentsCount(): number { return this.writers.length; }
  getWriterComponents(index: number): WriterComponents { return at(this.writers, index, 'writer'); }

  /** The entry of a writer instance, if it has one. */
  findWriter(writerId: Guid, instanceId?: Guid): WriterComponents | undefined {
    return this.writers.find((w) => w.writerId.equals(writerId) && (instanceId === undefined || w.instanceId.equals(instanceId)));
  }

  /** The entry of a writer instance, created if missing. */
  writer(writerId: Guid, instanceId: Guid, instanceName = '', backupSchema = 0): WriterComponents {
    let w = this.findWriter(writerId, instanceId);
    if (!w) {
      w = new WriterComponents(writerId, instanceId, instanceName, backupSchema);
      this.writers.push(w);
    }
    return w;
  }

  /** The component of a writer instance, or VSS_E_OBJECT_NOT_FOUND naming what is missing. */
  getComponent(writerId: Guid, instanceId: Guid | undefined, logicalPath: string, componentName: string): Component {
    const w = this.findWriter(writerId, instanceId);
    const c = w?.findComponent(logicalPath, componentName);
    if (!c) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `component "${fullPath(logicalPath, componentName)}" of writer ${writerId} is not in the backup components document; add it first`);
    }
    return c;
  }

  toJSON(): unknown {
    return {
      version: this.version,
      backupType: backupTypeCodec.nameOf(this.backupType),
      selectComponents: this.selectComponents,
      bootableSystemStateBackup: this.bootableSystemStateBackup,
      partialFileSupport: this.partialFileSupport,
      snapshotSetId: this.snapshotSetId,
      restoreType: restoreTypeCodec.nameOf(this.restoreType),
      writers: this.writers,
    };
  }
}

function at<T>(list: readonly T[], index: number, what: string): T {
  const item = Number.isInteger(index) && index >= 0 ? list[index] : undefined;
  if (item === undefined) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `there is no ${what} at index ${index}; there are ${list.length}`);
  return item;
}

function req(what: string, value: string): string {
  if (typeof value !== 'string' || value === '') throw new VssError('E_INVALIDARG', `${what} is required`);
  return checkXmlText(what, value);
}
