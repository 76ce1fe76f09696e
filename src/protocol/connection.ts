// JSON-RPC 2.0 over newline-delimited JSON: requests in both directions, responses matched by
// id, `$/cancelRequest` as in LSP. Every message is handled as soon as its line is read, with
// no queue or timer per message; vscode-jsonrpc's connection (which this replaces) spent more
// per message than the socket did. vscode-jsonrpc still supplies ResponseError and
// the requester's CancellationTokenSource, which fit the interfaces below.
import type { Duplex } from 'node:stream';
import { ResponseError } from 'vscode-jsonrpc/node';

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
  /** A request still unanswered when its connection was disposed (vscode-jsonrpc's code). */
  PendingResponseRejected: -32097,
} as const;

export const CANCEL_REQUEST = '$/cancelRequest';

export interface Disposable {
  dispose(): void;
}

/** Cancellation of one request: vscode-jsonrpc's CancellationToken has this shape too. */
export interface CancellationToken {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): Disposable;
}

const NO_LISTENER: Disposable = { dispose: () => undefined };

/** The token of a request being handled: cancelled by the peer's `$/cancelRequest`. */
class RequestToken implements CancellationToken {
  isCancellationRequested = false;
  private listeners: (() => void)[] | undefined;

  onCancellationRequested(listener: () => void): Disposable {
    if (this.isCancellationRequested) {
      // As vscode-jsonrpc does: a listener added too late still hears of it, asynchronously.
      setImmediate(listener);
      return NO_LISTENER;
    }
    (this.listeners ??= []).push(listener);
    return { dispose: () => void (this.listeners = this.listeners?.filter((l) => l !== listener)) };
  }

  cancel(): void {
    if (this.isCancellationRequested) return;
    this.isCancellationRequested = true;
    const ls = this.listeners;
    this.listeners = undefined;
    for (const l of ls ?? []) l();
  }
}

export type RequestHandler = (params: unknown, token: CancellationToken) => unknown;

/** A request's answer never came: the connection closed first (or was already closed). */
export class ConnectionClosed extends Error {
  constructor() {
    super('Connection is closed.');
    this.name = 'ConnectionClosed';
  }
}

/** A request in flight: its answer, and a way to ask the peer to stop (`$/cancelRequest`). */
export interface RpcCall<T = unknown> {
  readonly answer: Promise<T>;
  cancel(): void;
}

/** What a line carries once it is known to be a JSON-RPC 2.0 message. */
export interface RpcMessage {
  jsonrpc: '2.0';
  id?: unknown;
  method?: unknown;
  params?: unknown;
  result?: unknown;
  error?: { code?: unknown; message?: unknown; data?: unknown };
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * One side of a JSON-RPC connection. Feed it messages with `receive`; it writes its own
 * (requests, responses, cancellations) to the stream, one line each.
 */
export class RpcConnection {
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly pending = new Map<number, Pending>();
  /** Requests being handled, by id: their tokens, for `$/cancelRequest`. */
  private readonly running = new Map<unknown, RequestToken>();
  private readonly closeListeners: (() => void)[] = [];
  private nextId = 0;
  private state: 'open' | 'closed' | 'disposed' = 'open';
  private listening = false;

  /** `start` begins reading the stream, handing each message to `receive`. */
  constructor(
    private readonly stream: Duplex,
    private readonly start: (receive: (m: RpcMessage) => void) => void,
  ) {}

  /** Starts handling incoming messages: register the handlers first. */
  listen(): void {
    if (this.listening) throw new Error('the connection is already listening');
    this.listening = true;
    this.start((m) => this.receive(m));
  }

  /** Writes one message as one line; a stream already gone takes nothing. */
  write(msg: unknown): void {
    if (this.stream.destroyed || this.stream.writableEnded) return;
    this.stream.write(`${JSON.stringify(msg)}\n`);
  }

  onRequest(method: string, handler: RequestHandler): void {
    this.handlers.set(method, handler);
  }

  onClose(listener: () => void): Disposable {
    this.closeListeners.push(listener);
    return { dispose: () => void this.closeListeners.splice(this.closeListeners.indexOf(listener) >>> 0, 1) };
  }

  /**
   * Sends a request; resolves with its result, rejects with a ResponseError for its error and
   * with ConnectionClosed when the connection ends first. The token cancelling sends
   * `$/cancelRequest`; the answer is still awaited.
   */
  sendRequest(method: string, params: unknown, token?: CancellationToken): Promise<unknown> {
    const call = this.call(method, params);
    if (token?.isCancellationRequested) queueMicrotask(() => call.cancel());
    else if (token) {
      const listening = token.onCancellationRequested(() => call.cancel());
      const stop = (): void => listening.dispose();
      call.answer.then(stop, stop);
    }
    return call.answer;
  }

