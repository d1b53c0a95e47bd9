// What the pool benchmark's systems share: the spec bench/pool.ts gives them, the inputs, the
// timing of one workload, and the one `@@pool {json}` line each prints (bench/systems/pool.py
// does the same in Python).
import { writeSync } from "node:fs";

export interface PoolSpec {
  processes: number;
  /** map(square) over `count` integers. */
  tiny: { count: number; chunksize: number; reps: number; warmup: number };
  /** map(spin) over `count` tasks of `ms` each. */
  cpu: { count: number; ms: number; chunksize: number; reps: number; warmup: number };
  /** apply(length, [Float64Array of `bytes`]). */
  big: { bytes: number; reps: number; warmup: number };
}

/** Milliseconds per repetition of each workload (a system leaves out what it does not run). */
export interface PoolTimes {
  tinyMs?: number[];
  cpuMs?: number[];
  /** The work each CPU-bound repetition did: the sum of its tasks' own durations (ms). */
  cpuWorkMs?: number[];
  bigMs?: number[];
  /** mpconn only: the same 16 MiB as sendBytes to a child that answers with the length. */
  bigBytesMs?: number[];
}

export function readSpec(): PoolSpec {
  return JSON.parse(process.argv[process.argv.length - 1] ?? "{}") as PoolSpec;
}

export function tinyInput(spec: PoolSpec): number[] {
  return Array.from({ length: spec.tiny.count }, (_, i) => i);
}

export function checkTiny(results: unknown[], count: number): void {
  if (results.length !== count || results[count - 1] !== (count - 1) * (count - 1) || results[7] !== 49) {
    throw new Error(`pool bench: wrong results (${results.length} of ${count})`);
  }
}

export function bigInput(spec: PoolSpec): Float64Array {
  const values = new Float64Array(spec.big.bytes / 8);
  for (let i = 0; i < values.length; i++) values[i] = i;
  return values;
}

/**
 * `reps` timed runs of `run` (ms each), after `warmup` untimed ones (the JIT's turn). `work`, if
 * given, gets the sum of each timed run's results (the CPU-bound tasks return their durations).
 */
export async function timeReps({ reps, warmup }: { reps: number; warmup: number }, run: () => Promise<unknown>, work?: number[]): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const result = await run();
    times.push(performance.now() - t0);
    if (work) work.push((result as number[]).reduce((a, b) => a + b, 0));
  }
  return times;
}

export function emitPool(times: PoolTimes): void {
  writeSync(1, `@@pool ${JSON.stringify(times)}\n`);
}
