// The tasks of pool.ts: a worker module as users write one.
export function square(x: number): number {
  return x * x;
}
