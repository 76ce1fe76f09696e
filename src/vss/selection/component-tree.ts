// One writer's components as a tree (spec §13.1). Ancestors are found by the logical
// path's prefixes, looked up in a map keyed by full path: O(depth) per component, never a
// scan, so trees of 100k components index in linear time.
import { VssError } from '../errors.js';
import { fullPath } from '../strings.js';
import type { WmdComponent, WriterMetadata } from '../writer-metadata.js';
import { checkComponentName, validateLogicalPath, componentKey, pathKey, type MatchOptions } from './logical-path.js';

/** The four kinds of spec §13.1. */
export type ComponentKind = 'required' | 'optional-top' | 'implicit-only' | 'selectable-subcomponent';

export interface ComponentNode {
  readonly component: WmdComponent;
  readonly fullPath: string;
  readonly key: string;
  /** Position in the writer's metadata: the canonical order of every result. */
  readonly index: number;
  /** Closest ancestor that exists as a component (intermediate elements need not). */
  parent: ComponentNode | undefined;
  readonly children: ComponentNode[];
  /** Closest selectable-for-backup ancestor. */
  selectableAncestor: ComponentNode | undefined;
  kind: ComponentKind;
}

export class ComponentTree {
  readonly nodes: readonly ComponentNode[];
  private readonly byKey = new Map<string, ComponentNode>();

  constructor(
    readonly metadata: WriterMetadata,
    readonly options: MatchOptions = {},
  ) {
    const writer = `writer "${metadata.identity.writerName}" (${metadata.identity.writerId})`;
    const nodes: ComponentNode[] = [];
    for (const [index, component] of metadata.components.entries()) {
      validateLogicalPath(`the logical path of a component of ${writer}`, component.logicalPath);
      checkComponentName(`a component name of ${writer}`, component.componentName);
      const key = componentKey(component.logicalPath, component.componentName, options);
      const node: ComponentNode = {
        component,
        fullPath: fullPath(component.logicalPath, component.componentName),
        key,
        index,
        parent: undefined,
        children: [],
        selectableAncestor: undefined,
        kind: 'required',
      };
      const clash = this.byKey.get(key);
      if (clash) {
        throw new VssError(
          'VSS_E_OBJECT_ALREADY_EXISTS',
          `${writer} declares "${clash.fullPath}" and "${node.fullPath}", which are the same component under ${options.caseSensitive ? 'exact' : 'case-insensitive'} matching${options.caseSensitive ? '' : '; use caseSensitive matching if the writer relies on case'}`,
        );
      }
      this.byKey.set(key, node);
      nodes.push(node);
    }
    // Parent = the longest proper prefix of the logical path that names a component.
    for (const node of nodes) {
      let prefix = pathKey(node.component.logicalPath, options);
      while (prefix !== '') {
        const p = this.byKey.get(prefix);
        if (p) {
          node.parent = p;
          p.children.push(node);
          break;
        }
        const cut = prefix.lastIndexOf('\\');
        prefix = cut < 0 ? '' : prefix.slice(0, cut);
      }
    }
    // Parents can come later in document order; walk top-down from the roots.
    const stack = nodes.filter((n) => !n.parent);
    while (stack.length) {
      const n = stack.pop()!;
      const p = n.parent;
      n.selectableAncestor = p ? (p.component.selectable ? p : p.selectableAncestor) : undefined;
      n.kind = n.component.selectable
        ? n.selectableAncestor ? 'selectable-subcomponent' : 'optional-top'
        : n.selectableAncestor ? 'implicit-only' : 'required';
      for (const c of n.children) stack.push(c);
    }
    this.nodes = nodes;
  }

  find(logicalPath: string, componentName: string): ComponentNode | undefined {
    return this.byKey.get(componentKey(logicalPath ?? '', componentName, this.options));
  }

  /** The component, or VSS_E_OBJECT_NOT_FOUND naming it and its writer. */
  get(logicalPath: string, componentName: string): ComponentNode {
    const n = this.find(logicalPath, componentName);
    if (!n) {
      const id = this.metadata.identity;
      throw new VssError('VSS_E_OBJECT_NOT_FOUND', `writer "${id.writerName}" (${id.writerId}) has no component "${fullPath(logicalPath, componentName)}"; check the logical path and name against its metadata`);
    }
    return n;
  }

  /** Ancestors that exist as components, closest first. */
  ancestors(node: ComponentNode): ComponentNode[] {
    const out: ComponentNode[] = [];
    for (let p = node.parent; p; p = p.parent) out.push(p);
    return out;
  }

  isAncestor(ancestor: ComponentNode, node: ComponentNode): boolean {
    for (let p = node.parent; p; p = p.parent) if (p === ancestor) return true;
    return false;
  }

  /** Every descendant, depth first in document order. */
  descendants(node: ComponentNode): ComponentNode[] {
    // Iterative: a writer may nest deeply, and recursion would overflow the stack.
    const out: ComponentNode[] = [];
    const stack = [...node.children].reverse();
    while (stack.length) {
      const n = stack.pop()!;
      out.push(n);
      for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]!);
    }
    return out;
  }

  /** What an explicit inclusion of `node` covers: a selectable component's whole set, else itself. */
  componentSet(node: ComponentNode): ComponentNode[] {
    return node.component.selectable ? [node, ...this.descendants(node)] : [node];
  }

  required(): ComponentNode[] {
    return this.nodes.filter((n) => n.kind === 'required');
  }
}
