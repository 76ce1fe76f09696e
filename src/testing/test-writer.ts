// The VSS Test Writer: a Writer whose identity, components, files, restore method, excludes
// and freeze timeout come from JSON, which can veto, fail, hang or exit at any named event,
// and which logs every event it receives as one JSON line (issue 5 item 9).
import { appendFileSync } from 'node:fs';
import { z } from 'zod';
import { WRITER_EVENTS, type WriterEventName } from '../protocol/writer-events.js';
import {
  applicationLevelCodec,
  ComponentType,
  DEFAULT_FILESPEC_BACKUP_TYPE,
  fileRestoreStatusCodec,
  Guid,
  restoreMethodCodec,
  restoreTargetCodec,
  sourceTypeCodec,
  usageTypeCodec,
  VssError,
  WRITER_FAILURE_CODES,
  writerRestoreCodec,
  type ApplicationLevel,
  type SourceType,
  type UsageType,
  type Component,
  type RestoreTarget,
  type WriterComponents,
  type WriterMetadataBuilder,
} from '../vss/index.js';
import { Writer, type HandlerResult } from '../writer/writer.js';

const FileSet = z.object({
  path: z.string().min(1),
  filespec: z.string().min(1).default('*'),
  recursive: z.boolean().default(false),
  alternatePath: z.string().optional(),
  backupTypeMask: z.number().int().optional(),
});

export const TestWriterConfig = z.object({
  writerId: z.string(),
  name: z.string().min(1),
  instanceName: z.string().default(''),
  /** VSS_USAGE_TYPE token or name: USER_DATA, SYSTEM_SERVICE, BOOTABLE_SYSTEM_STATE, OTHER. */
  usage: z.string().default('USER_DATA'),
  /** VSS_SOURCE_TYPE token or name: TRANSACTION_DB, NONTRANSACTIONAL_DB, OTHER. */
  sourceType: z.string().default('OTHER'),
  /** VSS_APPLICATION_LEVEL: FRONT_END, BACK_END, SYSTEM. */
  level: z.string().default('FRONT_END'),
  freezeTimeoutMs: z.number().int().positive().optional(),
  restoreMethod: z
    .object({
      method: z.string().default('RESTORE_IF_CAN_BE_REPLACED'),
      service: z.string().optional(),
      writerRestore: z.string().default('never'),
      rebootRequired: z.boolean().default(false),
    })
    .default({ method: 'RESTORE_IF_CAN_BE_REPLACED', writerRestore: 'never', rebootRequired: false }),
  backupSchema: z.number().int().optional(),
  components: z
    .array(
      z.object({
        logicalPath: z.string().default(''),
        name: z.string().min(1),
        type: z.enum(['filegroup', 'database']).default('filegroup'),
        caption: z.string().optional(),
        selectable: z.boolean().default(true),
        selectableForRestore: z.boolean().default(false),
        notifyOnBackupComplete: z.boolean().default(false),
        files: z.array(FileSet).default([]),
        databaseFiles: z.array(FileSet).default([]),
        logFiles: z.array(FileSet).default([]),
      }),
    )
    .min(1),
  excludes: z.array(FileSet).default([]),
  excludeFromSnapshot: z.array(FileSet).default([]),
  /** Writer-wide alternate location mappings of the WMD (spec §14.3). */
  alternateLocationMappings: z.array(FileSet.pick({ path: true, filespec: true, recursive: true }).extend({ destination: z.string().min(1) })).default([]),
  /** What the writer does to its selected components in PreRestore / PostRestore (spec §14.2, §14.5). */
  restore: z
    .object({
      preRestore: z
        .array(
          z.object({
            /** The component's full path (`LP\name`); absent: every selected component. */
            component: z.string().optional(),
            /** VSS_RESTORE_TARGET token or name: ORIGINAL, ALTERNATE, DIRECTED, ORIGINAL_LOCATION. */
            target: z.string().optional(),
            directedTargets: z
              .array(
                z.object({
                  sourcePath: z.string().min(1),
                  sourceFilename: z.string().min(1),
                  sourceRanges: z.string().default(''),
                  destinationPath: z.string().min(1),
                  destinationFilename: z.string().min(1),
                  destinationRanges: z.string().default(''),
                }),
              )
              .default([]),
            restoreMetadata: z.string().optional(),
            failureMsg: z.string().optional(),
          }),
        )
        .default([]),
      postRestore: z.array(z.object({ component: z.string().optional(), failureMsg: z.string() })).default([]),
    })
    .default({ preRestore: [], postRestore: [] }),
  faults: z
    .array(
      z.object({
        event: z.enum(WRITER_EVENTS),
        action: z.enum(['veto', 'fail', 'hang', 'exit']),
        /** A VSS_E_WRITERERROR_* name (veto and fail; default RETRYABLE). */
        error: z.enum(WRITER_FAILURE_CODES).optional(),
        /** hang: how long (default forever); exit: the exit code (default 3). */
        ms: z.number().int().nonnegative().optional(),
        code: z.number().int().optional(),
        message: z.string().optional(),
      }),
    )
    .default([]),
});
export type TestWriterConfig = z.input<typeof TestWriterConfig>;

