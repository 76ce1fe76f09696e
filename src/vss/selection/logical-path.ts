// Logical paths (spec §13.1): `\`-separated elements, root = "" (never "\").
// Matching is ordinal-ignore-case by default (spec §13.1 leaves case UNVERIFIED and asks
// for a configurable choice); `caseSensitive: true` switches to exact matching.
import { VssError } from '../errors.js';
import { checkXmlText, fullPath } from '../strings.js';

export interface MatchOptions {
  /** Compare logical paths and component names exactly (default: ordinal-ignore-case). */
  caseSensitive?: boolean;
}

function badArg(message: string): never {
  throw new VssError('E_INVALIDARG', message);
}

/** Rejects logical paths VSS could never address: empty elements, leading/trailing/doubled `\`. */
export function validateLogicalPath(what: string, logicalPath: string): string {
  if (typeof logicalPath !== 'string') badArg(`${what} must be a string`);
  if (logicalPath === '') return logicalPath;
  checkXmlText(what, logicalPath);
  if (logicalPath.startsWith('\\')) {
    badArg(`${what} "${logicalPath}" starts with a backslash; the root logical path is "" and elements are separated by single backslashes`);
  }
  if (logicalPath.endsWith('\\')) badArg(`${what} "${logicalPath}" ends with a backslash; remove the trailing "\\"`);
  if (logicalPath.includes('\\\\')) badArg(`${what} "${logicalPath}" has a doubled backslash (an empty element); use a single "\\" between elements`);
  return logicalPath;
}

export function checkComponentName(what: string, name: string): string {
  if (typeof name !== 'string' || name === '') badArg(`${what} is required`);
  if (name.includes('\\')) badArg(`${what} "${name}" contains a backslash; put hierarchy in the logical path instead`);
  return checkXmlText(what, name);
}

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
