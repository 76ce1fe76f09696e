// IVssAsync (spec §9): an asynchronous operation that can be awaited, cancelled and asked
// for its status. Awaiting it is Wait(); cancel() is Cancel(); queryStatus() is QueryStatus().
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { HRESULT, VssError } from '../vss/index.js';

export type AsyncState = 'pending' | 'finished' | 'cancelled' | 'failed';

export class VssAsync<T> implements PromiseLike<T> {
  private state: AsyncState = 'pending';
  private hr: number = HRESULT.VSS_S_ASYNC_PENDING;
  private error: VssError | undefined;
  private readonly cts = new CancellationTokenSource();
  private readonly promise: Promise<T>;

  constructor(
    readonly operation: string,
    run: (token: CancellationTokenSource['token']) => Promise<T>,
  ) {
    this.promise = run(this.cts.token).then(
      (v) => {
        if (this.cts.token.isCancellationRequested && this.state === 'pending') {
          // Finished before the cancellation took effect.
        }
        this.state = 'finished';
        this.hr = HRESULT.VSS_S_ASYNC_FINISHED;
        return v;
      },
      (e: unknown) => {
        if (this.cts.token.isCancellationRequested) {
          this.state = 'cancelled';
          this.hr = HRESULT.VSS_S_ASYNC_CANCELLED;
          throw new VssError('VSS_E_BAD_STATE', `${operation} was cancelled`, { cause: e });
        }
        this.state = 'failed';
        this.error = VssError.is(e) ? e : new VssError('VSS_E_UNEXPECTED', String(e));
        this.hr = this.error.hresult;
        throw this.error;
      },
    );
    // A handle nobody awaits must not crash the process; awaiting still sees the error.
    this.promise.catch(() => undefined);
  }

  then<R1 = T, R2 = never>(onFulfilled?: ((v: T) => R1 | PromiseLike<R1>) | null, onRejected?: ((e: unknown) => R2 | PromiseLike<R2>) | null): Promise<R1 | R2> {
    return this.promise.then(onFulfilled, onRejected);
  }

  /** Wait(): resolves when done, rejects with the operation's error. */
  wait(): Promise<T> {
    return this.promise;
  }

  /** QueryStatus(): VSS_S_ASYNC_PENDING / _FINISHED / _CANCELLED, or the failure's HRESULT. */
  queryStatus(): { state: AsyncState; hr: number; error?: VssError } {
    return { state: this.state, hr: this.hr, ...(this.error ? { error: this.error } : {}) };
  }

  /**
   * Cancel(): asks the daemon to stop (DoSnapshotSet cancelled is aborted). Answers what
   * happened: 'cancelled', or 'finished' / 'failed' when the operation ended first.
   */
  async cancel(): Promise<AsyncState> {
    if (this.state !== 'pending') return this.state;
    this.cts.cancel();
    await this.promise.catch(() => undefined);
    return this.state;
  }
}