export interface TestWriterLogLine {
  event: WriterEventName;
  snapshotSetId: string | null;
  sessionId: string | null;
  at: string;
  /** ok | veto | fail | hang | exit. */
  answer: string;
  instanceId: string | null;
  /** What getCurrentSnapshotSetId answered during the handler: the id, or the error name. */
  currentSnapshotSetId: string;
  components?: string[];
  /** PreRestore / PostRestore: what the writer saw of each of its components. */
  restore?: RestoreView[];
}

/** A component as a writer sees it in a restore event (spec §11, §14). */
export interface RestoreView {
  component: string;
  selected: boolean;
  subcomponents: string[];
  options: string;
  additionalRestores: boolean;
  /** VSS_FILE_RESTORE_STATUS name. */
  fileRestoreStatus: string;
  /** VSS_RESTORE_TARGET name. */
  restoreTarget: string;
  mappings: { path: string; filespec: string; recursive: boolean; destination: string }[];
  newTargets: { path: string; filespec: string; recursive: boolean; alternatePath: string }[];
  directedTargets: number;
  restoreMetadata: string;
}

function restoreView(c: Component): RestoreView {
  return {
    component: c.fullPath,
    selected: c.isSelectedForRestore(),
    subcomponents: c.restoreSubcomponents.map((s) => (s.logicalPath ? `${s.logicalPath}\\${s.componentName}` : s.componentName)),
    options: c.getRestoreOptions(),
    additionalRestores: c.getAdditionalRestores(),
    fileRestoreStatus: fileRestoreStatusCodec.nameOf(c.getFileRestoreStatus()) ?? String(c.getFileRestoreStatus()),
    restoreTarget: restoreTargetCodec.nameOf(c.getRestoreTarget()) ?? String(c.getRestoreTarget()),
    mappings: c.alternateLocationMappings.map((m) => ({ ...m })),
    newTargets: c.newTargets.map((t) => ({ ...t })),
    directedTargets: c.getDirectedTargetCount(),
    restoreMetadata: c.getRestoreMetadata(),
  };
}

function enumOf<V extends number>(codec: { fromName(n: string): V | undefined; fromToken(t: string): V | undefined; enumName: string }, value: string): V {
  const v = codec.fromToken(value) ?? codec.fromName(value) ?? codec.fromName(value.replace(/_/g, ''));
  if (v === undefined) throw new VssError('E_INVALIDARG', `"${value}" is not a ${codec.enumName} value`);
  return v;
}

export function parseTestWriterConfig(json: unknown): z.output<typeof TestWriterConfig> {
  const r = TestWriterConfig.safeParse(json);
  if (!r.success) throw new VssError('E_INVALIDARG', `test writer config: ${z.prettifyError(r.error).replace(/\n/g, '; ')}`);
  return r.data;
}

