// Writer side of the protocol (writer.sock): the writer subscribes, then the daemon sends it
// one request per VSS event and waits for the answer.
import { z } from 'zod';
import { WRITER_FAILURE_CODES } from '../vss/errors.js';

const GUID_PATTERN = /^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$/;
const Guid = z.string().regex(GUID_PATTERN, 'a GUID (8-4-4-4-12 hex digits)');
export const GuidString = Guid;

// ---- writer -> daemon ------------------------------------------------------------------

/** CVssWriter::Initialize + Subscribe: who the writer is. Answered with its instance id. */
export const SUBSCRIBE = 'writer.subscribe';
export const SubscribeParams = z.object({
  writerId: Guid,
  writerName: z.string().min(1).max(1024),
  /** Persistent instance name: required for a second instance of the same class (spec §1). */
  instanceName: z.string().max(1024).default(''),
  /** VSS_USAGE_TYPE value. */
  usage: z.number().int().min(0).max(4),
  /** VSS_SOURCE_TYPE value. */
  sourceType: z.number().int().min(0).max(3),
  /** VSS_APPLICATION_LEVEL value (default FRONT_END = 3). */
  level: z.number().int().min(-1).max(4).default(3),
  /** The Freeze→Thaw window the writer can hold its data frozen (default 60000 ms). */
  freezeTimeoutMs: z.number().int().positive().max(24 * 3600 * 1000).optional(),
  /** VSS_SUBSCRIBE_MASK: BACKUP_EVENTS (2) and RESTORE_EVENTS (4) by default. */
  eventFlags: z.number().int().nonnegative().default(0x6),
});
export type SubscribeParams = z.input<typeof SubscribeParams>;
export const SubscribeResult = z.object({ instanceId: Guid });
export type SubscribeResult = z.infer<typeof SubscribeResult>;

/** CVssWriter::Unsubscribe: the writer stops receiving events (closing the connection does too). */
export const UNSUBSCRIBE = 'writer.unsubscribe';

// ---- daemon -> writer ------------------------------------------------------------------

/** The events, named as in the spec. */
export const WRITER_EVENTS = [
  'Identify',
  'PrepareForBackup',
  'PrepareForSnapshot',
  'Freeze',
  'Thaw',
  'PostSnapshot',
  'Abort',
  'BackupComplete',
  'BackupShutdown',
  'PreRestore',
  'PostRestore',
] as const;
export type WriterEventName = (typeof WRITER_EVENTS)[number];

/** Events during which a writer may read and change its components in the BCD (spec §4.4). */
export const BCD_EVENTS: readonly WriterEventName[] = ['PrepareForBackup', 'PrepareForSnapshot', 'PostSnapshot', 'BackupComplete', 'PreRestore', 'PostRestore'];

/** One request method for every event: `params.event` says which. */
export const EVENT = 'writer.event';

/** What the helpers of spec §18.2 read, sent with every event but Identify. */
export const SessionContext = z.object({
  /** VSS_BACKUP_TYPE value. */
  backupType: z.number().int(),
  /** VSS_RESTORE_TYPE value (restore sessions). */
  restoreType: z.number().int(),
  selectComponents: z.boolean(),
  bootableSystemStateBackup: z.boolean(),
  partialFileSupport: z.boolean(),
  /** The snapshot context with its modifier bits (VSS_SNAPSHOT_CONTEXT). */
  snapshotContext: z.number().int(),
  /** Roots of the volumes in the snapshot set (IsPathAffected). */
  volumes: z.array(z.string()),
});
export type SessionContext = z.infer<typeof SessionContext>;

export const EventParams = z.object({
  event: z.enum(WRITER_EVENTS),
  /** The writer's instance id on this connection. */
  instanceId: Guid,
  /** The requester session this event belongs to (a writer may be in several at once); absent for Identify. */
  sessionId: z.string().optional(),
  /** The snapshot set id; the null GUID when no set exists (BackupShutdown without snapshots). */
  snapshotSetId: Guid.optional(),
  context: SessionContext.optional(),
  /**
   * The writer's own part of the Backup Components Document, genuine XML (a BACKUP_COMPONENTS
   * root with only this writer's WRITER_COMPONENTS), during the events of BCD_EVENTS.
   */
  bcdXml: z.string().optional(),
});
export type EventParams = z.infer<typeof EventParams>;

