// The restore set (spec §14): for every component selected for restore, which files of the
// backup set go back and where. Properties are read where VSS keeps them: restore target,
// options and other set-wide properties on the defining component; new targets, alternate
// location mappings and directed targets per exact file set (spec §11, §14.3–14.5).
import type { BackupComponentsDocument, Component, DirectedTarget, NewTarget } from '../backup-components.js';
import { RestoreMethod, RestoreTarget, restoreMethodCodec, restoreTargetCodec, type RollForwardType, type WriterRestore } from '../enums.js';
import { VssError } from '../errors.js';
import type { AlternateLocationMapping, FileDescriptor, WriterMetadata } from '../writer-metadata.js';
import type { ComponentNode } from './component-tree.js';
import { componentKey, type MatchOptions } from './logical-path.js';
import { expandVariables, joinPath, normalizePath } from './file-tree.js';
import { fileSetsOf, type BackupSetEntry, type ComponentName } from './backup-set.js';
import { restoreWriters, sameFileSet, type RestoreWriter } from './restore-selection.js';

/** How the requester copies a component set back, from the restore method and target (spec §14.1, §14.2). */
export type CopyMode =
  | 'if-none-there' // RESTORE_IF_NOT_THERE: only if none of the set's files exist; else the fallback
  | 'if-can-replace' // RESTORE_IF_CAN_REPLACE: only if all can be overwritten; else the fallback; else fail
  | 'replace'
  | 'at-reboot' // stage, replace at boot
  | 'at-reboot-if-cannot-replace' // try in place; if any file cannot be replaced, stage all for boot
  | 'custom' // writer-specific procedure: the requester does not copy on its own
  | 'none'; // the writer gave no usable method: nothing may be copied

export type DestinationKind = 'original' | 'alternate-mapping' | 'new-target' | 'directed';

export interface RestoreFile {
  readonly entry: BackupSetEntry;
  /** Absolute destination path. */
  readonly destination: string;
  readonly via: DestinationKind;
  /** Alternate-location destination for if-none-there / if-can-replace when in place is not possible. */
  readonly fallback?: string;
  /** Directed targets only: ranges to read and to write (spec §14.5). */
  readonly sourceRanges?: string;
  readonly destinationRanges?: string;
}

/** Properties that belong to one exact file set, addressed through the defining component. */
export interface FileSetProperties {
  readonly component: ComponentName;
  readonly fileSet: FileDescriptor;
  readonly newTarget?: NewTarget;
  /** The writer's mapping for this set, if it declared one. */
  readonly mapping?: AlternateLocationMapping;
  /** Mappings the requester recorded as used for this set. */
  readonly mappingsUsed: readonly AlternateLocationMapping[];
}

export interface RestorePlan {
  readonly writerId: string;
  readonly instanceId: string;
  readonly instanceName: string;
  readonly writerName: string;
  readonly definingComponent: ComponentName;
  /** Empty: the whole component set. Otherwise only these subcomponents (and their descendants). */
  readonly subcomponents: readonly (ComponentName & { repair: boolean })[];
  readonly method: RestoreMethod;
  readonly service: string;
  readonly writerRestore: WriterRestore;
  readonly rebootRequired: boolean;
  readonly copyMode: CopyMode;
  /** Set-wide properties, all from the defining component's record. */
  readonly restoreTarget: RestoreTarget;
  readonly restoreOptions: string;
  readonly additionalRestores: boolean;
  readonly authoritativeRestore: boolean;
  readonly rollForward: { type: RollForwardType; point: string };
  readonly restoreName: string;
  readonly fileSets: readonly FileSetProperties[];
  readonly files: readonly RestoreFile[];
  /** Writer errors (spec §14.2: a mapping that must exist and does not, …): the set must not be restored as is. */
  readonly errors: readonly VssError[];
}

export interface RestoreSet {
  readonly plans: readonly RestorePlan[];
}

export interface RestoreSetOptions extends MatchOptions {
  env?: Readonly<Record<string, string | undefined>>;
}

function nameOf(n: ComponentNode): ComponentName {
  return { logicalPath: n.component.logicalPath, componentName: n.component.componentName, fullPath: n.fullPath };
}

/** The members a selected component restores: the whole set, or the added subcomponents' subtrees. */
function restoreMembers(w: RestoreWriter, defining: ComponentNode, component: Component): { members: ComponentNode[]; subs: (ComponentName & { repair: boolean })[] } {
  const set = w.tree.componentSet(defining);
  if (component.restoreSubcomponents.length === 0) return { members: set, subs: [] };
  const inSet = new Set(set);
  const chosen = new Set<ComponentNode>();
  const subs: (ComponentName & { repair: boolean })[] = [];
  for (const s of component.restoreSubcomponents) {
    const node = w.tree.find(s.logicalPath, s.componentName);
    if (!node || node === defining || !inSet.has(node)) {
      throw new VssError('E_INVALIDARG', `the backup components document names restore subcomponent "${s.logicalPath ? `${s.logicalPath}\\` : ''}${s.componentName}" under "${component.fullPath}", but it is not a descendant in that component set`);
    }
    subs.push({ ...nameOf(node), repair: s.repair });
    for (const n of [node, ...w.tree.descendants(node)]) chosen.add(n);
  }
  // Document order, whatever order the subcomponents were added in.
  return { members: set.filter((n) => chosen.has(n)), subs: subs.sort((a, b) => w.tree.find(a.logicalPath, a.componentName)!.index - w.tree.find(b.logicalPath, b.componentName)!.index) };
}

