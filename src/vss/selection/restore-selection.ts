// Restore selection (spec §5, §13.3, §14.3, §14.4): what a requester selects for restore,
// from a stored Backup Components Document and the stored writer metadata — never live
// metadata. The selection is recorded in the BCD, which writers read in PreRestore.
import type { BackupComponentsDocument, Component, WriterComponents } from '../backup-components.js';
import { BackupSchema, type RollForwardType } from '../enums.js';
import { VssError } from '../errors.js';
import { Guid } from '../guid.js';
import { fullPath } from '../strings.js';
import type { FileDescriptor, FileSpec, WriterMetadata } from '../writer-metadata.js';
import { ComponentTree, type ComponentNode } from './component-tree.js';
import { checkComponentName, validateLogicalPath, componentKey, type MatchOptions } from './logical-path.js';
import { checkFilespec } from './file-tree.js';
import { fileSetsOf } from './backup-set.js';
import { checkStandardRestoreOption, parseRestoreOptions } from './restore-options.js';
import type { ComponentRef } from './backup-selection.js';

/** A writer instance running now (from GatherWriterMetadata at restore time). */
export interface RunningWriter {
  writerId: Guid | string;
  instanceName?: string;
  /** Needed to restore to a particular instance (SetSelectedForRestoreEx). */
  instanceId?: Guid | string;
}

/** One writer of the stored BCD with its stored metadata. */
export interface RestoreWriter {
  readonly components: WriterComponents;
  readonly metadata: WriterMetadata;
  readonly tree: ComponentTree;
}

function toGuid(v: Guid | string, what: string): Guid {
  if (v instanceof Guid) return v;
  const g = Guid.tryParse(v);
  if (!g) throw new VssError('E_INVALIDARG', `${what} "${v}" is not a GUID`);
  return g;
}

/** Trailing separators are optional in documents (spec §10.4), so `/a/` and `/a` are the same set. */
export function sameFileSet(a: FileSpec, b: FileSpec): boolean {
  const trim = (p: string): string => (p.length > 1 ? p.replace(/[\\/]+$/, '') : p);
  return trim(a.path) === trim(b.path) && a.filespec === b.filespec && Boolean(a.recursive) === Boolean(b.recursive);
}

