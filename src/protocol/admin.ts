// Admin calls on requester.sock (privileged): what `shadowcopy writers/list/delete/expose/trace`
// need without opening a backup session.
import { z } from 'zod';
import { SnapshotPropertiesWire } from './requester-calls.js';
import { GuidString as Guid } from './writer-events.js';

export const WriterInfoWire = z.object({
  writerId: Guid,
  instanceId: Guid,
  writerName: z.string(),
  instanceName: z.string(),
  /** VSS_APPLICATION_LEVEL value. */
  level: z.number().int(),
  freezeTimeoutMs: z.number().int(),
  /** Last VSS_WRITER_STATE the writer reached in any session (like `vssadmin list writers`). */
  state: z.number().int(),
  /** Last failure, unsigned HRESULT (0 = no error). */
  lastError: z.number().int(),
  applicationMessage: z.string(),
  connectedAt: z.string(),
});
export type WriterInfoWire = z.infer<typeof WriterInfoWire>;

export const TimelineEntryWire = z.object({
  /** 'event' (daemon → writer), 'call' (requester → daemon), 'provider' (a provider phase). */
  kind: z.enum(['event', 'call', 'provider']),
  name: z.string(),
  at: z.string(),
  durationMs: z.number(),
  /** ok | veto | fail | timeout | gone | error. */
  answer: z.string(),
  writerId: Guid.optional(),
  instanceId: Guid.optional(),
  writerName: z.string().optional(),
  hr: z.number().int().optional(),
  message: z.string().optional(),
});
export type TimelineEntryWire = z.infer<typeof TimelineEntryWire>;

export const TimelineWire = z.object({
  sessionId: z.string(),
  snapshotSetId: Guid.optional(),
  startedAt: z.string(),
  endedAt: z.string().optional(),
  entries: z.array(TimelineEntryWire),
});
export type TimelineWire = z.infer<typeof TimelineWire>;

export const AdminMethods = {
  listWriters: { method: 'admin.listWriters', params: z.object({}), result: z.object({ writers: z.array(WriterInfoWire) }) },
  query: {
    method: 'admin.query',
    params: z.object({ context: z.number().int().optional(), snapshotSetId: Guid.optional() }),
    result: z.object({ snapshots: z.array(SnapshotPropertiesWire) }),
  },
  deleteSnapshots: {
    method: 'admin.deleteSnapshots',
    params: z.object({ id: Guid, objectType: z.number().int() }),
    result: z.object({ deletedCount: z.number().int() }),
  },
  exposeSnapshot: {
    method: 'admin.exposeSnapshot',
    params: z.object({ snapshotId: Guid, path: z.string().min(1) }),
    result: z.object({ exposedName: z.string() }),
  },
  unexposeSnapshot: { method: 'admin.unexposeSnapshot', params: z.object({ snapshotId: Guid }), result: z.object({}) },
  /** A session's timeline, by snapshot set id or session id; kept in the state directory. */
  trace: { method: 'admin.trace', params: z.object({ id: z.string().min(1) }), result: TimelineWire },
} as const;
