// The Writer Metadata Document (spec §10): what a writer publishes at Identify.
// WriterMetadataBuilder mirrors IVssCreateWriterMetadata and enforces its rules;
// WriterMetadata mirrors IVssExamineWriterMetadata. Both are pure and synchronous.
import { VssError } from './errors.js';
import { Guid } from './guid.js';
import {
  BackupSchema,
  ComponentType,
  componentTypeCodec,
  DEFAULT_FILESPEC_BACKUP_TYPE,
  FileSpecBackupType,
  RestoreMethod,
  restoreMethodCodec,
  SourceType,
  sourceTypeCodec,
  UsageType,
  usageTypeCodec,
  WriterRestore,
  writerRestoreCodec,
} from './enums.js';
import { checkComponentName, checkXmlText, fullPath, validateLogicalPath } from './strings.js';

/** A file set: directory, file name pattern, recursion (exclude lists, mappings, new targets). */
export interface FileSpec {
  path: string;
  filespec: string;
  recursive: boolean;
}

/** IVssWMFiledesc: a file set of a component. */
export interface FileDescriptor extends FileSpec {
  /** Backup-time source to read instead of `path` (not a restore destination). */
  alternateLocation?: string;
  /** VSS_FILE_SPEC_BACKUP_TYPE mask; 3855 unless the writer says otherwise. */
  backupTypeMask: number;
}

/** IVssWMDependency: this component needs another writer's component. */
export interface ComponentDependency {
  writerId: Guid;
  logicalPath: string;
  componentName: string;
}

/** A writer-wide restore-time mapping: files of a file set go to `destination`. */
export interface AlternateLocationMapping extends FileSpec {
  destination: string;
}

/** VSS_COMPONENTINFO plus the component's file sets and dependencies. */
export interface WmdComponent {
  type: ComponentType;
  logicalPath: string;
  componentName: string;
  caption: string;
  /** Icon bytes; stored base64 in the XML (our spelling, see docs/xml.md). */
  icon?: Uint8Array;
  restoreMetadata: boolean;
  notifyOnBackupComplete: boolean;
  selectable: boolean;
  selectableForRestore: boolean;
  componentFlags: number;
  /** FILE_GROUP file sets. */
  files: FileDescriptor[];
  /** DATABASE data files. */
  databaseFiles: FileDescriptor[];
  /** DATABASE log files: the unit of log backups. */
  logFiles: FileDescriptor[];
  dependencies: ComponentDependency[];
}

export interface WriterIdentity {
  writerId: Guid;
  instanceId: Guid;
  instanceName: string;
  writerName: string;
  usage: UsageType;
  source: SourceType;
  versionMajor: number;
  versionMinor: number;
}

export interface RestoreMethodInfo {
  method: RestoreMethod;
  /** Service to stop and start (STOP_RESTORE_START, RESTORE_STOP_START). */
  service: string;
  /** Reserved by VSS; kept verbatim. */
  userProcedure: string;
  writerRestore: WriterRestore;
  rebootRequired: boolean;
}

/** How a parsed document was laid out, so saving it again reproduces the bytes. Not part of the model. */
export interface WmdLayout {
  restoreMethodAfterLocations: boolean;
  /** Order of BACKUP_LOCATIONS children: C component, X exclude, S exclude-from-snapshot. */
  locationOrder: string;
}

export interface WriterMetadataData {
  version: string;
  identity: WriterIdentity;
  /** Absent in some genuine documents (BITS, Shadow Copy Optimization): reads as UNDEFINED. */
  restoreMethod: RestoreMethodInfo | undefined;
  alternateLocationMappings: AlternateLocationMapping[];
  backupSchema: number;
  components: WmdComponent[];
  excludeFiles: FileSpec[];
  excludeFilesFromSnapshot: FileSpec[];
}

const COMPONENT_FLAG_MASK = 0x7;
const BACKUP_TYPE_MASK_BITS = 0xf | 0xf00 | FileSpecBackupType.CREATED_DURING_BACKUP;
const BACKUP_SCHEMA_BITS = Object.values(BackupSchema).reduce<number>((a, b) => a | b, 0);

function badArg(message: string): never {
  throw new VssError('E_INVALIDARG', message);
}

function describe(logicalPath: string, componentName: string): string {
  return `component "${fullPath(logicalPath, componentName)}"`;
}

