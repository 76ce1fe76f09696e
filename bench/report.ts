// The one output format of every benchmark, so anyone can check a figure:
//   bench: NAME METRIC = VALUE (goal <= TARGET)
export function report(name: string, metric: string, value: number, goal?: { op: '<=' | '>='; target: number }): boolean {
  const v = Number.isInteger(value) ? String(value) : value.toFixed(3);
  const met = goal === undefined || (goal.op === '<=' ? value <= goal.target : value >= goal.target);
  console.log(`bench: ${name} ${metric} = ${v}${goal ? ` (goal ${goal.op} ${goal.target})` : ''}${met ? '' : ' MISSED'}`);
  return met;
}

/** Median wall time in ms of `runs` runs of `fn` (after `warmup` unmeasured ones). */
export async function medianMs(fn: () => unknown, runs = 7, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  // Start each measured run on a collected heap (bench/run.ts passes --expose-gc), so one
  // run does not pay for the garbage of the run before it.
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < runs; i++) {
    gc?.();
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** What one measured function returns: a cleanup to run untimed, or nothing. */
type Timed = () => unknown;

/**
 * Medians of several functions measured in interleaved rounds (a, b, c, a, b, c, …), so
 * a change in machine load during the run hits each of them alike and their ratios hold.
 * A function may return a cleanup function: it runs after the timing stops, so deleting
 * what a run made is not counted as part of it. Given as `{ before, run }`, `before` runs
 * untimed just ahead of each timed `run` (to set up what the run reads).
 */
export async function interleavedMedianMs<K extends string>(fns: Record<K, Timed | { before: () => unknown; run: Timed }>, runs = 9, warmup = 2): Promise<Record<K, number>> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const names = Object.keys(fns) as K[];
  const times = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (let i = 0; i < warmup + runs; i++) {
    for (const n of names) {
      const f: Timed | { before: () => unknown; run: Timed } = fns[n];
      const run = 'run' in f ? f.run : f;
      if ('before' in f) await f.before();
      gc?.();
      const t0 = process.hrtime.bigint();
      const after = await run();
      if (i >= warmup) times[n].push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (typeof after === 'function') await (after as () => unknown)();
    }
  }
  return Object.fromEntries(names.map((n) => [n, times[n].sort((x, y) => x - y)[Math.floor(runs / 2)]!])) as Record<K, number>;
}