function baseCopyMode(method: RestoreMethod): CopyMode {
  switch (method) {
    case RestoreMethod.RESTORE_IF_NOT_THERE: return 'if-none-there';
    case RestoreMethod.RESTORE_IF_CAN_REPLACE: return 'if-can-replace';
    case RestoreMethod.RESTORE_AT_REBOOT: return 'at-reboot';
    case RestoreMethod.RESTORE_AT_REBOOT_IF_CANNOT_REPLACE: return 'at-reboot-if-cannot-replace';
    case RestoreMethod.CUSTOM: return 'custom';
    case RestoreMethod.UNDEFINED: return 'none';
    default: return 'replace';
  }
}

/**
 * The restore set for every component selected for restore in `bcd`, restricted to files
 * of `backupSet` (the stored backup's entries). Stored WMDs supply the file sets, restore
 * method and mappings; the BCD supplies selection and the writer's PreRestore edits.
 */
export function computeRestoreSet(bcd: BackupComponentsDocument, stored: readonly WriterMetadata[], backupSet: readonly BackupSetEntry[], options: RestoreSetOptions = {}): RestoreSet {
  const env = options.env ?? {};
  const writers = restoreWriters(bcd, stored, options);
  // Entries grouped by writer instance + defining component + member component: one lookup per member.
  const groups = new Map<string, BackupSetEntry[]>();
  for (const e of backupSet) {
    const k = `${e.writerId}|${e.instanceId}|${componentKey(e.definingComponent.logicalPath, e.definingComponent.componentName, options)}|${componentKey(e.component.logicalPath, e.component.componentName, options)}`;
    const g = groups.get(k);
    if (g) g.push(e);
    else groups.set(k, [e]);
  }
  const plans: RestorePlan[] = [];
  for (const w of writers) {
    const wid = w.components.writerId.value;
    const iid = w.components.instanceId.value;
    const rm = w.metadata.getRestoreMethod();
    for (const component of w.components.components) {
      if (!component.isSelectedForRestore()) continue;
      const defining = w.tree.find(component.logicalPath, component.componentName);
      if (!defining) {
        throw new VssError('VSS_E_OBJECT_NOT_FOUND', `component "${component.fullPath}" is in the backup components document but not in the stored metadata of writer ${wid}; the backup is inconsistent`);
      }
      plans.push(planFor(w, wid, iid, rm, defining, component, groups, env));
    }
  }
  return { plans };
}