export const WriterFailure = z.object({
  /** One of the VSS_E_WRITERERROR_* names (SetWriterFailure), or S_OK / PARTIAL_FAILURE (…Ex). */
  hr: z.enum([...WRITER_FAILURE_CODES, 'VSS_E_WRITERERROR_PARTIAL_FAILURE', 'S_OK']),
  /** The application's own HRESULT (SetWriterFailureEx), 0 if none. */
  hrApplication: z.number().int().default(0),
  applicationMessage: z.string().max(64 * 1024).default(''),
});
export type WriterFailure = z.input<typeof WriterFailure>;

export const EventResult = z.object({
  /** false vetoes the event (CVssWriter handlers returning false). */
  ok: z.boolean(),
  /** SetWriterFailure: with ok=true the writer failed without vetoing. */
  failure: WriterFailure.optional(),
  /** Identify only: the Writer Metadata Document, genuine XML. */
  metadataXml: z.string().optional(),
  /** The writer's part of the BCD after its handler, when it changed it (BCD_EVENTS only). */
  bcdXml: z.string().optional(),
});
export type EventResult = z.input<typeof EventResult>;

// ---- the usual shapes, checked by hand -------------------------------------------------------
// Every event is checked twice (EventParams by the writer, EventResult by the daemon), and zod
// costs more than the rest of an event's handling. These accept only the usual shapes, exactly
// as the schemas above would, and give what they would (the same fields and values); anything
// else returns undefined and goes to the schema, which decides and names what is wrong.
// test/protocol/event-shapes.test.ts holds them to the schemas.

const EVENT_NAMES: ReadonlySet<string> = new Set(WRITER_EVENTS);
const EVENT_PARAMS_KEYS: ReadonlySet<string> = new Set(['event', 'instanceId', 'sessionId', 'snapshotSetId', 'context', 'bcdXml']);
const EVENT_RESULT_KEYS: ReadonlySet<string> = new Set(['ok', 'metadataXml', 'bcdXml']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function onlyKeys(v: Record<string, unknown>, keys: ReadonlySet<string>): boolean {
  for (const k in v) if (!keys.has(k)) return false;
  return true;
}

const isInt = (v: unknown): boolean => Number.isSafeInteger(v);
const isGuid = (v: unknown): boolean => typeof v === 'string' && GUID_PATTERN.test(v);

const SESSION_CONTEXT_KEYS: ReadonlySet<string> = new Set(['backupType', 'restoreType', 'selectComponents', 'bootableSystemStateBackup', 'partialFileSupport', 'snapshotContext', 'volumes']);

// Every key is required: each check below fails on a missing one.
function isSessionContext(v: unknown): boolean {
  return (
    isRecord(v) &&
    onlyKeys(v, SESSION_CONTEXT_KEYS) &&
    isInt(v.backupType) &&
    isInt(v.restoreType) &&
    typeof v.selectComponents === 'boolean' &&
    typeof v.bootableSystemStateBackup === 'boolean' &&
    typeof v.partialFileSupport === 'boolean' &&
    isInt(v.snapshotContext) &&
    Array.isArray(v.volumes) &&
    (v.volumes as unknown[]).every((x) => typeof x === 'string')
  );
}

/** `v` as EventParams when it has the usual shape, else undefined (parse it with EventParams). */
export function usualEventParams(v: unknown): EventParams | undefined {
  if (!isRecord(v) || !onlyKeys(v, EVENT_PARAMS_KEYS)) return undefined;
  if (typeof v.event !== 'string' || !EVENT_NAMES.has(v.event) || !isGuid(v.instanceId)) return undefined;
  if ('sessionId' in v && typeof v.sessionId !== 'string') return undefined;
  if ('snapshotSetId' in v && !isGuid(v.snapshotSetId)) return undefined;
  if ('context' in v && !isSessionContext(v.context)) return undefined;
  if ('bcdXml' in v && typeof v.bcdXml !== 'string') return undefined;
  return v as EventParams;
}

/** `v` as a parsed EventResult when it has the usual shape (no failure), else undefined (parse it with EventResult). */
export function usualEventResult(v: unknown): z.output<typeof EventResult> | undefined {
  if (!isRecord(v) || !onlyKeys(v, EVENT_RESULT_KEYS) || typeof v.ok !== 'boolean') return undefined;
  if ('metadataXml' in v && typeof v.metadataXml !== 'string') return undefined;
  if ('bcdXml' in v && typeof v.bcdXml !== 'string') return undefined;
  return v as z.output<typeof EventResult>;
}
