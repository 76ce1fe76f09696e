// Framing: newline-delimited JSON (one JSON-RPC 2.0 message per line, UTF-8), chosen because
// every language's standard library can read a line and parse JSON. connection.ts does the
// JSON-RPC work (ids, both directions, cancellation); this file only frames, bounds the message
// size, and answers what cannot become a message (bad JSON, non-JSON-RPC) with a JSON-RPC error.
import { Duplex } from 'node:stream';
import { RpcConnection, RpcErrorCode, type RpcMessage } from './connection.js';

export { RpcErrorCode } from './connection.js';

/** Largest message either side accepts (bytes of one line). Documents of big writers fit easily. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface FramingErrorInfo {
  code: number;
  message: string;
  /** True when the connection is closed after answering. */
  fatal: boolean;
}

function isRpcMessage(v: unknown): v is RpcMessage {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const m = v as Record<string, unknown>;
  return m.jsonrpc === '2.0' && (typeof m.method === 'string' || 'id' in m);
}

/** Reads one JSON message per line; bad lines are reported, never fatal to other peers. */
class NdjsonReader {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private skipping = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onMessage: (m: RpcMessage) => void,
    private readonly onBadInput: (info: FramingErrorInfo) => void,
  ) {}

  data(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      if (!this.skipping) {
        this.bufferedBytes += end - start;
        if (this.bufferedBytes > this.maxBytes) {
          // Drop the rest of this line: the next line is a fresh message.
          this.skipping = true;
          this.buffered = [];
          this.bufferedBytes = 0;
          this.onBadInput({ code: RpcErrorCode.MessageTooLarge, message: `message larger than ${this.maxBytes} bytes; it was discarded`, fatal: false });
        } else if (nl < 0 || this.buffered.length) this.buffered.push(chunk.subarray(start, end));
      }
      if (nl < 0) return;
      if (!this.skipping) {
        // A line within one chunk (the usual case) is decoded where it lies, without a copy.
        const line = this.buffered.length ? Buffer.concat(this.buffered) : chunk.subarray(start, end);
        this.line(line.toString('utf8'));
      }
      this.buffered = [];
      this.bufferedBytes = 0;
      this.skipping = false;
      start = nl + 1;
    }
  }

  private line(text: string): void {
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      this.onBadInput({ code: RpcErrorCode.ParseError, message: `not valid JSON: ${(e as Error).message}`, fatal: false });
      return;
    }
    if (!isRpcMessage(value)) {
      this.onBadInput({ code: RpcErrorCode.InvalidRequest, message: 'not a JSON-RPC 2.0 message: expected an object with "jsonrpc": "2.0" and a "method" or an "id"', fatal: false });
      return;
    }
    this.onMessage(value);
  }
}

export interface Peer {
  readonly connection: RpcConnection;
  /** Sends a JSON-RPC error response with a null id (for input that never became a request); resolves once written. */
  sendError(code: number, message: string): Promise<void>;
  /** Ends the connection and the stream. */
  close(): void;
  readonly closed: Promise<void>;
}

export interface PeerOptions {
  maxMessageBytes?: number;
  /** Told about every line that was not a message (after the peer was answered). */
  onBadInput?: (info: FramingErrorInfo) => void;
}

/** A JSON-RPC connection over a byte stream (Unix socket or in-memory pair), not yet listening. */
export function openPeer(stream: Duplex, opts: PeerOptions = {}): Peer {
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const connection: RpcConnection = new RpcConnection(stream, (receive) => {
    const reader = new NdjsonReader(opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, receive, (info) => {
      void sendError(info.code, info.message);
      opts.onBadInput?.(info);
    });
    stream.on('data', (chunk: Buffer) => reader.data(chunk));
  });
  const sendError = (code: number, message: string): Promise<void> => {
    if (stream.destroyed || stream.writableEnded) return Promise.resolve();
    return new Promise((resolve) => stream.write(`${JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } })}\n`, () => resolve()));
  };
  const end = (): void => {
    connection.closed();
    resolveClosed();
  };
  stream.on('end', end);
  stream.on('close', end);
  // A peer that vanishes mid-write is reported by 'close'; the error itself says nothing more.
  stream.on('error', () => undefined);
  return {
    connection,
    sendError,
    close: () => {
      connection.dispose();
      stream.end();
      stream.destroy();
      resolveClosed();
    },
    closed,
  };
}

/** Two connected in-memory streams: what an in-process coordinator and its SDK clients talk over. */
export function memoryDuplexPair(): [Duplex, Duplex] {
  const ends: { a?: Duplex; b?: Duplex } = {};
  const make = (other: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        const peer = other();
        if (!peer.destroyed) peer.push(chunk);
        cb();
      },
      final(cb) {
        const peer = other();
        if (!peer.destroyed) peer.push(null);
        cb();
      },
      destroy(err, cb) {
        const peer = other();
        if (!peer.destroyed) {
          peer.push(null);
          // The far side sees its peer vanish, as with a socket.
          setImmediate(() => peer.destroy());
        }
        cb(err);
      },
    });
  const a = make(() => ends.b!);
  const b = make(() => ends.a!);
  ends.a = a;
  ends.b = b;
  return [a, b];
}
