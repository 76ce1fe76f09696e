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
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
