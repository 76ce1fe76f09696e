// Restore options (spec §14.6, [ML:Setting VSS Restore Options]): one or more comma-separated
// `"Name"="Value"` pairs, each optionally prefixed by `"Sub\Path":` — a subcomponent path
// relative to the component the options are set on — scoping it to that subtree, e.g.
//   "Child1":"Option1"="Value1","Option2"="Value2","Child2\Grandchild3":"Option3"="Value3"
// Names and scopes are case-insensitive; value case belongs to the writer. The documents
// define no escape for a quote inside a quoted string, so none is accepted.
import { VssError } from '../errors.js';

export interface RestoreOption {
  /** The subcomponent path relative to the component, `Child2\Grandchild3`; '' applies to the whole component. */
  readonly scope: string;
  readonly name: string;
  readonly value: string;
}

const bad = (options: string, at: number, what: string): VssError =>
  new VssError('E_INVALIDARG', `restore options ${JSON.stringify(options)}: ${what} at character ${at + 1}; the syntax is "Name"="Value" pairs separated by commas, each optionally prefixed "Sub\\Path": (spec §14.6)`);

/** Parses a restore options string; '' is no options. Throws E_INVALIDARG saying where the syntax breaks. */
export function parseRestoreOptions(options: string): RestoreOption[] {
  const out: RestoreOption[] = [];
  let i = 0;
  const ws = (): void => {
    while (i < options.length && /\s/.test(options[i]!)) i++;
  };
  const quoted = (what: string): string => {
    ws();
    if (options[i] !== '"') throw bad(options, i, `expected a quoted ${what}`);
    const end = options.indexOf('"', i + 1);
    if (end < 0) throw bad(options, i, `the quoted ${what} is not closed`);
    const text = options.slice(i + 1, end);
    i = end + 1;
    return text;
  };
  ws();
  if (i === options.length) return out;
  for (;;) {
    let first = quoted('option name or subcomponent path');
    ws();
    let scope = '';
    if (options[i] === ':') {
      i++;
      scope = first;
      first = quoted('option name');
      ws();
    }
    if (options[i] !== '=') throw bad(options, i, `expected = after "${first}"`);
    i++;
    const value = quoted('value');
    if (first.trim() === '') throw bad(options, i, 'an option name is empty');
    if (scope !== '' && (scope.startsWith('\\') || scope.endsWith('\\') || scope.includes('\\\\'))) {
      throw bad(options, i, `the subcomponent path "${scope}" is not a relative logical path (no leading, trailing or doubled backslash)`);
    }
    out.push({ scope, name: first, value });
    ws();
    if (i === options.length) return out;
    if (options[i] !== ',') throw bad(options, i, 'expected a comma between options');
    i++;
  }
}

/** Standard options (spec §14.6) whose values are defined: a wrong one is the requester's mistake. */
export function checkStandardRestoreOption(o: RestoreOption): void {
  const name = o.name.toLowerCase();
  const v = o.value;
  if (name === 'authoritative' && !/^all$/i.test(v) && !/^item:.+/i.test(v)) {
    throw new VssError('E_INVALIDARG', `restore option "Authoritative" takes "All" or "Item:<item>", not "${v}"`);
  }
  if (name === 'roll forward' && !/^(none|all)$/i.test(v) && !/^partial:.+/i.test(v)) {
    throw new VssError('E_INVALIDARG', `restore option "Roll Forward" takes "None", "All" or "Partial:<point>", not "${v}"`);
  }
  if (name === 'new component name' && v.trim() === '') {
    throw new VssError('E_INVALIDARG', 'restore option "New Component Name" needs a logical path and name');
  }
}

/**
 * The options that apply to the subcomponent at `relativePath` below the component ('' for the
 * component itself): unscoped ones and those scoped to it or an ancestor; a closer scope wins.
 */
export function restoreOptionsFor(options: readonly RestoreOption[], relativePath: string): Map<string, string> {
  const rel = relativePath.toLowerCase();
  const applies = (scope: string): boolean => {
    const s = scope.toLowerCase();
    return s === '' || rel === s || rel.startsWith(`${s}\\`);
  };
  const out = new Map<string, string>();
  const depth = (s: string): number => (s === '' ? 0 : s.split('\\').length);
  for (const o of [...options].filter((x) => applies(x.scope)).sort((a, b) => depth(a.scope) - depth(b.scope))) out.set(o.name.toLowerCase(), o.value);
  return out;
}
