// Timeouts as data (spec §6): every event has a deadline, all configurable. Only the
// Freeze→Thaw window (60 s) and the provider commit window (10 s) have documented values;
// the others are ours, generous enough for real applications.
import type { WriterEventName } from '../protocol/writer-events.js';

export interface Timeouts {
  /** Default Freeze→Thaw window for a writer that does not give its own. */
  freezeWindowMs: number;
  /** The providers' commit window (writers frozen). */
  commitWindowMs: number;
  /** Deadline of each event other than Freeze and Thaw (which live inside the window). */
  eventMs: Record<Exclude<WriterEventName, 'Freeze' | 'Thaw'>, number>;
  /** A client that connects must say hello within this. */
  handshakeMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {
  freezeWindowMs: 60_000,
  commitWindowMs: 10_000,
  eventMs: {
    Identify: 30_000,
    PrepareForBackup: 120_000,
    PrepareForSnapshot: 300_000,
    PostSnapshot: 120_000,
    Abort: 60_000,
    BackupComplete: 120_000,
    BackupShutdown: 60_000,
    PreRestore: 300_000,
    PostRestore: 300_000,
  },
  handshakeMs: 10_000,
};

export type TimeoutsInput = Partial<Omit<Timeouts, 'eventMs'>> & { eventMs?: Partial<Timeouts['eventMs']> };

export function resolveTimeouts(input: TimeoutsInput = {}): Timeouts {
  return {
    ...DEFAULT_TIMEOUTS,
    ...Object.fromEntries(Object.entries(input).filter(([k, v]) => k !== 'eventMs' && v !== undefined)),
    eventMs: { ...DEFAULT_TIMEOUTS.eventMs, ...input.eventMs },
  } as Timeouts;
}
