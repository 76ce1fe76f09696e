// Reads a VSS document into a small element tree: strict XML (saxes), tolerant VSS.
// Elements are matched by local name (nested BCD nodes re-declare or blank the namespace),
// whitespace between elements is ignored, UTF-8 and UTF-16 are detected with or without a BOM.
// Any failure is a VssXmlError with line, column and what was expected: never a partial model.
import { SaxesParser } from 'saxes';
import { VssXmlError } from '../errors.js';
import { Guid } from '../guid.js';
import type { EnumCodec } from '../enums.js';

/** An element as the reader sees it: local name, attributes, where it starts. Not retained. */
export interface XmlElement {
  /** Local name (prefix removed). */
  name: string;
  attrs: Record<string, string>;
  line: number;
  column: number;
}

/**
 * What an element does with its children: `open` returns the frame of a known child, or
 * undefined to skip an unknown one (newer Windows versions may add elements); `close` runs
 * when the element ends.
 */
export interface Frame {
  open?(child: XmlElement): Frame | undefined;
  close?(): void;
}

/** Ignores its whole subtree. */
export const SKIP: Frame = {};

/** Bytes to text: UTF-16 by BOM or by a `<` followed by a zero byte, else UTF-8 (BOM optional). */
export function decodeDocument(input: string | Uint8Array, source?: string): string {
  if (typeof input === 'string') return input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const b = input;
  let encoding: 'utf-8' | 'utf-16le' | 'utf-16be' = 'utf-8';
  let offset = 0;
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) offset = 3;
  else if (b[0] === 0xff && b[1] === 0xfe) [encoding, offset] = ['utf-16le', 2];
  else if (b[0] === 0xfe && b[1] === 0xff) [encoding, offset] = ['utf-16be', 2];
  else if (b[0] === 0x3c && b[1] === 0x00) encoding = 'utf-16le';
  else if (b[0] === 0x00 && b[1] === 0x3c) encoding = 'utf-16be';
  try {
    return new TextDecoder(encoding, { fatal: true, ignoreBOM: true }).decode(b.subarray(offset));
  } catch {
    throw new VssXmlError(`the document is not valid ${encoding.toUpperCase()} text`, 1, 1, source);
  }
}

function localName(qname: string): string {
  const i = qname.indexOf(':');
  return i < 0 ? qname : qname.slice(i + 1);
}

/**
 * A saxes parser with its handlers, reused from one document to the next: a parser a document
 * makes and drops takes its hidden classes with it at the next full garbage collection, and
 * the tokenizer's optimized code with them (every read after it runs unoptimized for a while).
 */
class XmlReader {
  private readonly parser = new SaxesParser({ position: true });
  private stack: Frame[] = [];
  private source: string | undefined;
  private root: ((el: XmlElement) => Frame) | undefined;
  private sawRoot = false;
  private startLine = 1;
  private startColumn = 1;

  constructor() {
    const parser = this.parser;
    parser.on('error', (err) => {
      // saxes prefixes "line:column: "; keep only what went wrong.
      const detail = err.message.replace(/^(?:[^:]*:)?\d+:\d+: /, '');
      throw new VssXmlError(`malformed XML: ${detail}`, parser.line, Math.max(1, parser.column), this.source);
    });
    parser.on('opentagstart', (tag) => {
      this.startLine = parser.line;
      // saxes has consumed "<", the name and the character that ended it.
      this.startColumn = Math.max(1, parser.column - tag.name.length - 1);
    });
    parser.on('opentag', (tag) => {
      const el: XmlElement = { name: localName(tag.name), attrs: tag.attributes as Record<string, string>, line: this.startLine, column: this.startColumn };
      const stack = this.stack;
      const parent = stack[stack.length - 1];
      let frame: Frame;
      if (parent === undefined) {
        this.sawRoot = true;
        frame = this.root!(el);
      } else {
        frame = (parent !== SKIP && parent.open?.(el)) || SKIP;
      }
      stack.push(frame);
    });
    parser.on('closetag', () => {
      this.stack.pop()?.close?.();
    });
    parser.on('text', (t) => {
      if (this.stack.length > 0 && /\S/.test(t)) {
        throw new VssXmlError(`unexpected text "${t.trim().slice(0, 40)}": VSS documents keep all data in attributes`, parser.line, parser.column, this.source);
      }
    });
    parser.on('cdata', () => {
      throw new VssXmlError('unexpected CDATA section: VSS documents keep all data in attributes', parser.line, parser.column, this.source);
    });
  }

  /** Reads one document; throws on the first fault, after which this reader must not be reused. */
  read(text: string, source: string | undefined, root: (el: XmlElement) => Frame): void {
    this.stack = [];
    this.source = source;
    this.root = root;
    this.sawRoot = false;
    this.startLine = 1;
    this.startColumn = 1;
    // close() ends the document and leaves the parser ready for the next one.
    this.parser.write(text).close();
    this.root = undefined;
    if (!this.sawRoot) throw new VssXmlError('the document is empty: expected a root element', 1, 1, source);
  }
}

/** The reader between documents; a nested or failed read makes its own. */
let idleReader: XmlReader | undefined;

/**
 * Streams a whole document through frames, building the model as it goes (no intermediate
 * tree: retaining one costs more than the tokenizing). `root` receives the root element.
 */
export function readXml(text: string, source: string | undefined, root: (el: XmlElement) => Frame): void {
  const reader = idleReader ?? new XmlReader();
  idleReader = undefined;
  reader.read(text, source, root);
  // Only a reader that finished a document goes back: one that threw is mid-document.
  idleReader = reader;
}

