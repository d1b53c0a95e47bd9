// The tasks of the pool benchmark (bench/pool.ts), for mpconn's Pool and the Bun IPC pool;
// bench/systems/pool.py has the same three in Python.

/** A tiny task: the pool's own cost per item dominates. */
export function square(x: number): number {
  return x * x;
}

/**
 * A CPU-bound task: spins for `ms` milliseconds of wall time and returns how long it really took
 * (longer when the machine took the core away as it ended), so that the ideal time of a map, the
 * work done divided by the processes, is known exactly.
 */
export function spin(ms: number): number {
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end);
  return performance.now() - start;
}

/** A large argument: only its length comes back, so the transfer is what is measured. */
export function length(values: Float64Array): number {
  return values.length;
}