  /** Sends a request; `cancel` asks the peer to stop it (the answer is still awaited). */
  call(method: string, params: unknown): RpcCall {
    if (this.state !== 'open') return { answer: Promise.reject(this.state === 'closed' ? new ConnectionClosed() : disposedError()), cancel: () => undefined };
    const id = this.nextId++;
    const answer = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.write({ jsonrpc: '2.0', id, method, params });
    return { answer, cancel: () => this.cancel(id) };
  }

  private cancel(id: number): void {
    if (this.pending.has(id) && this.state === 'open') this.write({ jsonrpc: '2.0', method: CANCEL_REQUEST, params: { id } });
  }

  /** Handles one incoming message: a request, a notification or a response. */
  private receive(m: RpcMessage): void {
    if (this.state === 'disposed') return;
    if (typeof m.method === 'string') {
      if (typeof m.id === 'number' || typeof m.id === 'string') this.handleRequest(m.id, m.method, m.params);
      else if (m.id === undefined) this.handleNotification(m.method, m.params);
      else this.write({ jsonrpc: '2.0', id: null, error: { code: RpcErrorCode.InvalidRequest, message: 'a request id must be a string or a number' } });
      return;
    }
    if (typeof m.id !== 'number') return; // not an id this side gave: nothing waits for it
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.error) p.reject(new ResponseError(m.error.code as number, m.error.message as string, m.error.data));
    else if (m.result !== undefined) p.resolve(m.result);
    else p.reject(new Error('The received response has neither a result nor an error property.'));
  }

  private handleNotification(method: string, params: unknown): void {
    // Other notifications mean nothing to either side and are ignored.
    if (method !== CANCEL_REQUEST) return;
    const id = (params as { id?: unknown } | null)?.id;
    this.running.get(id)?.cancel();
  }

  private handleRequest(id: number | string, method: string, params: unknown): void {
    const handler = this.handlers.get(method);
    if (!handler) return this.reply(id, new ResponseError(RpcErrorCode.MethodNotFound, `Unhandled method ${method}`));
    const token = new RequestToken();
    this.running.set(id, token);
    let result: unknown;
    try {
      result = handler(params, token);
    } catch (e) {
      this.running.delete(id);
      return this.reply(id, errorOf(method, e));
    }
    if (!(result instanceof Promise)) {
      this.running.delete(id);
      return this.reply(id, result);
    }
    result.then(
      (r: unknown) => {
        this.running.delete(id);
        this.reply(id, r);
      },
      (e: unknown) => {
        this.running.delete(id);
        this.reply(id, errorOf(method, e));
      },
    );
  }

  private reply(id: number | string, resultOrError: unknown): void {
    if (this.state === 'disposed') return;
    if (resultOrError instanceof ResponseError) this.write({ jsonrpc: '2.0', id, error: resultOrError.toJson() });
    else this.write({ jsonrpc: '2.0', id, result: resultOrError === undefined ? null : resultOrError });
  }

  /** The stream ended: no more requests can be sent, those in flight will not be answered. */
  closed(): void {
    if (this.state !== 'open') return;
    this.state = 'closed';
    this.rejectPending(new ConnectionClosed());
    for (const l of [...this.closeListeners]) l();
  }

  /** Stops handling messages; requests in flight are rejected. */
  dispose(): void {
    if (this.state === 'disposed') return;
    this.state = 'disposed';
    this.running.clear();
    this.rejectPending(disposedError());
  }

  private rejectPending(error: Error): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(error);
  }
}

function disposedError(): ResponseError<unknown> {
  return new ResponseError(RpcErrorCode.PendingResponseRejected, 'Pending response rejected since connection got disposed');
}

/** A handler's failure as the error response: its own ResponseError, else an internal error naming it. */
function errorOf(method: string, e: unknown): ResponseError<unknown> {
  if (e instanceof ResponseError) return e;
  const message = (e as { message?: unknown } | null)?.message;
  return typeof message === 'string'
    ? new ResponseError(RpcErrorCode.InternalError, `Request ${method} failed with message: ${message}`)
    : new ResponseError(RpcErrorCode.InternalError, `Request ${method} failed unexpectedly without providing any details.`);
}