/** IVssExamineWriterMetadata: a writer's published metadata, read-only. */
export class WriterMetadata {
  readonly version: string;
  readonly identity: WriterIdentity;
  readonly restoreMethod: RestoreMethodInfo | undefined;
  readonly alternateLocationMappings: readonly AlternateLocationMapping[];
  readonly backupSchema: number;
  readonly components: readonly WmdComponent[];
  readonly excludeFiles: readonly FileSpec[];
  readonly excludeFilesFromSnapshot: readonly FileSpec[];
  /** Layout of the document this came from, if it was parsed; used when saving it again. */
  layout: WmdLayout | undefined;
  private componentIndex: Map<string, WmdComponent> | undefined;

  constructor(data: WriterMetadataData, layout?: WmdLayout) {
    this.version = data.version;
    this.identity = data.identity;
    this.restoreMethod = data.restoreMethod;
    this.alternateLocationMappings = data.alternateLocationMappings;
    this.backupSchema = data.backupSchema;
    this.components = data.components;
    this.excludeFiles = data.excludeFiles;
    this.excludeFilesFromSnapshot = data.excludeFilesFromSnapshot;
    this.layout = layout;
  }

  getIdentity(): WriterIdentity {
    return this.identity;
  }

  /** Counts as IVssExamineWriterMetadata::GetFileCounts returns them. */
  getFileCounts(): { includeFiles: number; excludeFiles: number; components: number } {
    return { includeFiles: 0, excludeFiles: this.excludeFiles.length, components: this.components.length };
  }

  getComponent(index: number): WmdComponent {
    return at(this.components, index, 'component');
  }

  /** The component with this logical path and name, if the writer declared it. */
  findComponent(logicalPath: string, componentName: string): WmdComponent | undefined {
    this.componentIndex ??= new Map(this.components.map((c) => [fullPath(c.logicalPath, c.componentName), c]));
    return this.componentIndex.get(fullPath(logicalPath ?? '', componentName));
  }

  getExcludeFile(index: number): FileSpec {
    return at(this.excludeFiles, index, 'exclude file');
  }

  getExcludeFromSnapshotFile(index: number): FileSpec {
    return at(this.excludeFilesFromSnapshot, index, 'exclude-from-snapshot file');
  }

  /** The restore method with its mapping count; UNDEFINED when the writer set none. */
  getRestoreMethod(): RestoreMethodInfo & { mappings: number } {
    const rm = this.restoreMethod ?? {
      method: RestoreMethod.UNDEFINED,
      service: '',
      userProcedure: '',
      writerRestore: WriterRestore.UNDEFINED,
      rebootRequired: false,
    };
    return { ...rm, mappings: this.alternateLocationMappings.length };
  }

  getAlternateLocationMapping(index: number): AlternateLocationMapping {
    return at(this.alternateLocationMappings, index, 'alternate location mapping');
  }

  getBackupSchema(): number {
    return this.backupSchema;
  }

  /** The model as plain data (GUIDs as lowercase strings, enums by VSS name): what `inspect --json` prints. */
  toJSON(): unknown {
    const rm = this.restoreMethod;
    return {
      version: this.version,
      identity: {
        ...this.identity,
        usage: usageTypeCodec.nameOf(this.identity.usage),
        source: sourceTypeCodec.nameOf(this.identity.source),
      },
      restoreMethod: rm && {
        ...rm,
        method: restoreMethodCodec.nameOf(rm.method),
        writerRestore: writerRestoreCodec.nameOf(rm.writerRestore),
      },
      alternateLocationMappings: this.alternateLocationMappings,
      backupSchema: this.backupSchema,
      components: this.components.map((c) => ({
        ...c,
        type: componentTypeCodec.nameOf(c.type),
        icon: c.icon && Buffer.from(c.icon).toString('base64'),
      })),
      excludeFiles: this.excludeFiles,
      excludeFilesFromSnapshot: this.excludeFilesFromSnapshot,
    };
  }
}

function at<T>(list: readonly T[], index: number, what: string): T {
  const item = Number.isInteger(index) && index >= 0 ? list[index] : undefined;
  if (item === undefined) {
    throw new VssError('VSS_E_OBJECT_NOT_FOUND', `there is no ${what} at index ${index}; the document has ${list.length}`);
  }
  return item;
}

export interface WriterIdentityInput {
  writerId: Guid | string;
  /** Minted by the coordinator for each run; a fresh one if not given. */
  instanceId?: Guid | string;
  writerName: string;
  instanceName?: string;
  usage: UsageType;
  source: SourceType;
  versionMajor?: number;
  versionMinor?: number;
}

