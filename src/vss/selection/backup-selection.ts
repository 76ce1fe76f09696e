// Backup selection (spec §13.2, §4.2, §10.5): which components a requester includes
// explicitly, what each implicitly brings in, which writers participate, and whether
// required components and cross-writer dependencies are satisfied.
import type { BackupComponentsDocument } from '../backup-components.js';
import { ComponentType, componentTypeCodec } from '../enums.js';
import { VssError } from '../errors.js';
import { Guid } from '../guid.js';
import { fullPath } from '../strings.js';
import type { ComponentDependency, WriterMetadata } from '../writer-metadata.js';
import { ComponentTree, type ComponentNode } from './component-tree.js';
import { checkComponentName, validateLogicalPath, isRemotePath, type MatchOptions } from './logical-path.js';

/** How a requester names a component: AddComponent's arguments. */
export interface ComponentRef {
  writerId: Guid | string;
  /** Needed only when several instances of the writer class are present. */
  instanceId?: Guid | string;
  componentType?: ComponentType;
  logicalPath?: string;
  componentName: string;
}

export interface SelectionWriter {
  readonly metadata: WriterMetadata;
  readonly tree: ComponentTree;
  readonly explicit: Set<ComponentNode>;
}

/** An explicit component and its component set (itself first, then implicit members). */
export interface SelectedComponent {
  readonly node: ComponentNode;
  readonly members: readonly ComponentNode[];
}

export interface SelectedWriterResult {
  readonly metadata: WriterMetadata;
  readonly tree: ComponentTree;
  /** In the writer's document order, whatever order they were added in. */
  readonly components: readonly SelectedComponent[];
}

export interface MissingRequired {
  readonly metadata: WriterMetadata;
  readonly missing: readonly ComponentNode[];
}

export type UnmetReason = 'writer-not-found' | 'component-not-found' | 'not-selected' | 'remote' | 'ambiguous-instance' | 'cannot-add';

export interface UnmetDependency {
  readonly writer: WriterMetadata;
  /** The component (explicit or implicit) that declared the dependency. */
  readonly component: ComponentNode;
  readonly dependency: ComponentDependency;
  readonly reason: UnmetReason;
  readonly message: string;
}

export interface BackupSelectionResult {
  /** Participating writers (at least one explicit component), in the order they were given. */
  readonly writers: readonly SelectedWriterResult[];
  readonly unmetDependencies: readonly UnmetDependency[];
}

function toGuid(v: Guid | string, what: string): Guid {
  if (v instanceof Guid) return v;
  const g = Guid.tryParse(v);
  if (!g) throw new VssError('E_INVALIDARG', `${what} "${v}" is not a GUID`);
  return g;
}

function writerLabel(m: WriterMetadata): string {
  return `writer "${m.identity.writerName}" (${m.identity.writerId})`;
}

/** Finds a writer instance among several, by class id and, when given or needed, instance id. */
export function findWriterInstance<W extends { metadata: WriterMetadata }>(writers: readonly W[], writerId: Guid | string, instanceId?: Guid | string): W {
  const wid = toGuid(writerId, 'the writer class id');
  const iid = instanceId === undefined ? undefined : toGuid(instanceId, 'the writer instance id');
  const ofClass = writers.filter((w) => w.metadata.identity.writerId.equals(wid));
  const hits = iid ? ofClass.filter((w) => w.metadata.identity.instanceId.equals(iid)) : ofClass;
  if (hits.length === 0) {
    throw new VssError('VSS_E_OBJECT_NOT_FOUND', iid && ofClass.length
      ? `writer ${wid} has no instance ${iid}; gather writer metadata again and use an instance id it reports`
      : `no writer with class id ${wid} reported metadata; check that the writer is running and enabled`);
  }
  if (hits.length > 1) {
    throw new VssError('E_INVALIDARG', `writer ${wid} has ${hits.length} instances (${hits.map((h) => h.metadata.identity.instanceId).join(', ')}); name the instance id`);
  }
  return hits[0]!;
}

/** The requester's backup-time choice of components over a set of writer metadata documents. */
export class BackupSelection {
  readonly writers: readonly SelectionWriter[];
  /** The writers of each class, by canonical class id: a lookup per component, not a scan of every writer. */
  private readonly byClass = new Map<string, SelectionWriter[]>();

  constructor(metadata: readonly WriterMetadata[], readonly options: MatchOptions = {}) {
    this.writers = metadata.map((m) => ({ metadata: m, tree: new ComponentTree(m, options), explicit: new Set<ComponentNode>() }));
    for (const w of this.writers) {
      const key = w.metadata.identity.writerId.value;
      const same = this.byClass.get(key);
      if (same) same.push(w);
      else this.byClass.set(key, [w]);
    }
  }

