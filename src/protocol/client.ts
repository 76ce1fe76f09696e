// The client half both SDKs share: find the daemon, connect, shake hands, make typed calls.
import { createConnection } from 'node:net';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import type { z } from 'zod';
import { VssError } from '../vss/errors.js';
import type { CancellationToken } from './connection.js';
import { fromWireError } from './errors.js';
import { openPeer, type Peer, type PeerOptions } from './framing.js';
import { HELLO, HelloResult, PROTOCOL_VERSION } from './handshake.js';

export const DEFAULT_SOCKET_DIR = '/run/shadowcopy';
export const REQUESTER_SOCKET = 'requester.sock';
export const WRITER_SOCKET = 'writer.sock';

/** --socket-dir, else SHADOWCOPY_SOCKET_DIR, else /run/shadowcopy. */
export function socketDir(explicit?: string): string {
  return explicit || process.env.SHADOWCOPY_SOCKET_DIR || DEFAULT_SOCKET_DIR;
}

export interface MethodDef<P extends z.ZodType, R extends z.ZodType> {
  method: string;
  params: P;
  result: R;
}

/** Where a client connects: a socket directory, or a stream to an in-process coordinator. */
export type Endpoint = { socketDir?: string } | { stream: () => Duplex | Promise<Duplex> };

function connectSocket(path: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** A connected, handshaken client. */
export class RpcClient {
  private constructor(readonly peer: Peer) {}

  static async connect(endpoint: Endpoint, role: 'writer' | 'requester', client: string, opts: PeerOptions = {}): Promise<RpcClient> {
    let stream: Duplex;
    if ('stream' in endpoint) stream = await endpoint.stream();
    else {
      const dir = socketDir(endpoint.socketDir);
      const path = join(dir, role === 'writer' ? WRITER_SOCKET : REQUESTER_SOCKET);
      try {
        stream = await connectSocket(path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new VssError(
          'VSS_E_WRITER_INFRASTRUCTURE',
          `cannot reach the shadowcopy daemon at ${path} (${code ?? (e as Error).message}); start it with \`shadowcopy daemon --socket-dir ${dir}\`` +
            (role === 'requester' ? ', or run this command with --standalone (no external writers)' : '') +
            (code === 'EACCES' ? '; you lack permission on the socket (requester.sock is root-only, writer.sock needs the shadowcopy group)' : ''),
          { cause: e },
        );
      }
    }
    const peer = openPeer(stream, opts);
    peer.connection.listen();
    const c = new RpcClient(peer);
    try {
      const hello = HelloResult.parse(await peer.connection.sendRequest(HELLO, { protocolVersion: PROTOCOL_VERSION, role, client }));
      if (hello.protocolVersion !== PROTOCOL_VERSION) {
        throw new VssError('VSS_E_WRITER_INFRASTRUCTURE', `the daemon speaks protocol version ${hello.protocolVersion}, this client ${PROTOCOL_VERSION}; use matching versions`);
      }
    } catch (e) {
      peer.close();
      throw fromWireError(e, 'handshake');
    }
    return c;
  }

  get connection(): Peer['connection'] {
    return this.peer.connection;
  }

  /** Calls a method; the answer is validated, failures come back as VssError. */
  async call<P extends z.ZodType, R extends z.ZodType>(def: MethodDef<P, R>, params: z.input<P>, token?: CancellationToken): Promise<z.output<R>> {
    let raw: unknown;
    try {
      raw = await this.peer.connection.sendRequest(def.method, params, token);
    } catch (e) {
      throw fromWireError(e, def.method);
    }
    const r = def.result.safeParse(raw);
    if (!r.success) throw new VssError('VSS_E_UNEXPECTED', `${def.method}: the daemon answered something this client does not understand; versions differ?`);
    return r.data;
  }

  close(): void {
    this.peer.close();
  }
}