export interface AddComponentInput {
  type: ComponentType;
  logicalPath?: string;
  componentName: string;
  caption?: string;
  icon?: Uint8Array;
  restoreMetadata?: boolean;
  notifyOnBackupComplete?: boolean;
  /** Selectable for backup: always stated, as the API requires. */
  selectable: boolean;
  selectableForRestore?: boolean;
  componentFlags?: number;
}

function toGuid(v: Guid | string, what: string): Guid {
  if (v instanceof Guid) return v;
  const g = Guid.tryParse(v);
  if (!g) badArg(`${what} "${v}" is not a GUID`);
  return g;
}

function checkPath(what: string, path: string): string {
  if (typeof path !== 'string' || path === '') badArg(`${what} is required`);
  if (/[*?]/.test(path)) badArg(`${what} "${path}" contains a wildcard; wildcards belong in the file spec, not the path`);
  return checkXmlText(what, path);
}

function checkFilespec(filespec: string): string {
  if (typeof filespec !== 'string' || filespec === '') badArg('the file spec is required (use "*" for every file)');
  if (/[\\/]/.test(filespec)) badArg(`the file spec "${filespec}" contains a directory separator; put directories in the path`);
  return checkXmlText('the file spec', filespec);
}

function checkMask(mask: number): number {
  if (!Number.isInteger(mask) || mask < 0 || (mask & ~BACKUP_TYPE_MASK_BITS) !== 0) {
    badArg(`backup type mask 0x${(mask >>> 0).toString(16)} has bits outside VSS_FILE_SPEC_BACKUP_TYPE`);
  }
  return mask;
}

/** IVssCreateWriterMetadata: builds a writer's metadata during Identify, enforcing spec §10. */
export class WriterMetadataBuilder {
  private readonly identity: WriterIdentity;
  private restoreMethod: RestoreMethodInfo | undefined;
  private readonly mappings: AlternateLocationMapping[] = [];
  private backupSchema = 0;
  private readonly components: WmdComponent[] = [];
  private readonly byPath = new Map<string, WmdComponent>();
  private readonly excludeFiles: FileSpec[] = [];
  private readonly excludeFilesFromSnapshot: FileSpec[] = [];
  private locationOrder = '';

  constructor(identity: WriterIdentityInput) {
    if (!identity.writerName) badArg('the writer name is required');
    if (!usageTypeCodec.has(identity.usage)) badArg(`usage ${identity.usage} is not a VSS_USAGE_TYPE`);
    if (!sourceTypeCodec.has(identity.source)) badArg(`source ${identity.source} is not a VSS_SOURCE_TYPE`);
    this.identity = {
      writerId: toGuid(identity.writerId, 'the writer class id'),
      instanceId: identity.instanceId === undefined ? Guid.random() : toGuid(identity.instanceId, 'the instance id'),
      instanceName: checkXmlText('the instance name', identity.instanceName ?? ''),
      writerName: checkXmlText('the writer name', identity.writerName),
      usage: identity.usage,
      source: identity.source,
      versionMajor: identity.versionMajor ?? 0,
      versionMinor: identity.versionMinor ?? 0,
    };
  }

