// Every HRESULT of the VSS model (spec §3) and the typed error that carries one.
// Errors name the VSS code and say what to do, so a user can act on the message alone.

export const HRESULT = {
  S_OK: 0x0,
  S_FALSE: 0x1,
  E_ACCESSDENIED: 0x80070005,
  E_INVALIDARG: 0x80070057,
  E_OUTOFMEMORY: 0x8007000e,
  E_NOTIMPL: 0x80004001,
  E_UNEXPECTED: 0x8000ffff,
  VSS_E_BAD_STATE: 0x80042301,
  VSS_E_UNEXPECTED: 0x80042302,
  VSS_E_PROVIDER_ALREADY_REGISTERED: 0x80042303,
  VSS_E_PROVIDER_NOT_REGISTERED: 0x80042304,
  VSS_E_PROVIDER_VETO: 0x80042306,
  VSS_E_PROVIDER_IN_USE: 0x80042307,
  VSS_E_OBJECT_NOT_FOUND: 0x80042308,
  VSS_S_ASYNC_PENDING: 0x00042309,
  VSS_S_ASYNC_FINISHED: 0x0004230a,
  VSS_S_ASYNC_CANCELLED: 0x0004230b,
  VSS_E_VOLUME_NOT_SUPPORTED: 0x8004230c,
  VSS_E_OBJECT_ALREADY_EXISTS: 0x8004230d,
  VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER: 0x8004230e,
  VSS_E_UNEXPECTED_PROVIDER_ERROR: 0x8004230f,
  VSS_E_CORRUPT_XML_DOCUMENT: 0x80042310,
  VSS_E_INVALID_XML_DOCUMENT: 0x80042311,
  VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED: 0x80042312,
  VSS_E_FLUSH_WRITES_TIMEOUT: 0x80042313,
  VSS_E_HOLD_WRITES_TIMEOUT: 0x80042314,
  VSS_E_UNEXPECTED_WRITER_ERROR: 0x80042315,
  VSS_E_SNAPSHOT_SET_IN_PROGRESS: 0x80042316,
  VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED: 0x80042317,
  VSS_E_WRITER_INFRASTRUCTURE: 0x80042318,
  VSS_E_WRITER_NOT_RESPONDING: 0x80042319,
  VSS_E_WRITER_ALREADY_SUBSCRIBED: 0x8004231a,
  VSS_E_UNSUPPORTED_CONTEXT: 0x8004231b,
  VSS_E_VOLUME_IN_USE: 0x8004231d,
  VSS_E_MAXIMUM_DIFFAREA_ASSOCIATIONS_REACHED: 0x8004231e,
  VSS_E_INSUFFICIENT_STORAGE: 0x8004231f,
  VSS_E_NO_SNAPSHOTS_IMPORTED: 0x80042320,
  VSS_S_SOME_SNAPSHOTS_NOT_IMPORTED: 0x00042321,
  VSS_E_SOME_SNAPSHOTS_NOT_IMPORTED: 0x80042321,
  VSS_E_REBOOT_REQUIRED: 0x80042327,
  VSS_E_TRANSACTION_FREEZE_TIMEOUT: 0x80042328,
  VSS_E_TRANSACTION_THAW_TIMEOUT: 0x80042329,
  VSS_E_UNSELECTED_VOLUME: 0x8004232a,
  VSS_E_SNAPSHOT_NOT_IN_SET: 0x8004232b,
  VSS_E_NESTED_VOLUME_LIMIT: 0x8004232c,
  VSS_E_VOLUME_NOT_LOCAL: 0x8004232d,
  VSS_E_CLUSTER_TIMEOUT: 0x8004232e,
  VSS_E_NOT_SUPPORTED: 0x8004232f,
  VSS_E_WRITERERROR_PARTIAL_FAILURE: 0x80042336,
  VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT: 0x800423f0,
  VSS_E_WRITERERROR_OUTOFRESOURCES: 0x800423f1,
  VSS_E_WRITERERROR_TIMEOUT: 0x800423f2,
  VSS_E_WRITERERROR_RETRYABLE: 0x800423f3,
  VSS_E_WRITERERROR_NONRETRYABLE: 0x800423f4,
  VSS_E_WRITERERROR_RECOVERY_FAILED: 0x800423f5,
  VSS_E_WRITER_STATUS_NOT_AVAILABLE: 0x80042409,
} as const;

export type HResultName = keyof typeof HRESULT;
/** Names of the failure codes (high bit set): the ones a VssError can carry. */
export type VssErrorName = {
  [K in HResultName]: (typeof HRESULT)[K] extends 0 | 1 | 0x00042309 | 0x0004230a | 0x0004230b | 0x00042321 ? never : K;
}[HResultName];

/** The five codes CVssWriter::SetWriterFailure accepts (spec §3). */
export const WRITER_FAILURE_CODES = [
  'VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT',
  'VSS_E_WRITERERROR_OUTOFRESOURCES',
  'VSS_E_WRITERERROR_TIMEOUT',
  'VSS_E_WRITERERROR_RETRYABLE',
  'VSS_E_WRITERERROR_NONRETRYABLE',
] as const satisfies readonly VssErrorName[];
export type WriterFailureCode = (typeof WRITER_FAILURE_CODES)[number];

const NAME_BY_HRESULT = new Map<number, HResultName>(
  (Object.entries(HRESULT) as [HResultName, number][]).map(([name, value]) => [value, name]),
);

/** The symbolic name of an HRESULT, or its hex form when it is not a VSS/COM code we know. */
export function hresultName(hr: number): string {
  return NAME_BY_HRESULT.get(hr >>> 0) ?? `0x${(hr >>> 0).toString(16).padStart(8, '0')}`;
}

export function isFailure(hr: number): boolean {
  return (hr >>> 0) >= 0x80000000;
}

/** A failure of the VSS model, carrying the VSS error name and its HRESULT. */
export class VssError<N extends VssErrorName = VssErrorName> extends Error {
  readonly code: N;
  readonly hresult: number;

  constructor(code: N, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'VssError';
    this.code = code;
    this.hresult = HRESULT[code];
  }

  /** True when `e` is a VssError, and of the given code when one is named. */
  static is<N extends VssErrorName>(e: unknown, code?: N): e is VssError<N> {
    return e instanceof VssError && (code === undefined || e.code === code);
  }

  toJSON(): { code: string; hresult: number; message: string } {
    return { code: this.code, hresult: this.hresult, message: this.message };
  }
}

/** A document that is not well-formed or does not follow the VSS grammar: where, and what was expected. */
export class VssXmlError extends VssError<'VSS_E_INVALID_XML_DOCUMENT'> {
  readonly line: number;
  readonly column: number;
  readonly detail: string;

  constructor(detail: string, line: number, column: number, source?: string) {
    super('VSS_E_INVALID_XML_DOCUMENT', `${source ? `${source}:` : 'line '}${line}:${column}: ${detail}`);
    this.name = 'VssXmlError';
    this.line = line;
    this.column = column;
    this.detail = detail;
  }
}
