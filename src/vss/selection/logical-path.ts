// Logical paths (spec §13.1): `\`-separated elements, root = "" (never "\").
// Matching is ordinal-ignore-case by default (spec §13.1 leaves case UNVERIFIED and asks
// for a configurable choice); `caseSensitive: true` switches to exact matching.
import { fullPath } from '../strings.js';

export interface MatchOptions {
  /** Compare logical paths and component names exactly (default: ordinal-ignore-case). */
  caseSensitive?: boolean;
}

export { checkComponentName, validateLogicalPath } from '../strings.js';

/** The lookup key of a full path under the chosen case rule. */
export function pathKey(path: string, options: MatchOptions | undefined): string {
  // toUpperCase is what ordinal-ignore-case compares on Windows.
  return options?.caseSensitive ? path : path.toUpperCase();
}

export function componentKey(logicalPath: string, componentName: string, options: MatchOptions | undefined): string {
  return pathKey(fullPath(logicalPath, componentName), options);
}

/** A remote dependency target (spec §10.5): a leading `\\` on the logical path or the name. */
export function isRemotePath(logicalPath: string, componentName: string): boolean {
  return logicalPath.startsWith('\\\\') || componentName.startsWith('\\\\');
}