  private resolve(ref: ComponentRef): { writer: SelectionWriter; node: ComponentNode } {
    const wid = toGuid(ref.writerId, 'the writer class id');
    const writer = findWriterInstance(this.byClass.get(wid.value) ?? [], wid, ref.instanceId);
    const lp = validateLogicalPath('the logical path', ref.logicalPath ?? '');
    checkComponentName('the component name', ref.componentName);
    const node = writer.tree.get(lp, ref.componentName);
    if (ref.componentType !== undefined && ref.componentType !== node.component.type) {
      throw new VssError('E_INVALIDARG', `component "${node.fullPath}" of ${writerLabel(writer.metadata)} is ${componentTypeCodec.nameOf(node.component.type)}, not ${componentTypeCodec.nameOf(ref.componentType) ?? ref.componentType}`);
    }
    return { writer, node };
  }

  /**
   * AddComponent: include a component explicitly. Rejections (spec §13.2):
   * unknown → VSS_E_OBJECT_NOT_FOUND; twice → VSS_E_OBJECT_ALREADY_EXISTS; implicit-only,
   * or nested in a selectable component that is also explicit (either order) → E_INVALIDARG.
   * E_INVALIDARG because the request itself is wrong whatever the session state (VSS leaves
   * these "undefined"); the message names the component to add instead.
   */
  addComponent(ref: ComponentRef): ComponentNode {
    const { writer, node } = this.resolve(ref);
    const who = `component "${node.fullPath}" of ${writerLabel(writer.metadata)}`;
    if (writer.explicit.has(node)) {
      throw new VssError('VSS_E_OBJECT_ALREADY_EXISTS', `${who} is already included; add each component once`);
    }
    if (node.kind === 'implicit-only') {
      throw new VssError('E_INVALIDARG', `${who} is not selectable for backup; it is backed up as part of "${node.selectableAncestor!.fullPath}" — add that component instead`);
    }
    if (node.kind === 'selectable-subcomponent') {
      for (let a = node.selectableAncestor; a; a = a.selectableAncestor) {
        if (writer.explicit.has(a)) {
          throw new VssError('E_INVALIDARG', `${who} is already included implicitly by "${a.fullPath}", which is selected; keep "${a.fullPath}" or remove it and add "${node.fullPath}" alone`);
        }
      }
    }
    if (node.component.selectable) {
      // The mirror rule, so the outcome never depends on the order of the calls.
      const inner = writer.tree.descendants(node).find((d) => writer.explicit.has(d) && d.component.selectable);
      if (inner) {
        throw new VssError('E_INVALIDARG', `${who} would include "${inner.fullPath}", which is already selected on its own; remove "${inner.fullPath}" first or keep it without "${node.fullPath}"`);
      }
    }
    writer.explicit.add(node);
    return node;
  }

