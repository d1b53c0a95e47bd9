// The tasks of the pool benchmark (bench/pool.ts), for mpconn's Pool and the Bun IPC pool;
// bench/systems/pool.py has the same three in Python.

/** A tiny task: the pool's own cost per item dominates. */
export function square(x: number): number {
  return x * x;
}

/**
 * A CPU-bound task: spins for `ms` milliseconds of wall time, so the ideal time of N of them on
 * P processes is exactly N × ms / P whatever else the machine does.
 */
export function spin(ms: number): number {
  const end = performance.now() + ms;
  let turns = 0;
  while (performance.now() < end) turns++;
  return turns;
}

/** A large argument: only its length comes back, so the transfer is what is measured. */
export function length(values: Float64Array): number {
  return values.length;
}
