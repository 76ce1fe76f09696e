// The JSON-RPC connection (src/protocol/connection.ts) between two in-memory peers: requests
// both ways, errors as the wire carries them, $/cancelRequest, a request id that is not one,
// and what becomes of requests in flight when the stream ends or the connection is disposed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { ConnectionClosed, RpcErrorCode, type CancellationToken } from '../../src/protocol/connection.js';
import { memoryDuplexPair, openPeer, type Peer } from '../../src/protocol/framing.js';

function pair(): [Peer, Peer] {
  const [a, b] = memoryDuplexPair();
  return [openPeer(a), openPeer(b)];
}

function listen(...peers: Peer[]): void {
  for (const p of peers) p.connection.listen();
}

/** A peer on one end, and the other end read and written by hand. */
function rawPair(): { raw: { send(m: unknown): void; next(): Promise<unknown> }; peer: Peer } {
  const [a, b] = memoryDuplexPair();
  const lines: unknown[] = [];
  const waiting: ((m: unknown) => void)[] = [];
  let buf = '';
  a.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const m = JSON.parse(buf.slice(0, nl)) as unknown;
      buf = buf.slice(nl + 1);
      const w = waiting.shift();
      if (w) w(m);
      else lines.push(m);
    }
  });
  return {
    raw: {
      send: (m) => void a.write(`${JSON.stringify(m)}\n`),
      next: () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiting.push(r))),
    },
    peer: openPeer(b),
  };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail('expected a rejection');
}

describe('JSON-RPC connection', () => {
  test('requests go both ways; a handler answering nothing answers null', async () => {
    const [a, b] = pair();
    a.connection.onRequest('a.echo', (p) => p);
    b.connection.onRequest('b.add', (p) => {
      const { x, y } = p as { x: number; y: number };
      return x + y;
    });
    b.connection.onRequest('b.nothing', () => undefined);
    listen(a, b);
    assert.equal(await a.connection.sendRequest('b.add', { x: 2, y: 3 }), 5);
    assert.deepEqual(await b.connection.sendRequest('a.echo', { hello: 'there' }), { hello: 'there' });
    assert.equal(await a.connection.sendRequest('b.nothing', {}), null);
    assert.deepEqual(await Promise.all([1, 2, 3].map((x) => a.connection.sendRequest('b.add', { x, y: 10 }))), [11, 12, 13]);
    a.close();
  });

  test('errors: a ResponseError as thrown, any other failure an internal error, an unknown method -32601', async () => {
    const [a, b] = pair();
    b.connection.onRequest('vss', () => {
      throw new ResponseError(-2147212543, 'bad state', { vssError: 'VSS_E_BAD_STATE' });
    });
    b.connection.onRequest('boom', async () => {
      throw new Error('it broke');
    });
    listen(a, b);
    const vss = (await rejection(a.connection.sendRequest('vss', {}))) as ResponseError<unknown>;
    assert.ok(vss instanceof ResponseError);
    assert.deepEqual([vss.code, vss.message, vss.data], [-2147212543, 'bad state', { vssError: 'VSS_E_BAD_STATE' }]);
    const boom = (await rejection(a.connection.sendRequest('boom', {}))) as ResponseError<unknown>;
    assert.deepEqual([boom.code, boom.message], [RpcErrorCode.InternalError, 'Request boom failed with message: it broke']);
    const unknown = (await rejection(a.connection.sendRequest('no.such', {}))) as ResponseError<unknown>;
    assert.deepEqual([unknown.code, unknown.message], [RpcErrorCode.MethodNotFound, 'Unhandled method no.such']);
    a.close();
  });

  test('cancel() and a cancelled token send $/cancelRequest; the handler decides what to answer', async () => {
    const [a, b] = pair();
    const seen: CancellationToken[] = [];
    b.connection.onRequest('wait', (_p, token) => {
      seen.push(token);
      return new Promise((resolve) => token.onCancellationRequested(() => resolve('stopped')));
    });
    listen(a, b);
    const call = a.connection.call('wait', {});
    await new Promise((r) => setImmediate(r));
    call.cancel();
    assert.equal(await call.answer, 'stopped');
    assert.equal(seen[0]!.isCancellationRequested, true);
    // The requester SDK cancels with vscode-jsonrpc's CancellationTokenSource.
    const cts = new CancellationTokenSource();
    const answer = a.connection.sendRequest('wait', {}, cts.token);
    await new Promise((r) => setImmediate(r));
    cts.cancel();
    assert.equal(await answer, 'stopped');
    // A listener added after the cancellation still hears of it.
    const late = await new Promise<boolean>((resolve) => seen[0]!.onCancellationRequested(() => resolve(true)));
    assert.equal(late, true);
    a.close();
  });

  test('a request whose id is neither a string nor a number is refused with -32600', async () => {
    const { raw, peer } = rawPair();
    peer.connection.onRequest('m', () => 'ran');
    listen(peer);
    raw.send({ jsonrpc: '2.0', id: null, method: 'm', params: {} });
    const answer = (await raw.next()) as { id: unknown; error: { code: number; message: string } };
    assert.equal(answer.id, null);
    assert.equal(answer.error.code, RpcErrorCode.InvalidRequest);
    assert.match(answer.error.message, /id must be a string or a number/);
    peer.close();
  });

  /** Two peers, with a request from `a` that `b` never answers, already sent. */
  const hangingRequest = async (): Promise<{ a: Peer; b: Peer; inFlight: Promise<unknown> }> => {
    const [a, b] = pair();
    b.connection.onRequest('hang', () => new Promise(() => undefined));
    listen(a, b);
    const inFlight = a.connection.sendRequest('hang', {});
    await new Promise((r) => setImmediate(r));
    return { a, b, inFlight };
  };

  test('the stream ending rejects requests in flight with ConnectionClosed, and any request after', async () => {
    const { a, b, inFlight } = await hangingRequest();
    b.close();
    assert.ok((await rejection(inFlight)) instanceof ConnectionClosed);
    await a.closed;
    const after = await rejection(a.connection.sendRequest('hang', {}));
    assert.ok(after instanceof ConnectionClosed);
    assert.match((after as Error).message, /connection is closed/i);
  });

  test('disposing rejects requests in flight (as vscode-jsonrpc did); a response without result or error is an error', async () => {
    const { a, inFlight } = await hangingRequest();
    a.close();
    const e = (await rejection(inFlight)) as ResponseError<unknown>;
    assert.equal(e.code, RpcErrorCode.PendingResponseRejected);
    assert.match(e.message, /connection got disposed/);

    const { raw, peer } = rawPair();
    listen(peer);
    const call = peer.connection.call('empty', {});
    const request = (await raw.next()) as { id: number };
    raw.send({ jsonrpc: '2.0', id: request.id });
    assert.match(((await rejection(call.answer)) as Error).message, /neither a result nor an error/);
    peer.close();
  });
});