  addComponent(input: AddComponentInput): this {
    const logicalPath = validateLogicalPath('the logical path', input.logicalPath ?? '');
    const name = input.componentName;
    if (input.type !== ComponentType.DATABASE && input.type !== ComponentType.FILEGROUP) {
      badArg(`component type ${input.type} is not VSS_CT_DATABASE or VSS_CT_FILEGROUP`);
    }
    checkComponentName('the component name', name);
    const flags = input.componentFlags ?? 0;
    if (!Number.isInteger(flags) || flags < 0 || (flags & ~COMPONENT_FLAG_MASK) !== 0) {
      badArg(`component flags 0x${(flags >>> 0).toString(16)} have bits outside VSS_COMPONENT_FLAGS`);
    }
    const key = fullPath(logicalPath, name);
    if (this.byPath.has(key)) {
      throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `${describe(logicalPath, name)} was already added by this writer; logical path and name must be unique`);
    }
    const component: WmdComponent = {
      type: input.type,
      logicalPath,
      componentName: name,
      caption: checkXmlText('the caption', input.caption ?? ''),
      ...(input.icon && input.icon.length > 0 ? { icon: input.icon } : {}),
      restoreMetadata: input.restoreMetadata ?? false,
      notifyOnBackupComplete: input.notifyOnBackupComplete ?? false,
      selectable: input.selectable,
      selectableForRestore: input.selectableForRestore ?? false,
      componentFlags: flags,
      files: [],
      databaseFiles: [],
      logFiles: [],
      dependencies: [],
    };
    this.components.push(component);
    this.byPath.set(key, component);
    this.locationOrder += 'C';
    return this;
  }

  private component(logicalPath: string | undefined, name: string, type: ComponentType, call: string): WmdComponent {
    const c = this.byPath.get(fullPath(logicalPath ?? '', name));
    if (!c) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `${describe(logicalPath ?? '', name)} does not exist; call addComponent before ${call}`);
    }
    if (c.type !== type) {
      badArg(`${call} needs a ${componentTypeCodec.nameOf(type)} component, but ${describe(c.logicalPath, c.componentName)} is ${componentTypeCodec.nameOf(c.type)}`);
    }
    return c;
  }

  private static addDescriptor(c: WmdComponent, list: FileDescriptor[], d: FileDescriptor): void {
    const all = [...c.files, ...c.databaseFiles, ...c.logFiles];
    if (all.some((e) => e.path === d.path && e.filespec === d.filespec)) {
      throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `${describe(c.logicalPath, c.componentName)} already lists ${d.path} ${d.filespec}; a file may be listed once`);
    }
    list.push(d);
  }

  addFilesToFileGroup(
    logicalPath: string | undefined,
    groupName: string,
    path: string,
    filespec: string,
    recursive: boolean,
    alternateLocation?: string,
    backupTypeMask: number = DEFAULT_FILESPEC_BACKUP_TYPE,
  ): this {
    const c = this.component(logicalPath, groupName, ComponentType.FILEGROUP, 'addFilesToFileGroup');
    const d: FileDescriptor = {
      path: checkPath('the path', path),
      filespec: checkFilespec(filespec),
      recursive: Boolean(recursive),
      ...(alternateLocation ? { alternateLocation: checkPath('the alternate location', alternateLocation) } : {}),
      backupTypeMask: checkMask(backupTypeMask),
    };
    WriterMetadataBuilder.addDescriptor(c, c.files, d);
    return this;
  }

  addDatabaseFiles(logicalPath: string | undefined, databaseName: string, path: string, filespec: string, backupTypeMask: number = DEFAULT_FILESPEC_BACKUP_TYPE): this {
    const c = this.component(logicalPath, databaseName, ComponentType.DATABASE, 'addDatabaseFiles');
    WriterMetadataBuilder.addDescriptor(c, c.databaseFiles, { path: checkPath('the path', path), filespec: checkFilespec(filespec), recursive: false, backupTypeMask: checkMask(backupTypeMask) });
    return this;
  }

  addDatabaseLogFiles(logicalPath: string | undefined, databaseName: string, path: string, filespec: string, backupTypeMask: number = DEFAULT_FILESPEC_BACKUP_TYPE): this {
    const c = this.component(logicalPath, databaseName, ComponentType.DATABASE, 'addDatabaseLogFiles');
    WriterMetadataBuilder.addDescriptor(c, c.logFiles, { path: checkPath('the path', path), filespec: checkFilespec(filespec), recursive: false, backupTypeMask: checkMask(backupTypeMask) });
    return this;
  }

  addExcludeFiles(path: string, filespec: string, recursive: boolean): this {
    this.excludeFiles.push({ path: checkPath('the exclude path', path), filespec: checkFilespec(filespec), recursive: Boolean(recursive) });
    this.locationOrder += 'X';
    return this;
  }

  addExcludeFilesFromSnapshot(path: string, filespec: string, recursive: boolean): this {
    this.excludeFilesFromSnapshot.push({ path: checkPath('the exclude path', path), filespec: checkFilespec(filespec), recursive: Boolean(recursive) });
    this.locationOrder += 'S';
    return this;
  }

  /** A writer-wide restore destination for a file set; the set must be one a component declares (checked at build). */
  addAlternateLocationMapping(path: string, filespec: string, recursive: boolean, destination: string): this {
    this.mappings.push({
      path: checkPath('the mapping path', path),
      filespec: checkFilespec(filespec),
      recursive: Boolean(recursive),
      destination: checkPath('the mapping destination', destination),
    });
    return this;
  }

  addComponentDependency(
    forLogicalPath: string | undefined,
    forComponentName: string,
    onWriterId: Guid | string,
    onLogicalPath: string | undefined,
    onComponentName: string,
  ): this {
    const c = this.byPath.get(fullPath(forLogicalPath ?? '', forComponentName));
    if (!c) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `${describe(forLogicalPath ?? '', forComponentName)} does not exist; call addComponent before addComponentDependency`);
    }
    const writerId = toGuid(onWriterId, 'the writer class id of the dependency');
    if (writerId.equals(this.identity.writerId)) {
      badArg('a component dependency must name another writer; dependencies inside one writer are expressed by logical paths');
    }
    if (!onComponentName) badArg('the dependency target component name is required');
    c.dependencies.push({
      writerId,
      logicalPath: checkXmlText('the dependency logical path', onLogicalPath ?? ''),
      componentName: checkXmlText('the dependency component name', onComponentName),
    });
    return this;
  }

  setRestoreMethod(method: RestoreMethod, service: string | undefined, userProcedure: string | undefined, writerRestore: WriterRestore, rebootRequired: boolean): this {
    if (!restoreMethodCodec.has(method) || method === RestoreMethod.UNDEFINED) {
      badArg(`restore method ${method} is not a defined VSS_RESTOREMETHOD_ENUM value`);
    }
    if (!writerRestoreCodec.has(writerRestore) || writerRestore === WriterRestore.UNDEFINED) {
      badArg(`writerRestore ${writerRestore} is not a defined VSS_WRITERRESTORE_ENUM value`);
    }
    const needsService = method === RestoreMethod.STOP_RESTORE_START || method === RestoreMethod.RESTORE_STOP_START;
    if (needsService && !service) badArg(`${restoreMethodCodec.nameOf(method)} needs the name of the service to stop and start`);
    this.restoreMethod = {
      method,
      service: checkXmlText('the service name', service ?? ''),
      userProcedure: checkXmlText('the user procedure', userProcedure ?? ''),
      writerRestore,
      rebootRequired: Boolean(rebootRequired),
    };
    return this;
  }

  setBackupSchema(schema: number): this {
    if (!Number.isInteger(schema) || schema < 0 || (schema & ~BACKUP_SCHEMA_BITS) !== 0) {
      badArg(`backup schema 0x${(schema >>> 0).toString(16)} has bits outside VSS_BACKUP_SCHEMA`);
    }
    const diffOrIncr = schema & (BackupSchema.DIFFERENTIAL | BackupSchema.INCREMENTAL);
    if (schema & BackupSchema.EXCLUSIVE_INCREMENTAL_DIFFERENTIAL && diffOrIncr !== (BackupSchema.DIFFERENTIAL | BackupSchema.INCREMENTAL)) {
      badArg('VSS_BS_EXCLUSIVE_INCREMENTAL_DIFFERENTIAL needs both VSS_BS_DIFFERENTIAL and VSS_BS_INCREMENTAL');
    }
    for (const [bit, name] of [[BackupSchema.TIMESTAMPED, 'VSS_BS_TIMESTAMPED'], [BackupSchema.LAST_MODIFY, 'VSS_BS_LAST_MODIFY']] as const) {
      if (schema & bit && !diffOrIncr) badArg(`${name} needs VSS_BS_DIFFERENTIAL or VSS_BS_INCREMENTAL`);
    }
    this.backupSchema = schema;
    return this;
  }

  /** The finished, read-only document. Cross-cutting rules are checked here. */
  build(): WriterMetadata {
    if (this.backupSchema & BackupSchema.LOG && !this.components.some((c) => c.logFiles.length > 0)) {
      badArg('VSS_BS_LOG needs at least one database log file set (addDatabaseLogFiles)');
    }
    for (const m of this.mappings) {
      const matches = this.components.some((c) =>
        [...c.files, ...c.databaseFiles, ...c.logFiles].some((f) => f.path === m.path && f.filespec === m.filespec && f.recursive === m.recursive),
      );
      if (!matches) {
        badArg(`the alternate location mapping for ${m.path} ${m.filespec} does not match any component's file set; a mapping must name a declared file set`);
      }
    }
    const clone = structuredClone({ components: this.components, excludeFiles: this.excludeFiles, x: this.excludeFilesFromSnapshot, m: this.mappings });
    // structuredClone drops the Guid class; restore the instances.
    for (const [i, c] of clone.components.entries()) {
      c.dependencies = this.components[i]!.dependencies.map((d) => ({ ...d }));
    }
    return new WriterMetadata(
      {
        version: '1.2',
        identity: { ...this.identity },
        restoreMethod: this.restoreMethod && { ...this.restoreMethod },
        alternateLocationMappings: clone.m,
        backupSchema: this.backupSchema,
        components: clone.components,
        excludeFiles: clone.excludeFiles,
        excludeFilesFromSnapshot: clone.x,
      },
      { restoreMethodAfterLocations: false, locationOrder: this.locationOrder },
    );
  }
}
