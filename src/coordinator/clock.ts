// Time as a dependency: every deadline and window of the coordinator runs on a Clock, so
// tests can move time forward instead of waiting (src/testing/clock.ts).
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once after `ms` of this clock's time. */
  setTimer(ms: number, fn: () => void): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    // A pending deadline must not keep a finished process alive.
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};
