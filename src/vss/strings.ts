// Shared string rules of the model.
import { VssError } from './errors.js';

// Characters XML 1.0 cannot carry at all (not even escaped): a value holding one could
// never be saved, so the model refuses it when it is set.
// eslint-disable-next-line no-control-regex
const NON_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function checkXmlText(what: string, value: string): string {
  const m = NON_XML_CHAR.exec(value);
  if (m) {
    throw new VssError('E_INVALIDARG', `${what} contains the character U+${m[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()} at offset ${m.index}, which an XML document cannot hold; remove it`);
  }
  return value;
}

/** `LP\name`, or `name` for a top-level component (spec §13.1). */
export function fullPath(logicalPath: string, componentName: string): string {
  return logicalPath ? `${logicalPath}\\${componentName}` : componentName;
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

/** A component name is required and holds no backslash: hierarchy belongs in the logical path. */
export function checkComponentName(what: string, name: string): string {
  if (typeof name !== 'string' || name === '') badArg(`${what} is required`);
  if (name.includes('\\')) badArg(`${what} "${name}" contains a backslash; put hierarchy in the logical path instead`);
  return checkXmlText(what, name);
}
