// What every Bun-side system shares: the spec it is given, the phases of a run, memory
// readings, and the two output lines the harness reads. The same protocol is written out
// again in node-ipc.cjs, python.py and c.c; bench/index.ts is its other end.
//
//   <runtime> bench/systems/<name> parent '<spec json>'   (started by the harness)
//   <runtime> bench/systems/<name> child  '<spec json>'   (started by that parent)
//
// The parent prints one `@@result {json}` line on stdout, the child one `@@child {json}`
// line (the child inherits the parent's stdout). Everything else goes to stderr.
import { readFileSync, writeFileSync, writeSync } from "node:fs";

export type Workload = "pingpong" | "stream" | "objstream" | "objpingpong" | "rss" | "burst" | "into";

export interface Spec {
  workload: Workload;
  /** Message body size in bytes (bytes workloads). */
  size: number;
  /** Messages (stream) or round trips (ping-pong) per repetition. */
  count: number;
  /** Messages or round trips before the first repetition. */
  warmup: number;
  reps: number;
  /** System-specific flavour: serializer name, IPC serialization. */
  variant?: string;
}

export interface Memory {
  /** Highest resident set size of the whole process (VmHWM), KiB. */
  peakKiB: number;
  /** Resident set size when the measured phases began (after warm-up), KiB. */
  baseKiB: number;
  /** Highest resident set size during the measured phases minus baseKiB, KiB. */
  growthKiB: number;
}

/** One repetition: seconds (streams) or round-trip statistics in µs (ping-pong). */
export type Rep = number | { median: number; p99: number };

export function readArgs(): { role: "parent" | "child"; spec: Spec } {
  const role = process.argv[2];
  if (role !== "parent" && role !== "child") throw new Error(`usage: ${process.argv[1]} parent|child '<spec json>'`);
  return { role, spec: JSON.parse(process.argv[3] ?? "{}") as Spec };
}

/** Counts of the phases of a stream: the warm-up, then one per repetition. */
export function phases(spec: Spec): number[] {
  return spec.workload === "rss" ? [spec.warmup, spec.count] : [spec.warmup, ...Array<number>(spec.reps).fill(spec.count)];
}

/** How many messages a ping-pong child echoes in all. */
export function roundTrips(spec: Spec): number {
  return spec.warmup + spec.count * spec.reps;
}

// ---- memory: /proc/self/status, with the peak reset at the start of the measured phases ----

function status(field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(readFileSync("/proc/self/status", "latin1"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Tracks the lifetime peak and the growth after mark(). */
export class MemoryMeter {
  private peakBefore = 0;
  private base = 0;
  private marked = false;

  /** The measured phases start now: remember the RSS and reset the kernel's high-water mark. */
  mark(): void {
    Bun.gc(true);
    this.peakBefore = Math.max(this.peakBefore, status("VmHWM"));
    this.base = status("VmRSS");
    try {
      writeFileSync("/proc/self/clear_refs", "5");
    } catch {
      // No reset possible: growth then counts from the process's lifetime peak (an overestimate).
    }
    this.marked = true;
  }

  read(): Memory {
    const hwm = status("VmHWM") || Math.round(process.resourceUsage().maxRSS);
    if (!this.marked) this.base = status("VmRSS");
    return { peakKiB: Math.max(this.peakBefore, hwm), baseKiB: this.base, growthKiB: Math.max(0, hwm - this.base) };
  }
}

// ---- output ----

function line(tag: string, value: unknown): void {
  // One write(2) per line: lines from parent and child never interleave (PIPE_BUF).
  writeSync(1, `${tag} ${JSON.stringify(value)}\n`);
}

export function emitResult(reps: Rep[], mem: Memory, extra: Record<string, unknown> = {}): void {
  line("@@result", { reps, mem, ...extra });
}

export function emitChild(mem: Memory, received: number): void {
  line("@@child", { mem, received });
}

// ---- payloads and timing ----

/** A message body of `size` bytes with a recognisable pattern. */
export function payload(size: number): Uint8Array {
  // Every byte written: untouched zero pages would make large copies unrealistically cheap.
  const bytes = new Uint8Array(size);
  for (let i = 0; i < Math.min(size, 4096); i++) bytes[i] = (i * 7 + 1) & 0xff;
  for (let filled = 4096; filled < size; filled *= 2) bytes.copyWithin(filled, 0, Math.min(filled, size - filled));
  return bytes;
}

/** The object of the object workloads: { id, name, values: [10 floats] }. */
export interface Item {
  id: number;
  name: string;
  values: number[];
}

export function item(id: number): Item {
  return { id, name: `item-${id}`, values: Array.from({ length: 10 }, (_, k) => id * 0.5 + k / 3 + 0.125) };
}

export function checkItem(value: unknown): void {
  const it = value as Item;
  if (typeof it?.id !== "number" || it.values?.length !== 10) throw new Error(`bench: bad object ${JSON.stringify(value)}`);
}

export const now = (): number => performance.now();

/** Median and 99th percentile of round-trip samples (ms in, µs out). */
export function latency(samplesMs: number[]): { median: number; p99: number } {
  const sorted = Float64Array.from(samplesMs).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 1000;
  return { median: at(0.5), p99: at(0.99) };
}

// ---- the parent's timed phases ----

/**
 * A ping-pong parent's phases: `roundTrip(i)` sends message i and waits for its echo, timed one
 * by one. The meter is marked as the first measured phase begins; the warm-up gives no Rep.
 */
export async function timeRoundTrips(spec: Spec, meter: MemoryMeter, roundTrip: (i: number) => Promise<unknown>): Promise<Rep[]> {
  const reps: Rep[] = [];
  for (const [p, n] of phases(spec).entries()) {
    if (p === 1) meter.mark();
    const samples = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const t0 = now();
      await roundTrip(i);
      samples[i] = now() - t0;
    }
    if (p > 0) reps.push(latency(samples));
  }
  return reps;
}

/**
 * A stream parent's phases: `phase(n)` sends n messages and waits for the child's acknowledgement,
 * timed as a whole (seconds). The meter is marked as the first measured phase begins; the
 * warm-up gives no Rep.
 */
export async function timeStream(spec: Spec, meter: MemoryMeter, phase: (n: number) => Promise<unknown>): Promise<Rep[]> {
  const reps: Rep[] = [];
  for (const [p, n] of phases(spec).entries()) {
    if (p === 1) meter.mark();
    const t0 = now();
    await phase(n);
    if (p > 0) reps.push((now() - t0) / 1000);
  }
  return reps;
}
