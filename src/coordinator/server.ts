// Binds the coordinator to JSON-RPC peers: the handshake, then the requester's session and
// admin calls or the writer's subscription and events. Each peer's mistakes are answered to
// that peer alone; nothing a peer sends can stop the coordinator serving the others.
import type { Duplex } from 'node:stream';
import { ResponseError } from 'vscode-jsonrpc/node';
import type { z } from 'zod';
import { AdminMethods } from '../protocol/admin.js';
import { parseParams, toResponseError } from '../protocol/errors.js';
import type { CancellationToken, RpcCall } from '../protocol/connection.js';
import { openPeer, RpcErrorCode, type Peer } from '../protocol/framing.js';
import { HELLO, HelloParams, PROTOCOL_VERSION, type HelloResult } from '../protocol/handshake.js';
import { RequesterMethods } from '../protocol/requester-calls.js';
import { EVENT, SUBSCRIBE, SubscribeParams, UNSUBSCRIBE, type EventParams, type EventResult } from '../protocol/writer-events.js';
import { Guid, VssError } from '../vss/index.js';
import type { Coordinator } from './coordinator.js';
import type { WriterEntry, WriterLink } from './registry.js';
import { OperationCancelled, type BackupSession } from './session.js';

export const SERVER_VERSION = '0.1.0';

export interface AttachOptions {
  /** For logs: who is on the other end. */
  peerLabel?: string;
}

function signalOf(token: CancellationToken): AbortSignal {
  const ac = new AbortController();
  if (token.isCancellationRequested) ac.abort();
  else token.onCancellationRequested(() => ac.abort());
  return ac.signal;
}

/** The handshake and the guard every other method passes. */
function handshake(co: Coordinator, stream: Duplex, role: 'writer' | 'requester', opts: AttachOptions): { peer: Peer; ready: () => boolean; handle: <P extends z.ZodType>(method: string, schema: P, fn: (p: z.output<P>, token: CancellationToken) => unknown) => void } {
  const label = opts.peerLabel ?? `${role} connection`;
  const peer = openPeer(stream, {
    ...(co.maxMessageBytes ? { maxMessageBytes: co.maxMessageBytes } : {}),
    onBadInput: (info) => co.log('warn', `bad input from ${label}: ${info.message}`),
  });
  let ready = false;
  const timer = co.clock.setTimer(co.timeouts.handshakeMs, () => {
    if (ready) return;
    co.log('warn', `${label} sent no handshake within ${co.timeouts.handshakeMs} ms; closing it`);
    void peer.sendError(RpcErrorCode.HandshakeRequired, `no ${HELLO} within ${co.timeouts.handshakeMs} ms; closing the connection`).finally(() => peer.close());
  });
  void peer.closed.then(() => timer.cancel());
  peer.connection.onRequest(HELLO, (raw: unknown): HelloResult => {
    const p = parseParams(HelloParams, raw, HELLO);
    if (p.role !== role) {
      throw new ResponseError(RpcErrorCode.InvalidRequest, `this is the ${role} socket; a ${p.role} connects to ${p.role}.sock`);
    }
    if (p.protocolVersion !== PROTOCOL_VERSION) {
      setImmediate(() => peer.close());
      throw new ResponseError(RpcErrorCode.HandshakeRequired, `protocol version ${p.protocolVersion} is not supported: this daemon speaks version ${PROTOCOL_VERSION}; upgrade the ${role} or the daemon so they match`);
    }
    ready = true;
    timer.cancel();
    co.log('info', `${label} connected`, { client: p.client });
    return { protocolVersion: PROTOCOL_VERSION, server: 'shadowcopy', serverVersion: SERVER_VERSION };
  });
  const handle = <P extends z.ZodType>(method: string, schema: P, fn: (p: z.output<P>, token: CancellationToken) => unknown): void => {
    peer.connection.onRequest(method, async (raw: unknown, token: CancellationToken) => {
      if (!ready) throw new ResponseError(RpcErrorCode.HandshakeRequired, `call ${HELLO} first (protocol version ${PROTOCOL_VERSION})`);
      const p = parseParams(schema, raw, method);
      try {
        return await fn(p, token);
      } catch (e) {
        if (e instanceof OperationCancelled) throw new ResponseError(RpcErrorCode.RequestCancelled, e.message);
        if (!(e instanceof ResponseError) && !VssError.is(e)) co.log('error', `${method} failed unexpectedly`, { error: (e as Error).stack });
        throw toResponseError(e);
      }
    });
  };
  return { peer, ready: () => ready, handle };
}