/** Pairs every writer of a stored BCD with its stored WMD (same class and instance id). */
export function restoreWriters(bcd: BackupComponentsDocument, stored: readonly WriterMetadata[], options: MatchOptions = {}): RestoreWriter[] {
  return bcd.writers.map((wc) => {
    const m = stored.find((s) => s.identity.writerId.equals(wc.writerId) && s.identity.instanceId.equals(wc.instanceId));
    if (!m) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the backup has no stored writer metadata for writer ${wc.writerId} instance ${wc.instanceId}; restore needs the WMD saved with the backup`);
    }
    return { components: wc, metadata: m, tree: new ComponentTree(m, options) };
  });
}

/** The explicit BCD component whose backup-time set contains `node`, if any (closest explicit ancestor). */
export function definingExplicit(w: RestoreWriter, node: ComponentNode): Component | undefined {
  const explicit = (n: ComponentNode): Component | undefined => w.components.components.find((c) => componentKey(c.logicalPath, c.componentName, w.tree.options) === n.key);
  const self = explicit(node);
  if (self) return self;
  for (let a = node.selectableAncestor; a; a = a.selectableAncestor) {
    const c = explicit(a);
    if (c) return c;
  }
  return undefined;
}

export class RestoreSelection {
  readonly writers: readonly RestoreWriter[];
  private isClosed = false;
  private readonly running: { writerId: Guid; instanceName: string | undefined; instanceId: Guid | undefined }[];

  constructor(
    readonly bcd: BackupComponentsDocument,
    stored: readonly WriterMetadata[],
    running: readonly RunningWriter[],
    readonly options: MatchOptions = {},
  ) {
    this.writers = restoreWriters(bcd, stored, options);
    this.running = running.map((r) => ({
      writerId: toGuid(r.writerId, 'the running writer class id'),
      instanceName: r.instanceName,
      instanceId: r.instanceId === undefined ? undefined : toGuid(r.instanceId, 'the running writer instance id'),
    }));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** PreRestore: from now on the selection is fixed (spec §13.3 rule 5). */
  close(): void {
    this.isClosed = true;
  }

  private open(call: string): void {
    if (this.isClosed) throw new VssError('VSS_E_BAD_STATE', `${call} must be called before PreRestore; restore selection is closed`);
  }

  /** The stored writer and its explicit component named by `ref`, checking the writer is running now. */
  private explicit(ref: ComponentRef, call: string, toInstance?: Guid): { w: RestoreWriter; component: Component; node: ComponentNode } {
    const wid = toGuid(ref.writerId, 'the writer class id');
    const iid = ref.instanceId === undefined ? undefined : toGuid(ref.instanceId, 'the writer instance id');
    const lp = validateLogicalPath('the logical path', ref.logicalPath ?? '');
    checkComponentName('the component name', ref.componentName);
    const candidates = this.writers.filter((w) => w.components.writerId.equals(wid) && (!iid || w.components.instanceId.equals(iid)));
    if (candidates.length === 0) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `writer ${wid}${iid ? ` instance ${iid}` : ''} is not in the backup components document`);
    if (candidates.length > 1) throw new VssError('E_INVALIDARG', `writer ${wid} has ${candidates.length} instances in the backup; name the instance id`);
    const w = candidates[0]!;
    const name = w.components.instanceName;
    const alive = toInstance
      ? this.running.some((r) => r.writerId.equals(wid) && r.instanceId?.equals(toInstance))
      : this.running.some((r) => r.writerId.equals(wid) && (!name || r.instanceName === name));
    if (!alive && toInstance) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `no running instance ${toInstance} of writer "${w.metadata.identity.writerName}" (${wid}) to restore to; gather writer metadata and name an instance that answered`);
    }
    if (!alive) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `writer "${w.metadata.identity.writerName}" (${wid})${name ? ` instance "${name}"` : ''} is not running now; start it, or restore its files without writer participation by not selecting its components`);
    }
    const node = w.tree.find(lp, ref.componentName);
    const key = componentKey(lp, ref.componentName, this.options);
    const component = w.components.components.find((c) => componentKey(c.logicalPath, c.componentName, this.options) === key);
    if (!component || !node) {
      const def = node && definingExplicit(w, node);
      throw new VssError(
        'VSS_E_OBJECT_NOT_FOUND',
        `component "${fullPath(lp, ref.componentName)}" was not explicitly backed up${def ? `; it is part of "${def.fullPath}": select that with ${call} and add it with addRestoreSubcomponent${node.component.selectableForRestore ? '' : ' (but it is not selectable for restore, so only the whole set can be restored)'}` : ''}`,
      );
    }
    if (ref.componentType !== undefined && ref.componentType !== component.componentType) {
      throw new VssError('E_INVALIDARG', `component "${component.fullPath}" has type ${component.componentType}, not ${ref.componentType}`);
    }
    return { w, component, node };
  }

  /**
   * SetSelectedForRestore: any component explicit at backup, whatever its selectableForRestore
   * flag. `toInstance` (SetSelectedForRestoreEx) restores it to that running instance of the
   * class instead of the one with the backed-up instance name.
   */
  setSelectedForRestore(ref: ComponentRef, selected = true, toInstance?: Guid): void {
    this.open('setSelectedForRestore');
    const { component } = this.explicit(ref, 'setSelectedForRestore', toInstance);
    component.setSelectedForRestore(selected, selected ? toInstance : undefined);
    // Deselecting drops its subcomponents too: they only mean something under a selected component.
    if (!selected) component.restoreSubcomponents.length = 0;
  }

  /**
   * AddRestoreSubcomponent: restore only part of a component set. `ref` is the defining
   * (closest explicit) component, already selected; the subcomponent must be a member of
   * its backup-time set and selectable for restore.
   */
  addRestoreSubcomponent(ref: ComponentRef, subLogicalPath: string, subComponentName: string, repair = false): void {
    this.open('addRestoreSubcomponent');
    const { w, component, node } = this.explicit(ref, 'setSelectedForRestore');
    const subLp = validateLogicalPath('the subcomponent logical path', subLogicalPath ?? '');
    checkComponentName('the subcomponent name', subComponentName);
    const sub = w.tree.find(subLp, subComponentName);
    const subPath = fullPath(subLp, subComponentName);
    if (!sub) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `writer "${w.metadata.identity.writerName}" has no component "${subPath}" in the stored metadata`);
    if (!w.tree.isAncestor(node, sub)) {
      throw new VssError('E_INVALIDARG', `"${subPath}" is not a descendant of "${component.fullPath}"; a restore subcomponent must lie below the component it is added to`);
    }
    const def = definingExplicit(w, sub);
    if (def !== component) {
      throw new VssError('E_INVALIDARG', def
        ? def.fullPath === subPath
          ? `"${subPath}" was backed up explicitly; select it directly with setSelectedForRestore`
          : `"${subPath}" belongs to the set of "${def.fullPath}", not "${component.fullPath}"; select "${def.fullPath}" and add it there`
        : `"${subPath}" was not backed up as part of "${component.fullPath}" (it is outside that component set)`);
    }
    if (!component.isSelectedForRestore()) {
      // An ordering error: the defining component must be selected first (spec §5 step 7).
      throw new VssError('VSS_E_BAD_STATE', `select "${component.fullPath}" with setSelectedForRestore before adding its subcomponent "${subPath}"`);
    }
    if (!sub.component.selectableForRestore) {
      throw new VssError('E_INVALIDARG', `"${subPath}" is not selectable for restore; restore the whole set of "${component.fullPath}" instead`);
    }
    component.addRestoreSubcomponent(sub.component.logicalPath, sub.component.componentName, repair);
  }

  private memberFileSet(w: RestoreWriter, component: Component, spec: FileSpec): FileDescriptor | undefined {
    const node = w.tree.find(component.logicalPath, component.componentName);
    if (!node) return undefined;
    for (const m of w.tree.componentSet(node)) {
      for (const { fileSet } of fileSetsOf(m)) if (sameFileSet(fileSet, spec)) return fileSet;
    }
    return undefined;
  }

  /**
   * AddNewTarget (spec §14.4): the writer must support new targets, and the file set must be
   * exactly one of the defining component's set (its own or an implicit member's).
   */
  addNewTarget(ref: ComponentRef, path: string, filespec: string, recursive: boolean, alternatePath: string): void {
    this.open('addNewTarget');
    const { w, component } = this.explicit(ref, 'setSelectedForRestore');
    checkFilespec('the new target file spec', filespec);
    if (!(w.metadata.backupSchema & BackupSchema.WRITER_SUPPORTS_NEW_TARGET)) {
      throw new VssError('E_INVALIDARG', `writer "${w.metadata.identity.writerName}" does not support new targets (no VSS_BS_WRITER_SUPPORTS_NEW_TARGET); restore to the original or an alternate location`);
    }
    if (!this.memberFileSet(w, component, { path, filespec, recursive })) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the new target for ${path} ${filespec}${recursive ? ' (recursive)' : ''} matches no file set of "${component.fullPath}"; use a path, file spec and recursion exactly as the writer declared them`);
    }
    component.addNewTarget(path, filespec, recursive, alternatePath);
  }

  /**
   * AddAlternativeLocationMapping (spec §14.3): records that files of a set went to an
   * alternate location. Allowed after PreRestore (it happens while copying); the set must
   * be one the writer declared a mapping for, on the defining component.
   */
  addAlternativeLocationMapping(ref: ComponentRef, path: string, filespec: string, recursive: boolean, destination: string): void {
    const { w, component } = this.explicit(ref, 'setSelectedForRestore');
    checkFilespec('the mapping file spec', filespec);
    const spec = { path, filespec, recursive };
    if (!this.memberFileSet(w, component, spec)) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `the mapping for ${path} ${filespec}${recursive ? ' (recursive)' : ''} matches no file set of "${component.fullPath}"; record it on the defining component with the file set exactly as declared`);
    }
    if (!w.metadata.alternateLocationMappings.some((m) => sameFileSet(m, spec))) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `writer "${w.metadata.identity.writerName}" declares no alternate location mapping for ${path} ${filespec}`);
    }
    component.addAlternativeLocationMapping(path, filespec, recursive, destination);
  }
  /** A requester-set restore property: the component must be selected, the selection open. */
  private restoreProperty(ref: ComponentRef, call: string): { w: RestoreWriter; component: Component; node: ComponentNode } {
    this.open(call);
    const found = this.explicit(ref, 'setSelectedForRestore');
    if (!found.component.isSelectedForRestore()) {
      throw new VssError('VSS_E_BAD_STATE', `${call} on "${found.component.fullPath}", which is not selected for restore; call setSelectedForRestore first`);
    }
    return found;
  }

  private requireSchema(w: RestoreWriter, bit: number, bitName: string, call: string): void {
    if (!(w.metadata.backupSchema & bit)) {
      throw new VssError('E_INVALIDARG', `${call}: writer "${w.metadata.identity.writerName}" does not support it (no ${bitName} in its backup schema, spec §11)`);
    }
  }

  /**
   * SetRestoreOptions (spec §14.6): the syntax is checked, every subcomponent scope must name
   * a member of the component's backed-up set, and the options are set once per component.
   */
  setRestoreOptions(ref: ComponentRef, options: string): void {
    const { w, component, node } = this.restoreProperty(ref, 'setRestoreOptions');
    const parsed = parseRestoreOptions(options);
    const set = new Set(w.tree.componentSet(node));
    for (const o of parsed) {
      checkStandardRestoreOption(o);
      if (o.scope === '') continue;
      const parts = o.scope.split('\\');
      const lp = [component.logicalPath, component.componentName, ...parts.slice(0, -1)].filter((x) => x !== '').join('\\');
      const sub = w.tree.find(lp, parts[parts.length - 1]!);
      if (!sub || sub === node || !set.has(sub)) {
        throw new VssError('VSS_E_OBJECT_NOT_FOUND', `restore option "${o.name}" is scoped to "${o.scope}", which is no subcomponent in the backed-up set of "${component.fullPath}"; scopes are paths relative to the component`);
      }
    }
    if (component.restoreOptions !== '') {
      throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `the restore options of "${component.fullPath}" were already set; set them once, every option in one string`);
    }
    component.setRestoreOptions(options);
  }

  /** SetAdditionalRestores: more restores of this component follow (spec §14.6). */
  setAdditionalRestores(ref: ComponentRef, additional: boolean): void {
    this.restoreProperty(ref, 'setAdditionalRestores').component.setAdditionalRestores(additional);
  }

  /** SetRollForward: needs VSS_BS_ROLLFORWARD_RESTORE in the writer's schema. */
  setRollForward(ref: ComponentRef, type: RollForwardType, point: string): void {
    const { w, component } = this.restoreProperty(ref, 'setRollForward');
    this.requireSchema(w, BackupSchema.ROLLFORWARD_RESTORE, 'VSS_BS_ROLLFORWARD_RESTORE', 'setRollForward');
    component.setRollForward(type, point);
  }

  /** SetAuthoritativeRestore: needs VSS_BS_AUTHORITATIVE_RESTORE. */
  setAuthoritativeRestore(ref: ComponentRef, authoritative: boolean): void {
    const { w, component } = this.restoreProperty(ref, 'setAuthoritativeRestore');
    this.requireSchema(w, BackupSchema.AUTHORITATIVE_RESTORE, 'VSS_BS_AUTHORITATIVE_RESTORE', 'setAuthoritativeRestore');
    component.setAuthoritativeRestore(authoritative);
  }

  /** SetRestoreName: needs VSS_BS_RESTORE_RENAME. */
  setRestoreName(ref: ComponentRef, name: string): void {
    const { w, component } = this.restoreProperty(ref, 'setRestoreName');
    this.requireSchema(w, BackupSchema.RESTORE_RENAME, 'VSS_BS_RESTORE_RENAME', 'setRestoreName');
    component.setRestoreName(name);
  }
}
