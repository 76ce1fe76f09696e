// The session timeline (architecture §4): who received which event when, how long it took,
// what it answered. Kept as data and written to <state>/timelines/ for `shadowcopy trace`.
import { mkdirSync, promises as fsp, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TimelineEntryWire, TimelineWire } from '../protocol/admin.js';
import { VssError } from '../vss/errors.js';
import { Guid } from '../vss/guid.js';

export class Timeline {
  readonly entries: TimelineEntryWire[] = [];
  snapshotSetId: string | undefined;
  endedAt: string | undefined;

  constructor(
    readonly sessionId: string,
    readonly startedAt: string,
  ) {}

  add(entry: TimelineEntryWire): void {
    this.entries.push(entry);
  }

  toJSON(): TimelineWire {
    return { sessionId: this.sessionId, snapshotSetId: this.snapshotSetId, startedAt: this.startedAt, endedAt: this.endedAt, entries: this.entries };
  }
}

/** Timelines on disk: one file per session, found by session id or snapshot set id. */
export class TimelineStore {
  constructor(readonly dir: string | undefined) {}

  /**
   * Writes the timeline whole (a temporary file renamed over the old one). Synchronously: a
   * timeline is at most a few hundred KB on the local state directory, and the asynchronous
   * calls cost more than the writing (five thread-pool round trips, each waiting for the
   * event loop, made every release 1-3 ms slower).
   */
  save(t: Timeline): void {
    if (!this.dir) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = join(this.dir, `${t.sessionId}.json`);
    writeFileSync(`${file}.tmp`, `${JSON.stringify(t.toJSON(), null, 1)}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  async load(id: string, live: Iterable<Timeline>): Promise<TimelineWire> {
    const setId = Guid.tryParse(id);
    for (const t of live) if (t.sessionId === id || (setId && setId.equals(t.snapshotSetId))) return t.toJSON();
    if (this.dir) {
      let names: string[] = [];
      try {
        names = await fsp.readdir(this.dir);
      } catch {
        // No timeline saved yet.
      }
      for (const n of names.filter((x) => x.endsWith('.json'))) {
        const t = JSON.parse(await fsp.readFile(join(this.dir, n), 'utf8')) as TimelineWire;
        if (t.sessionId === id || (setId && setId.equals(t.snapshotSetId))) return t;
      }
    }
    throw new VssError('VSS_E_OBJECT_NOT_FOUND', `no session timeline for ${id}; give a snapshot set id or session id of a session this daemon ran`);
  }
}