export function attachRequester(co: Coordinator, stream: Duplex, opts: AttachOptions = {}): void {
  const { peer, handle } = handshake(co, stream, 'requester', opts);
  const owned = new Map<string, BackupSession>();
  const M = RequesterMethods;
  const session = (id: string): BackupSession => {
    const s = owned.get(id);
    if (!s) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `no session ${id} on this connection; open one with ${M.open.method}`);
    return s;
  };
  handle(M.open.method, M.open.params, () => {
    const s = co.openSession();
    owned.set(s.id, s);
    return { sessionId: s.id };
  });
  handle(M.initializeForBackup.method, M.initializeForBackup.params, (p) => (session(p.sessionId).initializeForBackup(p.bcdXml), {}));
  handle(M.setContext.method, M.setContext.params, (p) => (session(p.sessionId).setContext(p.context), {}));
  handle(M.setBackupState.method, M.setBackupState.params, (p) => (session(p.sessionId).setBackupState(p), {}));
  handle(M.enableWriterClasses.method, M.enableWriterClasses.params, (p) => (session(p.sessionId).enableWriterClasses(p.writerIds), {}));
  handle(M.disableWriterClasses.method, M.disableWriterClasses.params, (p) => (session(p.sessionId).disableWriterClasses(p.writerIds), {}));
  handle(M.disableWriterInstances.method, M.disableWriterInstances.params, (p) => (session(p.sessionId).disableWriterInstances(p.instanceIds), {}));
  handle(M.gatherWriterMetadata.method, M.gatherWriterMetadata.params, async (p, t) => ({ writers: await session(p.sessionId).gatherWriterMetadata(signalOf(t)) }));
  handle(M.addComponent.method, M.addComponent.params, (p) => (session(p.sessionId).addComponent(p), {}));
  handle(M.setBackupOptions.method, M.setBackupOptions.params, (p) => (session(p.sessionId).setBackupOptions(p), {}));
  handle(M.setPreviousBackupStamp.method, M.setPreviousBackupStamp.params, (p) => (session(p.sessionId).setPreviousBackupStamp(p), {}));
  handle(M.setBackupSucceeded.method, M.setBackupSucceeded.params, (p) => (session(p.sessionId).setBackupSucceeded(p), {}));
  handle(M.startSnapshotSet.method, M.startSnapshotSet.params, (p) => ({ snapshotSetId: session(p.sessionId).startSnapshotSet() }));
  handle(M.isVolumeSupported.method, M.isVolumeSupported.params, (p) => session(p.sessionId).isVolumeSupported(p.volume, p.provider));
  handle(M.addToSnapshotSet.method, M.addToSnapshotSet.params, async (p) => ({ snapshotId: await session(p.sessionId).addToSnapshotSet(p.volume, p.provider) }));
  handle(M.prepareForBackup.method, M.prepareForBackup.params, async (p, t) => (await session(p.sessionId).prepareForBackup(signalOf(t)), {}));
  handle(M.doSnapshotSet.method, M.doSnapshotSet.params, async (p, t) => (await session(p.sessionId).doSnapshotSet(signalOf(t)), {}));
  handle(M.gatherWriterStatus.method, M.gatherWriterStatus.params, (p) => session(p.sessionId).gatherWriterStatus());
  handle(M.getSnapshotProperties.method, M.getSnapshotProperties.params, (p) => session(p.sessionId).getSnapshotProperties(p.snapshotId));
  handle(M.backupComplete.method, M.backupComplete.params, async (p, t) => (await session(p.sessionId).backupComplete(signalOf(t)), {}));
  handle(M.abortBackup.method, M.abortBackup.params, async (p) => (await session(p.sessionId).abortBackup(), {}));
  handle(M.saveAsXml.method, M.saveAsXml.params, (p) => ({ bcdXml: session(p.sessionId).saveAsXml() }));
  handle(M.query.method, M.query.params, (p) => ({ snapshots: session(p.sessionId).query() }));
  handle(M.deleteSnapshots.method, M.deleteSnapshots.params, (p) => session(p.sessionId).deleteSnapshots(p.id, p.objectType));
  // Restore (spec §5). PreRestore and PostRestore ignore cancellation: restores cannot be aborted (spec §19.8).
  handle(M.initializeForRestore.method, M.initializeForRestore.params, (p) => (session(p.sessionId).initializeForRestore(p.bcdXml, p.writerMetadataXml), {}));
  handle(M.setRestoreState.method, M.setRestoreState.params, (p) => (session(p.sessionId).setRestoreState(p.restoreType), {}));
  handle(M.setSelectedForRestore.method, M.setSelectedForRestore.params, (p) => (session(p.sessionId).setSelectedForRestore(p), {}));
  handle(M.addRestoreSubcomponent.method, M.addRestoreSubcomponent.params, (p) => (session(p.sessionId).addRestoreSubcomponent(p), {}));
  handle(M.setRestoreOptions.method, M.setRestoreOptions.params, (p) => (session(p.sessionId).setRestoreOptions(p), {}));
  handle(M.setAdditionalRestores.method, M.setAdditionalRestores.params, (p) => (session(p.sessionId).setAdditionalRestores(p), {}));
  handle(M.addNewTarget.method, M.addNewTarget.params, (p) => (session(p.sessionId).addNewTarget(p), {}));
  handle(M.setRollForward.method, M.setRollForward.params, (p) => (session(p.sessionId).setRollForward(p), {}));
  handle(M.setAuthoritativeRestore.method, M.setAuthoritativeRestore.params, (p) => (session(p.sessionId).setAuthoritativeRestore(p), {}));
  handle(M.setRestoreName.method, M.setRestoreName.params, (p) => (session(p.sessionId).setRestoreName(p), {}));
  handle(M.preRestore.method, M.preRestore.params, async (p) => (await session(p.sessionId).preRestore(), {}));
  handle(M.addAlternativeLocationMapping.method, M.addAlternativeLocationMapping.params, (p) => (session(p.sessionId).addAlternativeLocationMapping(p), {}));
  handle(M.setRangesFilePath.method, M.setRangesFilePath.params, (p) => (session(p.sessionId).setRangesFilePath(p), {}));
  handle(M.setFileRestoreStatus.method, M.setFileRestoreStatus.params, (p) => (session(p.sessionId).setFileRestoreStatus(p), {}));
  handle(M.postRestore.method, M.postRestore.params, async (p) => (await session(p.sessionId).postRestore(), {}));
  // Refused while writers handle PreRestore/PostRestore; a dropped connection waits for PostRestore instead.
  handle(M.release.method, M.release.params, async (p) => (await session(p.sessionId).requestRelease(), {}));

  const A = AdminMethods;
  handle(A.listWriters.method, A.listWriters.params, () => ({ writers: co.listWriters() }));
  handle(A.query.method, A.query.params, (p) => ({ snapshots: co.query(p) }));
  handle(A.deleteSnapshots.method, A.deleteSnapshots.params, async (p) => ({ deletedCount: await co.deleteSnapshots(p.id, p.objectType) }));
  handle(A.exposeSnapshot.method, A.exposeSnapshot.params, async (p) => ({ exposedName: await co.exposeSnapshot(p.snapshotId, p.path) }));
  handle(A.unexposeSnapshot.method, A.unexposeSnapshot.params, async (p) => (await co.unexposeSnapshot(p.snapshotId), {}));
  handle(A.trace.method, A.trace.params, (p) => co.trace(p.id));

  // A requester that goes away ends its sessions: Abort if needed, BackupShutdown, cleanup.
  void peer.closed.then(async () => {
    await Promise.all([...owned.values()].map((s) => s.release('the requester disconnected')));
  });
  peer.connection.listen();
}