export class TestWriter extends Writer {
  readonly config: z.output<typeof TestWriterConfig>;
  /** Every line logged, for in-process tests. */
  readonly lines: TestWriterLogLine[] = [];

  constructor(
    config: TestWriterConfig,
    private readonly opts: { logFile?: string; onLine?: (l: TestWriterLogLine) => void; exit?: (code: number) => never } = {},
  ) {
    const c = parseTestWriterConfig(config);
    super({
      writerId: Guid.parse(c.writerId),
      writerName: c.name,
      instanceName: c.instanceName,
      usage: enumOf(usageTypeCodec, c.usage) as UsageType,
      sourceType: enumOf(sourceTypeCodec, c.sourceType) as SourceType,
      level: enumOf(applicationLevelCodec, c.level) as ApplicationLevel,
      ...(c.freezeTimeoutMs !== undefined ? { freezeTimeoutMs: c.freezeTimeoutMs } : {}),
    });
    this.config = c;
  }

  private log(event: WriterEventName, answer: string, components?: WriterComponents): void {
    let current: string;
    try {
      current = this.getCurrentSnapshotSetId().toString();
    } catch (e) {
      current = VssError.is(e) ? e.code : 'error';
    }
    const ctx = this.currentEvent();
    const line: TestWriterLogLine = {
      event,
      snapshotSetId: ctx.snapshotSetId?.toString() ?? null,
      sessionId: ctx.sessionId ?? null,
      at: new Date().toISOString(),
      answer,
      instanceId: this.instanceId?.toString() ?? null,
      currentSnapshotSetId: current,
      ...(components ? { components: components.components.map((x) => x.fullPath) } : {}),
      ...(components && (event === 'PreRestore' || event === 'PostRestore') ? { restore: components.components.map(restoreView) } : {}),
    };
    this.lines.push(line);
    // Synchronous, so the line is on disk even if the next thing is exit or SIGKILL.
    if (this.opts.logFile) appendFileSync(this.opts.logFile, `${JSON.stringify(line)}\n`);
    this.opts.onLine?.(line);
  }

  /** Runs the configured fault for `event`, or answers ok. */
  private async act(event: WriterEventName, components?: WriterComponents): Promise<boolean> {
    const f = this.config.faults.find((x) => x.event === event);
    if (!f) {
      this.log(event, 'ok', components);
      return true;
    }
    const error = f.error ?? 'VSS_E_WRITERERROR_RETRYABLE';
    switch (f.action) {
      case 'veto':
        this.setWriterFailureEx(error, 0, f.message ?? `test writer vetoes ${event}`);
        this.log(event, 'veto', components);
        return false;
      case 'fail':
        this.setWriterFailureEx(error, 0, f.message ?? `test writer fails ${event}`);
        this.log(event, 'fail', components);
        return true;
      case 'hang':
        this.log(event, 'hang', components);
        await new Promise<void>((r) => {
          if (f.ms !== undefined) setTimeout(r, f.ms);
        });
        return true;
      case 'exit':
        this.log(event, 'exit', components);
        (this.opts.exit ?? process.exit)(f.code ?? 3);
    }
    return true;
  }

