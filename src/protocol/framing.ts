// Framing: newline-delimited JSON (one JSON-RPC 2.0 message per line, UTF-8), chosen because
// every language's standard library can read a line and parse JSON. vscode-jsonrpc does the
// JSON-RPC work (ids, both directions, cancellation); this file only frames, bounds the message
// size, and answers what cannot become a message (bad JSON, non-JSON-RPC) with a JSON-RPC error.
import { Duplex } from 'node:stream';
import {
  AbstractMessageReader,
  AbstractMessageWriter,
  createMessageConnection,
  type DataCallback,
  type Disposable,
  type Message,
  type MessageConnection,
  type MessageReader,
  type MessageWriter,
} from 'vscode-jsonrpc/node';

/** Largest message either side accepts (bytes of one line). Documents of big writers fit easily. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** JSON-RPC 2.0 error codes used on the wire, besides VSS errors (which carry their HRESULT). */
export const RpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** The request was cancelled ($/cancelRequest), as in LSP. */
  RequestCancelled: -32800,
  /** Our own: a line longer than the peer's limit. */
  MessageTooLarge: -32001,
  /** Our own: the first message was not the handshake, or it never came. */
  HandshakeRequired: -32002,
} as const;

export interface FramingErrorInfo {
  code: number;
  message: string;
  /** True when the connection is closed after answering. */
  fatal: boolean;
}

function isRpcMessage(v: unknown): v is Message {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const m = v as Record<string, unknown>;
  return m.jsonrpc === '2.0' && (typeof m.method === 'string' || 'id' in m);
}

/** Reads one JSON message per line; bad lines are reported, never fatal to other peers. */
class NdjsonMessageReader extends AbstractMessageReader implements MessageReader {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private skipping = false;
  private callback: DataCallback | undefined;

  constructor(
    private readonly stream: Duplex,
    private readonly maxBytes: number,
    private readonly onBadInput: (info: FramingErrorInfo) => void,
  ) {
    super();
  }

  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    const onData = (chunk: Buffer): void => this.data(chunk);
    const onEnd = (): void => this.fireClose();
    const onError = (e: Error): void => this.fireError(e);
    this.stream.on('data', onData);
    this.stream.on('end', onEnd);
    this.stream.on('close', onEnd);
    this.stream.on('error', onError);
    return {
      dispose: () => {
        this.stream.off('data', onData);
        this.stream.off('end', onEnd);
        this.stream.off('close', onEnd);
        this.stream.off('error', onError);
      },
    };
  }

  private data(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const piece = chunk.subarray(start, nl < 0 ? chunk.length : nl);
      if (!this.skipping) {
        this.bufferedBytes += piece.length;
        if (this.bufferedBytes > this.maxBytes) {
          // Drop the rest of this line: the next line is a fresh message.
          this.skipping = true;
          this.buffered = [];
          this.bufferedBytes = 0;
          this.onBadInput({ code: RpcErrorCode.MessageTooLarge, message: `message larger than ${this.maxBytes} bytes; it was discarded`, fatal: false });
        } else this.buffered.push(piece);
      }
      if (nl < 0) return;
      if (!this.skipping) this.line(Buffer.concat(this.buffered).toString('utf8'));
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
    this.callback?.(value);
  }
}

/** Writes one JSON message per line. */
class NdjsonMessageWriter extends AbstractMessageWriter implements MessageWriter {
  constructor(private readonly stream: Duplex) {
    super();
    stream.on('close', () => this.fireClose());
    stream.on('error', (e) => this.fireError(e));
  }

  write(msg: Message): Promise<void> {
    return this.raw(msg);
  }

  raw(msg: unknown): Promise<void> {
    if (this.stream.destroyed || this.stream.writableEnded) return Promise.resolve();
    return new Promise((resolve) => {
      this.stream.write(`${JSON.stringify(msg)}\n`, (err) => {
        if (err) this.fireError(err, msg as Message, 1);
        resolve();
      });
    });
  }

  end(): void {
    if (!this.stream.destroyed) this.stream.end();
  }
}

export interface Peer {
  readonly connection: MessageConnection;
  /** Sends a JSON-RPC error response with a null id (for input that never became a request). */
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
  const writer = new NdjsonMessageWriter(stream);
  const sendError = (code: number, message: string): Promise<void> =>
    writer.raw({ jsonrpc: '2.0', id: null, error: { code, message } });
  const reader = new NdjsonMessageReader(stream, opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, (info) => {
    void sendError(info.code, info.message);
    opts.onBadInput?.(info);
  });
  const connection = createMessageConnection(reader, writer);
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  connection.onClose(() => resolveClosed());
  stream.on('close', () => resolveClosed());
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
