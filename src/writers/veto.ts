// How the built-in writers turn an engine's failure into VSS terms: SetWriterFailure with the
// engine's own VSS_E_WRITERERROR_* code (anything else is NONRETRYABLE) plus a veto, so the
// requester sees whether retrying can help.
import type { Writer } from '../writer/index.js';
import { VssError, WRITER_FAILURE_CODES, type WriterFailureCode } from '../vss/index.js';

export function failureCodeOf(e: unknown): WriterFailureCode {
  return VssError.is(e) && (WRITER_FAILURE_CODES as readonly string[]).includes(e.code) ? (e.code as WriterFailureCode) : 'VSS_E_WRITERERROR_NONRETRYABLE';
}

/** Runs `work` inside a handler: true when it succeeds; on a rejection sets the failure and vetoes. */
export async function vetoOnFailure(writer: Writer, work: () => unknown): Promise<boolean> {
  try {
    await work();
    return true;
  } catch (e) {
    writer.setWriterFailureEx(failureCodeOf(e), 0, e instanceof Error ? e.message : String(e));
    return false;
  }
}
