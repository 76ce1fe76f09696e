// Writer state helpers shared by tests and tools (spec §2.1, §7.1).
import { WriterState, writerStateCodec } from '../vss/index.js';

export function isFailedWriterState(s: number): boolean {
  return s === WriterState.UNKNOWN || (s >= WriterState.FAILED_AT_IDENTIFY && s <= WriterState.FAILED_AT_BACKUPSHUTDOWN);
}

/** `VSS_WS_STABLE` for 1. */
export function writerStateName(s: number): string {
  return writerStateCodec.nameOf(s) ?? `state ${s}`;
}
