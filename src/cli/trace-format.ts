// `shadowcopy trace`: a session's timeline as a table, and how long each writer was frozen.
import type { TimelineWire } from '../protocol/admin.js';

export interface FrozenWindow {
  writer: string;
  instanceId: string;
  frozenMs: number;
}

/** Freeze start to Thaw (or Abort) end, per writer instance. */
export function frozenWindows(t: TimelineWire): FrozenWindow[] {
  const out: FrozenWindow[] = [];
  const byInstance = new Map<string, { writer: string; freezeAt?: number; endAt?: number }>();
  for (const e of t.entries) {
    if (e.kind !== 'event' || !e.instanceId) continue;
    const w = byInstance.get(e.instanceId) ?? { writer: e.writerName ?? e.writerId ?? e.instanceId };
    const at = Date.parse(e.at);
    if (e.name === 'Freeze' && w.freezeAt === undefined) w.freezeAt = at;
    if ((e.name === 'Thaw' || e.name === 'Abort') && w.freezeAt !== undefined && w.endAt === undefined) w.endAt = at + e.durationMs;
    byInstance.set(e.instanceId, w);
  }
  for (const [instanceId, w] of byInstance) {
    if (w.freezeAt !== undefined && w.endAt !== undefined) out.push({ writer: w.writer, instanceId, frozenMs: w.endAt - w.freezeAt });
  }
  return out;
}

export function formatTrace(t: TimelineWire): string {
  const start = Date.parse(t.startedAt);
  const lines = [
    `Session ${t.sessionId}${t.snapshotSetId ? `, snapshot set ${t.snapshotSetId}` : ''}`,
    `  started ${t.startedAt}${t.endedAt ? `, ended ${t.endedAt}` : ' (still open)'}`,
    '',
    `  ${'at (ms)'.padStart(9)}  ${'took (ms)'.padStart(9)}  ${'what'.padEnd(28)}  ${'who'.padEnd(30)}  answer`,
  ];
  for (const e of t.entries) {
    const what = e.kind === 'event' ? e.name : e.kind === 'call' ? `call ${e.name}` : `provider ${e.name}`;
    const who = e.kind === 'event' ? (e.writerName ?? e.writerId ?? '') : e.kind === 'call' ? 'requester' : 'provider';
    const answer = `${e.answer}${e.message ? ` (${e.message})` : ''}`;
    lines.push(`  ${String(Date.parse(e.at) - start).padStart(9)}  ${e.durationMs.toFixed(1).padStart(9)}  ${what.padEnd(28)}  ${who.slice(0, 30).padEnd(30)}  ${answer}`);
  }
  const frozen = frozenWindows(t);
  if (frozen.length) {
    lines.push('', '  Frozen (Freeze to Thaw):');
    for (const f of frozen) lines.push(`    ${f.writer}: ${f.frozenMs.toFixed(1)} ms`);
  }
  return lines.join('\n');
}