  removeComponent(ref: ComponentRef): void {
    const { writer, node } = this.resolve(ref);
    if (!writer.explicit.delete(node)) {
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `component "${node.fullPath}" of ${writerLabel(writer.metadata)} is not selected`);
    }
  }

  /** The explicit component whose set contains `node`, if it is included at all. */
  definingComponent(writer: SelectionWriter, node: ComponentNode): ComponentNode | undefined {
    if (writer.explicit.has(node)) return node;
    // Only selectable components define sets, and explicit ones never nest.
    for (let a = node.selectableAncestor; a; a = a.selectableAncestor) if (writer.explicit.has(a)) return a;
    return undefined;
  }

  isIncluded(ref: ComponentRef): boolean {
    const { writer, node } = this.resolve(ref);
    return this.definingComponent(writer, node) !== undefined;
  }

  /** Writers that get backup events: those with at least one explicit component (spec §4.2). */
  participating(): SelectionWriter[] {
    return this.writers.filter((w) => w.explicit.size > 0);
  }

  /** Required components of participating writers that are not explicit (spec §13.2 rule 1). */
  missingRequired(): MissingRequired[] {
    const out: MissingRequired[] = [];
    for (const w of this.participating()) {
      const missing = w.tree.required().filter((n) => !w.explicit.has(n));
      if (missing.length) out.push({ metadata: w.metadata, missing });
    }
    return out;
  }

  /** Adds every missing required component of participating writers; returns what it added. */
  addRequiredComponents(): ComponentNode[] {
    const added: ComponentNode[] = [];
    for (const m of this.missingRequired()) {
      const w = this.writers.find((x) => x.metadata === m.metadata)!;
      for (const n of m.missing) {
        w.explicit.add(n);
        added.push(n);
      }
    }
    return added;
  }

  /** Cross-writer dependencies of every included component that are not satisfied (spec §10.5). */
  unmetDependencies(): UnmetDependency[] {
    return this.checkDependencies(false);
  }

  /** Adds the targets of unmet dependencies (to a fixpoint: targets may depend on more); returns what is still unmet. */
  addDependencyTargets(): UnmetDependency[] {
    for (;;) {
      const before = this.explicitCount();
      const unmet = this.checkDependencies(true);
      if (this.explicitCount() === before) return unmet;
    }
  }

  private explicitCount(): number {
    return this.writers.reduce((a, w) => a + w.explicit.size, 0);
  }

  private checkDependencies(add: boolean): UnmetDependency[] {
    const out: UnmetDependency[] = [];
    for (const w of this.participating()) {
      for (const sel of this.selected(w)) {
        for (const member of sel.members) {
          for (const dep of member.component.dependencies) {
            const problem = this.checkDependency(dep, add);
            if (problem) out.push({ writer: w.metadata, component: member, dependency: dep, ...problem });
          }
        }
      }
    }
    return out;
  }

  private checkDependency(dep: ComponentDependency, add: boolean): { reason: UnmetReason; message: string } | undefined {
    const target = `"${fullPath(dep.logicalPath, dep.componentName)}" of writer ${dep.writerId}`;
    if (isRemotePath(dep.logicalPath, dep.componentName)) {
      return { reason: 'remote', message: `${target} is on a remote computer; back it up there (remote agents are not supported)` };
    }
    const instances = this.writers.filter((w) => w.metadata.identity.writerId.equals(dep.writerId));
    if (instances.length === 0) return { reason: 'writer-not-found', message: `writer ${dep.writerId} is not running; start it or leave out the dependent component` };
    let lpOk = true;
    try {
      validateLogicalPath('the dependency logical path', dep.logicalPath);
    } catch {
      lpOk = false;
    }
    const hits = lpOk ? instances.flatMap((w) => (w.tree.find(dep.logicalPath, dep.componentName) ? [{ w, n: w.tree.find(dep.logicalPath, dep.componentName)! }] : [])) : [];
    if (hits.length === 0) return { reason: 'component-not-found', message: `${target} does not exist in that writer's metadata` };
    if (hits.some(({ w, n }) => this.definingComponent(w, n))) return undefined;
    if (!add) return { reason: 'not-selected', message: `${target} is not selected; add it (or use the option that adds dependency targets)` };
    if (hits.length > 1) return { reason: 'ambiguous-instance', message: `${target} exists in ${hits.length} instances of that writer; add it to the right instance yourself` };
    const { w, n } = hits[0]!;
    // An implicit-only target comes in through its closest selectable ancestor.
    const toAdd = n.kind === 'implicit-only' ? n.selectableAncestor! : n;
    try {
      this.addComponent({ writerId: w.metadata.identity.writerId, instanceId: w.metadata.identity.instanceId, logicalPath: toAdd.component.logicalPath, componentName: toAdd.component.componentName });
      return undefined;
    } catch (e) {
      return { reason: 'cannot-add', message: `${target} could not be added: ${(e as Error).message}` };
    }
  }

  private selected(w: SelectionWriter): SelectedComponent[] {
    return [...w.explicit].sort((a, b) => a.index - b.index).map((node) => ({ node, members: w.tree.componentSet(node) }));
  }

  /**
   * The selection as PrepareForBackup needs it. A participating writer missing a required
   * component is an error here, before any event is sent, naming every missing one.
   */
  result(): BackupSelectionResult {
    const missing = this.missingRequired();
    if (missing.length) {
      const lines = missing.map((m) => `${writerLabel(m.metadata)}: ${m.missing.map((n) => `"${n.fullPath}"`).join(', ')}`);
      throw new VssError('E_INVALIDARG', `a writer with selected components must also have all its required components; add ${lines.join('; ')} (or leave the writer out)`);
    }
    return {
      writers: this.participating().map((w) => ({ metadata: w.metadata, tree: w.tree, components: this.selected(w) })),
      unmetDependencies: this.unmetDependencies(),
    };
  }

  /** Records the explicit components in a Backup Components Document (AddComponent for each). */
  applyTo(bcd: BackupComponentsDocument): void {
    for (const w of this.result().writers) {
      const id = w.metadata.identity;
      const wc = bcd.writer(id.writerId, id.instanceId, id.instanceName, w.metadata.backupSchema);
      for (const c of w.components) {
        wc.addComponent(c.node.component.type, c.node.component.logicalPath, c.node.component.componentName);
      }
    }
  }
}
