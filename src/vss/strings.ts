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

/**
 * A logical path is empty (top level) or `\`-separated non-empty elements: no leading,
 * trailing or doubled backslash, which would name an element that cannot exist.
 */
export function checkLogicalPath(logicalPath: string): string {
  if (logicalPath !== '' && logicalPath.split('\\').some((e) => e === '')) {
    throw new VssError('E_INVALIDARG', `the logical path "${logicalPath}" has an empty element (a leading, trailing or doubled backslash); write it as element\\element`);
  }
  return checkXmlText('the logical path', logicalPath);
}