/** Typed attribute access that reports schema violations at the element's position. */
export class AttributeReader {
  constructor(private readonly source?: string) {}

  fail(el: XmlElement, detail: string): never {
    throw new VssXmlError(detail, el.line, el.column, this.source);
  }

  str(el: XmlElement, name: string): string | undefined {
    return el.attrs[name];
  }

  required(el: XmlElement, name: string): string {
    const v = el.attrs[name];
    if (v === undefined || v === '') this.fail(el, `<${el.name}> is missing the required attribute ${name}`);
    return v;
  }

  /** yes/no (any case); an omitted boolean is no. */
  bool(el: XmlElement, name: string, fallback = false): boolean {
    const v = el.attrs[name];
    if (v === undefined) return fallback;
    if (v === 'yes') return true;
    if (v === 'no') return false;
    const l = v.toLowerCase();
    if (l === 'yes') return true;
    if (l === 'no') return false;
    return this.fail(el, `attribute ${name} of <${el.name}> is "${v}": expected yes or no`);
  }

  /** A decimal unsigned 32-bit number. */
  uint(el: XmlElement, name: string, fallback = 0): number {
    const v = el.attrs[name];
    if (v === undefined || v === '') return fallback;
    if (!isDecimal(v) || Number(v) > 0xffffffff) {
      this.fail(el, `attribute ${name} of <${el.name}> is "${v}": expected a decimal number from 0 to 4294967295`);
    }
    return Number(v);
  }

  guid(el: XmlElement, name: string): Guid {
    const v = this.required(el, name);
    return Guid.tryParse(v) ?? this.fail(el, `attribute ${name} of <${el.name}> is "${v}": expected a GUID (8-4-4-4-12 hexadecimal digits)`);
  }

  optionalGuid(el: XmlElement, name: string): Guid | undefined {
    return el.attrs[name] === undefined || el.attrs[name] === '' ? undefined : this.guid(el, name);
  }

  enumToken<V extends number>(el: XmlElement, name: string, codec: EnumCodec<V>, fallback?: V): V {
    const v = el.attrs[name];
    if (v === undefined || v === '') {
      if (fallback !== undefined) return fallback;
      this.fail(el, `<${el.name}> is missing the required attribute ${name} (one of ${codec.allTokens().join(', ')})`);
    }
    const value = codec.fromToken(v);
    if (value === undefined) this.fail(el, `attribute ${name} of <${el.name}> is "${v}": expected one of ${codec.allTokens().join(', ')}`);
    return value;
  }

  expectRoot(el: XmlElement, name: string): void {
    if (el.name !== name) this.fail(el, `the root element is <${el.name}>: expected <${name}>`);
  }

  /** Fails at the element's position when a required child was never seen. */
  requireChild(el: XmlElement, seen: boolean, child: string): void {
    if (!seen) this.fail(el, `<${el.name}> has no <${child}> child: expected exactly one`);
  }

  /** Fails when a child that may appear once appears again. */
  once(parent: string, el: XmlElement, seen: boolean): void {
    if (seen) this.fail(el, `<${parent}> has a second <${el.name}>: expected exactly one`);
  }
}

function isDecimal(v: string): boolean {
  if (v.length > 10) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

// Output ------------------------------------------------------------------------------

const ESCAPE_RE = /[&<>"\r\n\t]/g;
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\r': '&#xD;', '\n': '&#xA;', '\t': '&#x9;' };

/** Escapes an attribute value; CR, LF and TAB as character references so they survive a reread. */
export function escapeAttr(value: string): string {
  ESCAPE_RE.lastIndex = 0;
  return ESCAPE_RE.test(value) ? value.replace(ESCAPE_RE, (c) => ESCAPES[c]!) : value;
}

export function yesNo(b: boolean): string {
  return b ? 'yes' : 'no';
}

/** ` name="value"`, or nothing when the value is undefined. */
export function attr(name: string, value: string | number | undefined): string {
  return value === undefined ? '' : ` ${name}="${typeof value === 'number' ? value : escapeAttr(value)}"`;
}

/**
 * Collects output pieces and flattens them every few thousand, so a large document is not
 * held as hundreds of thousands of small rope strings until the end (which made writing
 * superlinear in the number of components).
 */
export class XmlSink {
  private parts: string[] = [];
  private chunks: string[] = [];

  push(piece: string): void {
    this.parts.push(piece);
    if (this.parts.length >= 2048) {
      this.chunks.push(this.parts.join(''));
      this.parts = [];
    }
  }

  /** The document written so far; the sink is empty after. */
  take(): string {
    this.chunks.push(this.parts.join(''));
    const text = this.chunks.join('');
    this.clear();
    return text;
  }

  clear(): void {
    this.parts = [];
    this.chunks = [];
  }
}

/** The sink between documents; a nested write makes its own. */
let idleSink: XmlSink | undefined;

/**
 * Writes one document into a sink reused from one document to the next, as readXml reuses
 * its parser: a sink made and dropped per document lost its hidden class at every full GC,
 * and the writers that fill it their optimized code.
 */
export function writeXml(write: (out: XmlSink) => void): string {
  const out = idleSink ?? new XmlSink();
  idleSink = undefined;
  try {
    write(out);
    return out.take();
  } finally {
    // Empty after take(); after a throw, the partial document goes.
    out.clear();
    idleSink = out;
  }
}