  override onIdentify(b: WriterMetadataBuilder): void | Promise<void> {
    const c = this.config;
    const rm = c.restoreMethod;
    b.setRestoreMethod(enumOf(restoreMethodCodec, rm.method), rm.service, undefined, enumOf(writerRestoreCodec, rm.writerRestore), rm.rebootRequired);
    if (c.backupSchema !== undefined) b.setBackupSchema(c.backupSchema);
    for (const comp of c.components) {
      b.addComponent({
        type: comp.type === 'database' ? ComponentType.DATABASE : ComponentType.FILEGROUP,
        logicalPath: comp.logicalPath,
        componentName: comp.name,
        caption: comp.caption ?? comp.name,
        selectable: comp.selectable,
        selectableForRestore: comp.selectableForRestore,
        notifyOnBackupComplete: comp.notifyOnBackupComplete,
      });
      for (const f of comp.files) b.addFilesToFileGroup(comp.logicalPath, comp.name, f.path, f.filespec, f.recursive, f.alternatePath, f.backupTypeMask ?? DEFAULT_FILESPEC_BACKUP_TYPE);
      for (const f of comp.databaseFiles) b.addDatabaseFiles(comp.logicalPath, comp.name, f.path, f.filespec, f.backupTypeMask ?? DEFAULT_FILESPEC_BACKUP_TYPE);
      for (const f of comp.logFiles) b.addDatabaseLogFiles(comp.logicalPath, comp.name, f.path, f.filespec, f.backupTypeMask ?? DEFAULT_FILESPEC_BACKUP_TYPE);
    }
    for (const x of c.excludes) b.addExcludeFiles(x.path, x.filespec, x.recursive);
    for (const x of c.excludeFromSnapshot) b.addExcludeFilesFromSnapshot(x.path, x.filespec, x.recursive);
    for (const m of c.alternateLocationMappings) b.addAlternateLocationMapping(m.path, m.filespec, m.recursive, m.destination);
    const f = c.faults.find((x) => x.event === 'Identify');
    if (f?.action === 'exit') {
      this.log('Identify', 'exit');
      (this.opts.exit ?? process.exit)(f.code ?? 3);
    }
    if (f?.action === 'hang') {
      this.log('Identify', 'hang');
      return new Promise<void>((r) => {
        if (f.ms !== undefined) setTimeout(r, f.ms);
      });
    }
    if (f) {
      this.log('Identify', f.action);
      throw new VssError(f.error ?? 'VSS_E_WRITERERROR_RETRYABLE', f.message ?? 'test writer fails Identify');
    }
    this.log('Identify', 'ok');
  }

  override onPrepareBackup(c: WriterComponents | undefined): HandlerResult {
    return this.act('PrepareForBackup', c);
  }
  override onPrepareSnapshot(): HandlerResult {
    return this.act('PrepareForSnapshot');
  }
  override onFreeze(): HandlerResult {
    return this.act('Freeze');
  }
  override onThaw(): HandlerResult {
    return this.act('Thaw');
  }
  override onPostSnapshot(c: WriterComponents | undefined): HandlerResult {
    return this.act('PostSnapshot', c);
  }
  override onAbort(): HandlerResult {
    return this.act('Abort');
  }
  override onBackupComplete(c: WriterComponents | undefined): HandlerResult {
    return this.act('BackupComplete', c);
  }
  override onBackupShutdown(): HandlerResult {
    return this.act('BackupShutdown');
  }
  override onPreRestore(c: WriterComponents | undefined): HandlerResult {
    // The edits of the config first, so a veto still returns them and the log shows what the requester will see.
    for (const e of this.config.restore.preRestore) {
      for (const comp of this.restoreTargets(c, e.component)) {
        if (e.target !== undefined) comp.setRestoreTarget(enumOf(restoreTargetCodec, e.target) as RestoreTarget);
        for (const d of e.directedTargets) comp.addDirectedTarget(d.sourcePath, d.sourceFilename, d.sourceRanges, d.destinationPath, d.destinationFilename, d.destinationRanges);
        if (e.restoreMetadata !== undefined) comp.setRestoreMetadata(e.restoreMetadata);
        if (e.failureMsg !== undefined) comp.setPreRestoreFailureMsg(e.failureMsg);
      }
    }
    return this.act('PreRestore', c);
  }
  override onPostRestore(c: WriterComponents | undefined): HandlerResult {
    for (const e of this.config.restore.postRestore) for (const comp of this.restoreTargets(c, e.component)) comp.setPostRestoreFailureMsg(e.failureMsg);
    return this.act('PostRestore', c);
  }

  /** The selected components an edit applies to: the named one, or every selected one. */
  private restoreTargets(c: WriterComponents | undefined, name: string | undefined): Component[] {
    return (c?.components ?? []).filter((x) => x.isSelectedForRestore() && (name === undefined || x.fullPath.toLowerCase() === name.toLowerCase()));
  }
}
