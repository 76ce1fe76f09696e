// The writer registry: one entry per subscribed writer connection. The instance id is minted
// here, per connection; a second live writer with the same class id and instance name is
// refused, since requesters could not tell the two apart.
import type { RpcCall } from '../protocol/connection.js';
import type { EventParams, EventResult } from '../protocol/writer-events.js';
import { VssError } from '../vss/errors.js';
import { Guid } from '../vss/guid.js';
import { ApplicationLevel, WriterState } from '../vss/enums.js';

/** How the coordinator reaches one writer: the RPC connection, or anything that answers events. */
export interface WriterLink {
  /**
   * Sends one event. Its answer rejects with ConnectionClosed (src/protocol/connection.ts) when
   * the writer's connection is gone before it answers; `cancel` asks the writer to stop.
   */
  sendEvent(params: EventParams): RpcCall<EventResult>;
}

export interface WriterSubscription {
  writerId: Guid;
  writerName: string;
  instanceName: string;
  usage: number;
  sourceType: number;
  level: number;
  freezeTimeoutMs: number | undefined;
  eventFlags: number;
}

export class WriterEntry {
  readonly instanceId = Guid.random();
  readonly connectedAt: Date;
  gone = false;
  /** Last state and failure reached in any session, as `vssadmin list writers` shows. */
  lastState: WriterState = WriterState.STABLE;
  lastError = 0;
  lastApplicationMessage = '';

  constructor(
    readonly sub: WriterSubscription,
    readonly link: WriterLink,
    now: number,
  ) {
    this.connectedAt = new Date(now);
  }

  get writerId(): Guid {
    return this.sub.writerId;
  }

  /** Freeze order group: FRONT_END first, then BACK_END, then SYSTEM (spec §2.6). */
  get freezeRank(): number {
    switch (this.sub.level) {
      case ApplicationLevel.BACK_END:
        return 1;
      case ApplicationLevel.SYSTEM:
      case ApplicationLevel.SYSTEM_RM:
        return 2;
      default:
        // FRONT_END, and AUTO/UNKNOWN which CVssWriter treats as the default level.
        return 0;
    }
  }

  label(): string {
    return `writer "${this.sub.writerName}"${this.sub.instanceName ? ` (instance "${this.sub.instanceName}")` : ''} ${this.sub.writerId.toString()}`;
  }
}

export class WriterRegistry {
  private readonly entries = new Map<string, WriterEntry>();

  add(sub: WriterSubscription, link: WriterLink, now: number): WriterEntry {
    const clash = [...this.entries.values()].find((e) => !e.gone && e.writerId.equals(sub.writerId) && e.sub.instanceName === sub.instanceName);
    if (clash) {
      throw new VssError(
        'VSS_E_WRITER_ALREADY_SUBSCRIBED',
        `a writer of class ${sub.writerId.toString()} with instance name "${sub.instanceName}" is already subscribed (instance ${clash.instanceId.toString()}); give this instance another instance name, or stop the other one`,
      );
    }
    const e = new WriterEntry(sub, link, now);
    this.entries.set(e.instanceId.value, e);
    return e;
  }

  remove(e: WriterEntry): void {
    e.gone = true;
    this.entries.delete(e.instanceId.value);
  }

  get(instanceId: Guid | string): WriterEntry | undefined {
    return this.entries.get(typeof instanceId === 'string' ? (Guid.tryParse(instanceId)?.value ?? '') : instanceId.value);
  }

  list(): WriterEntry[] {
    return [...this.entries.values()];
  }
}