export function attachWriter(co: Coordinator, stream: Duplex, opts: AttachOptions = {}): void {
  const { peer, handle } = handshake(co, stream, 'writer', opts);
  let entry: WriterEntry | undefined;
  const link: WriterLink = { sendEvent: (params: EventParams) => peer.connection.call(EVENT, params) as RpcCall<EventResult> };
  handle(SUBSCRIBE, SubscribeParams, (p) => {
    if (entry && !entry.gone) throw new VssError('VSS_E_WRITER_ALREADY_SUBSCRIBED', `this connection already subscribed writer instance ${entry.instanceId.toString()}; one writer per connection`);
    entry = co.subscribe(
      {
        writerId: Guid.parse(p.writerId),
        writerName: p.writerName,
        instanceName: p.instanceName,
        usage: p.usage,
        sourceType: p.sourceType,
        level: p.level,
        freezeTimeoutMs: p.freezeTimeoutMs,
        eventFlags: p.eventFlags,
      },
      link,
    );
    return { instanceId: entry.instanceId.toString() };
  });
  handle(UNSUBSCRIBE, SubscribeParams.pick({}), () => {
    if (entry) co.unsubscribe(entry);
    return {};
  });
  void peer.closed.then(() => {
    if (entry) co.unsubscribe(entry);
  });
  peer.connection.listen();
}