function planFor(
  w: RestoreWriter,
  wid: string,
  iid: string,
  rm: ReturnType<WriterMetadata['getRestoreMethod']>,
  defining: ComponentNode,
  component: Component,
  groups: Map<string, BackupSetEntry[]>,
  env: Readonly<Record<string, string | undefined>>,
): RestorePlan {
  const errors: VssError[] = [];
  const { members, subs } = restoreMembers(w, defining, component);
  const target = component.getRestoreTarget();
  const method = rm.method;
  const atReboot = method === RestoreMethod.RESTORE_AT_REBOOT || method === RestoreMethod.RESTORE_AT_REBOOT_IF_CANNOT_REPLACE;
  let copyMode = baseCopyMode(method);
  if (method === RestoreMethod.UNDEFINED) {
    errors.push(new VssError('E_INVALIDARG', `writer "${w.metadata.identity.writerName}" set no restore method (VSS_RME_UNDEFINED); its files cannot be restored with writer participation`));
  }
  // Targets cannot affect at-reboot restores (spec §14.1); otherwise ALTERNATE and the
  // alternate-location method need a mapping for every file set.
  const mustMap = !atReboot && (target === RestoreTarget.ALTERNATE || (target === RestoreTarget.ORIGINAL && method === RestoreMethod.RESTORE_TO_ALTERNATE_LOCATION));
  const mayMap = !atReboot && target === RestoreTarget.ORIGINAL && (method === RestoreMethod.RESTORE_IF_NOT_THERE || method === RestoreMethod.RESTORE_IF_CAN_REPLACE);
  if (target === RestoreTarget.ORIGINAL_LOCATION && method === RestoreMethod.RESTORE_TO_ALTERNATE_LOCATION) copyMode = 'replace';

  const expand = (what: string, p: string): string => normalizePath(what, expandVariables(what, p, env));
  const directedByPath = new Map<string, DirectedTarget>();
  if (target === RestoreTarget.DIRECTED) {
    for (const d of component.directedTargets) {
      try {
        directedByPath.set(joinPath(expand('the directed target source path', d.sourcePath), d.sourceFilename), d);
      } catch (e) {
        errors.push(e as VssError);
      }
    }
  }
  const usedDirected = new Set<DirectedTarget>();
  const fileSets: FileSetProperties[] = [];
  const files: RestoreFile[] = [];
  // New targets must name a file set of the restored members exactly (spec §14.4).
  for (const nt of component.newTargets) {
    const ok = members.some((m) => fileSetsOf(m).some(({ fileSet }) => sameFileSet(fileSet, nt)));
    if (!ok) errors.push(new VssError('VSS_E_OBJECT_NOT_FOUND', `the new target for ${nt.path} ${nt.filespec}${nt.recursive ? ' (recursive)' : ''} on "${component.fullPath}" matches no file set being restored`));
  }
  for (const m of w.metadata.alternateLocationMappings) {
    if (!w.tree.nodes.some((n) => fileSetsOf(n).some(({ fileSet }) => sameFileSet(fileSet, m)))) {
      errors.push(new VssError('E_INVALIDARG', `writer "${w.metadata.identity.writerName}" declares an alternate location mapping for ${m.path} ${m.filespec}, which matches none of its file sets`));
    }
  }

  for (const member of members) {
    const entries = groups.get(`${wid}|${iid}|${defining.key}|${member.key}`) ?? [];
    for (const { fileSet } of fileSetsOf(member)) {
      const newTarget = component.newTargets.find((t) => sameFileSet(t, fileSet));
      const mapping = w.metadata.alternateLocationMappings.find((m) => sameFileSet(m, fileSet));
      fileSets.push({
        component: nameOf(member),
        fileSet,
        ...(newTarget ? { newTarget } : {}),
        ...(mapping ? { mapping } : {}),
        mappingsUsed: component.alternateLocationMappings.filter((m) => sameFileSet(m, fileSet)),
      });
      const setEntries = entries.filter((e) => sameFileSet(e.fileSet, fileSet));
      if (setEntries.length === 0) continue;
      let mapRoot: string | undefined;
      let newRoot: string | undefined;
      try {
        if (mapping) mapRoot = expand('the alternate location mapping destination', mapping.destination);
        if (newTarget && !atReboot) newRoot = expand('the new target path', newTarget.alternatePath);
      } catch (e) {
        errors.push(e as VssError);
        continue;
      }
      if (mustMap && mapRoot === undefined) {
        errors.push(new VssError('VSS_E_OBJECT_NOT_FOUND', `writer "${w.metadata.identity.writerName}" requires restoring ${fileSet.path} ${fileSet.filespec} of "${member.fullPath}" to an alternate location (${restoreTargetCodec.nameOf(target)}, ${restoreMethodCodec.nameOf(method)}) but declares no mapping for it`));
        continue;
      }
      for (const entry of setEntries) {
        const directed = directedByPath.get(entry.path);
        if (directed) {
          usedDirected.add(directed);
          files.push({ entry, destination: joinPath(expandOr(directed.destinationPath, env), directed.destinationFilename), via: 'directed', sourceRanges: directed.sourceRangeList, destinationRanges: directed.destinationRangeList });
        } else if (newRoot !== undefined) {
          files.push({ entry, destination: joinPath(newRoot, entry.relativePath), via: 'new-target' });
        } else if (mustMap) {
          files.push({ entry, destination: joinPath(mapRoot!, entry.relativePath), via: 'alternate-mapping' });
        } else {
          files.push({ entry, destination: entry.path, via: 'original', ...(mayMap && mapRoot !== undefined ? { fallback: joinPath(mapRoot, entry.relativePath) } : {}) });
        }
      }
    }
  }
  for (const d of component.directedTargets) {
    if (target === RestoreTarget.DIRECTED && !usedDirected.has(d) && directedByPath.get(joinPath(expandOr(d.sourcePath, env), d.sourceFilename)) === d) {
      errors.push(new VssError('VSS_E_OBJECT_NOT_FOUND', `the directed target for ${d.sourcePath}/${d.sourceFilename} on "${component.fullPath}" names a file that is not in the backup set being restored`));
    }
  }
  return {
    writerId: wid,
    instanceId: iid,
    instanceName: w.components.instanceName,
    writerName: w.metadata.identity.writerName,
    definingComponent: nameOf(defining),
    subcomponents: subs,
    method,
    service: rm.service,
    writerRestore: rm.writerRestore,
    rebootRequired: rm.rebootRequired,
    copyMode: mustMap ? 'replace' : copyMode,
    restoreTarget: target,
    restoreOptions: component.restoreOptions,
    additionalRestores: component.additionalRestores,
    authoritativeRestore: component.authoritativeRestore,
    rollForward: component.getRollForward(),
    restoreName: component.restoreName,
    fileSets,
    files,
    errors,
  };
}

function expandOr(p: string, env: Readonly<Record<string, string | undefined>>): string {
  try {
    return normalizePath('the path', expandVariables('the path', p, env));
  } catch {
    return p;
  }
}
