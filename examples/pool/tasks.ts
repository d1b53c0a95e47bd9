// The worker module of the pool example: every exported function is a task.

/** A tiny task. */
export function square(x: number): number {
  return x * x;
}

/** A CPU-bound task: how many primes are below `limit`. */
export function countPrimes(limit: number): number {
  let count = 0;
  for (let n = 2; n < limit; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}

/** An async task. */
export async function slowEcho(text: string): Promise<string> {
  await Bun.sleep(10);
  return `${text} (from worker ${process.pid})`;
}

/** A task that throws. */
export function divide(a: number, b: number): number {
  if (b === 0) throw new RangeError("division by zero");
  return a / b;
}
