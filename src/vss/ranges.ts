// Byte-range lists of partial files and directed targets (spec §14.5):
// `offset:length[,offset:length…]`, 64-bit values in decimal or 0x hex, or `File=<path>`
// naming a binary ranges file (u64 count, then count × (u64 offset, u64 length), little-endian).
import { VssError } from './errors.js';

export interface ByteRange {
  offset: bigint;
  length: bigint;
}

export type RangeList = { kind: 'inline'; ranges: ByteRange[] } | { kind: 'file'; path: string };

const U64_MAX = (1n << 64n) - 1n;

function parseU64(what: string, text: string): bigint {
  const t = text.trim();
  if (!/^(0[xX][0-9a-fA-F]+|\d+)$/.test(t)) throw new VssError('E_INVALIDARG', `${what} "${text}" is not a decimal or 0x-hexadecimal number`);
  const v = BigInt(t);
  if (v > U64_MAX) throw new VssError('E_INVALIDARG', `${what} ${text} does not fit in 64 bits`);
  return v;
}

/** Parses a range list; an empty string is the empty list (the whole file). */
export function parseRangeList(text: string): RangeList {
  const t = text.trim();
  if (/^file=/i.test(t)) {
    const path = t.slice(5).trim();
    if (!path) throw new VssError('E_INVALIDARG', 'the ranges "File=" form needs the path of a ranges file');
    return { kind: 'file', path };
  }
  if (t === '') return { kind: 'inline', ranges: [] };
  const ranges = t.split(',').map((pair) => {
    const parts = pair.split(':');
    if (parts.length !== 2) throw new VssError('E_INVALIDARG', `the range "${pair}" is not offset:length`);
    return { offset: parseU64('the range offset', parts[0]!), length: parseU64('the range length', parts[1]!) };
  });
  return { kind: 'inline', ranges };
}

/** Decodes a binary ranges file. */
export function decodeRangesFile(bytes: Uint8Array): ByteRange[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8) throw new VssError('E_INVALIDARG', `a ranges file holds at least an 8-byte count; this one has ${bytes.byteLength} bytes`);
  const count = view.getBigUint64(0, true);
  if (BigInt(bytes.byteLength) !== 8n + count * 16n) {
    throw new VssError('E_INVALIDARG', `the ranges file says it holds ${count} ranges (${8n + count * 16n} bytes) but has ${bytes.byteLength} bytes`);
  }
  const out: ByteRange[] = [];
  for (let i = 0; i < Number(count); i++) {
    out.push({ offset: view.getBigUint64(8 + i * 16, true), length: view.getBigUint64(16 + i * 16, true) });
  }
  return out;
}

/** Encodes ranges in the binary ranges-file form. */
export function encodeRangesFile(ranges: readonly ByteRange[]): Uint8Array {
  const bytes = new Uint8Array(8 + ranges.length * 16);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(ranges.length), true);
  ranges.forEach((r, i) => {
    view.setBigUint64(8 + i * 16, r.offset, true);
    view.setBigUint64(16 + i * 16, r.length, true);
  });
  return bytes;
}

export function formatRangeList(ranges: readonly ByteRange[]): string {
  return ranges.map((r) => `${r.offset}:${r.length}`).join(',');
}
