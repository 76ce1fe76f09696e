// VSS errors on the wire: a JSON-RPC error whose code is the HRESULT as a signed 32-bit
// integer and whose data names the VSS error, so any client can act on it, and the SDKs turn
// it back into the same VssError.
import { ResponseError } from 'vscode-jsonrpc/node';
import { z } from 'zod';
import { HRESULT, VssError, type VssErrorName } from '../vss/errors.js';
import { RpcErrorCode } from './framing.js';

export interface WireErrorData {
  /** The VSS error name, e.g. VSS_E_BAD_STATE. */
  vssError: string;
  /** The HRESULT, unsigned (0x80042301 = 2147754753). */
  hresult: number;
}

export function toResponseError(e: unknown): ResponseError<WireErrorData | undefined> {
  if (e instanceof ResponseError) return e as ResponseError<WireErrorData | undefined>;
  if (VssError.is(e)) {
    const detail = e.message.startsWith(`${e.code}: `) ? e.message.slice(e.code.length + 2) : e.message;
    return new ResponseError(e.hresult | 0, detail, { vssError: e.code, hresult: e.hresult });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new ResponseError(RpcErrorCode.InternalError, `internal error: ${message}`, undefined);
}

function isVssName(name: unknown): name is VssErrorName {
  return typeof name === 'string' && name in HRESULT && (HRESULT[name as VssErrorName] >>> 0) >= 0x80000000;
}

/** A VssError again from what the peer answered; JSON-RPC protocol errors become VSS_E_UNEXPECTED. */
export function fromWireError(e: unknown, what: string): VssError {
  if (VssError.is(e)) return e;
  if (e instanceof ResponseError) {
    const data = e.data as Partial<WireErrorData> | undefined;
    if (data && isVssName(data.vssError)) return new VssError(data.vssError, e.message);
    return new VssError('VSS_E_UNEXPECTED', `${what}: ${e.message} (JSON-RPC error ${e.code})`, { cause: e });
  }
  const message = e instanceof Error ? e.message : String(e);
  if (/connection (got disposed|is closed)|has been disposed|write after end|EPIPE|ECONNRESET/i.test(message)) {
    return new VssError('VSS_E_WRITER_INFRASTRUCTURE', `${what}: the connection to the shadowcopy daemon closed; is it still running?`, { cause: e });
  }
  return new VssError('VSS_E_UNEXPECTED', `${what}: ${message}`, { cause: e });
}

/** Validates params with a schema; a mismatch is JSON-RPC InvalidParams naming the bad fields. */
export function parseParams<S extends z.ZodType>(schema: S, params: unknown, method: string): z.output<S> {
  const r = schema.safeParse(params ?? {});
  if (r.success) return r.data;
  throw new ResponseError(RpcErrorCode.InvalidParams, `invalid params for ${method}: ${z.prettifyError(r.error).replace(/\n/g, '; ')}`);
}
