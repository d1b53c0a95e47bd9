// The pool benchmark: mpconn's Pool against CPython's multiprocessing.Pool and a minimal pool on
// Bun's own IPC (bench/systems/pool-bun-ipc.ts), same processes and chunksize, each system in
// processes of its own, one after the other:
//   - map of 100,000 tiny tasks (x * x): what the pool itself costs per item;
//   - map of 200 CPU-bound tasks of 20 ms: against the ideal, total work / processes (the work
//     is what the tasks measured of themselves: a task the machine preempted as it ended runs
//     longer, which is the machine's doing, not the pool's);
//   - apply with one 16 MiB Float64Array argument: against sendBytes of the same bytes on a
//     spawn() connection (the speed the argument should travel at).
//
//   bun bench/pool.ts [--quick]
// bench/index.ts runs it too (runPoolBench) and adds its ratios to the report.
import { existsSync, readdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { mapChunksize } from "../src/processes/pool/options.ts";
import type { PoolSpec, PoolTimes } from "./systems/pool-common.ts";

const SYSTEMS_DIR = join(import.meta.dir, "systems");
const PROCESSES = 2;

export interface PoolBenchRow {
  system: string;
  label: string;
  /** Median ms of each workload; null when the system did not run (see error). */
  tinyMs: number | null;
  cpuMs: number | null;
  /** The CPU-bound map's ideal: the work its tasks did (their own durations) ÷ processes, median. */
  cpuIdealMs: number | null;
  bigMs: number | null;
  bigBytesMs?: number | null;
  error?: string;
}

export interface PoolRatio {
  label: string;
  value: number | null;
  target: string;
  met: boolean | null;
  detail?: string;
}

export interface PoolBench {
  spec: PoolSpec;
  python: string | null;
  rows: PoolBenchRow[];
  ratios: PoolRatio[];
}

export function poolSpec(quick: boolean): PoolSpec {
  const tiny = quick ? 10_000 : 100_000;
  const cpu = quick ? 16 : 200; // 8 equal chunks either way
  return {
    processes: PROCESSES,
    // The same chunksize everywhere: the Pool's default for this input, which is Python's too.
    tiny: { count: tiny, chunksize: mapChunksize(tiny, PROCESSES), reps: quick ? 3 : 15, warmup: quick ? 5 : 20 },
    cpu: { count: cpu, ms: 20, chunksize: mapChunksize(cpu, PROCESSES), reps: quick ? 1 : 3, warmup: 1 },
    big: { bytes: 16 * 1024 * 1024, reps: quick ? 2 : 7, warmup: 3 },
  };
}

/** CPython 3.12 from pyenv when there is one, else python3 on PATH. */
export function findPython(): string | null {
  const versions = join(homedir(), ".pyenv", "versions");
  if (existsSync(versions)) {
    const found = readdirSync(versions)
      .filter((v) => v.startsWith("3.12"))
      .map((v) => join(versions, v, "bin", "python3"))
      .find((p) => existsSync(p));
    if (found) return found;
  }
  return Bun.which("python3");
}

const median = (values: number[] | undefined): number | null => {
  if (!values || values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function runSystem(system: string, label: string, cmd: string[], spec: PoolSpec): Promise<PoolBenchRow> {
  const proc = Bun.spawn([...cmd, JSON.stringify(spec)], { stdout: "pipe", stderr: "pipe", cwd: join(import.meta.dir, "..") });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 300_000);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  const line = out.split("\n").find((l) => l.startsWith("@@pool "));
  if (code !== 0 || !line) {
    const error = `exit ${code}${line ? "" : ", no @@pool line"}: ${err.trim().split("\n").slice(-3).join(" | ")}`.slice(0, 400);
    return { system, label, tinyMs: null, cpuMs: null, cpuIdealMs: null, bigMs: null, error };
  }
  const times = JSON.parse(line.slice(7)) as PoolTimes;
  const ideal = times.cpuWorkMs?.map((work) => work / spec.processes);
  const row: PoolBenchRow = { system, label, tinyMs: median(times.tinyMs), cpuMs: median(times.cpuMs), cpuIdealMs: median(ideal), bigMs: median(times.bigMs) };
  if (times.bigBytesMs) row.bigBytesMs = median(times.bigBytesMs);
  return row;
}

export async function runPoolBench({ quick = false, log = (_: string) => {} } = {}): Promise<PoolBench> {
  const spec = poolSpec(quick);
  const python = findPython();
  const rows: PoolBenchRow[] = [];
  const bun = process.execPath;
  const systems: Array<[string, string, string[] | null]> = [
    ["mpconn-pool", "mpconn Pool", [bun, join(SYSTEMS_DIR, "pool-mpconn.ts")]],
    ["python-pool", "CPython multiprocessing.Pool", python ? [python, join(SYSTEMS_DIR, "pool.py")] : null],
    ["bun-ipc-pool", "pool on Bun.spawn ipc", [bun, join(SYSTEMS_DIR, "pool-bun-ipc.ts")]],
  ];
  for (const [system, label, cmd] of systems) {
    if (!cmd) {
      rows.push({ system, label, tinyMs: null, cpuMs: null, cpuIdealMs: null, bigMs: null, error: "no python3 found" });
      continue;
    }
    log(`pool: ${label} …`);
    rows.push(await runSystem(system, label, cmd, spec));
  }
  return { spec, python, rows, ratios: poolRatios(spec, rows) };
}

export function poolRatios(spec: PoolSpec, rows: PoolBenchRow[]): PoolRatio[] {
  const row = (system: string) => rows.find((r) => r.system === system);
  const ours = row("mpconn-pool");
  const ratio = (label: string, a: number | null | undefined, b: number | null | undefined, target: string, test: (v: number) => boolean, detail: string): PoolRatio => {
    const value = a != null && b != null && b > 0 ? a / b : null;
    return { label, value, target, met: value === null ? null : test(value), detail };
  };
  const ms = (v: number | null | undefined) => (v == null ? "—" : `${v.toFixed(1)} ms`);
  const tiny = `map ${spec.tiny.count.toLocaleString("en-US")} tiny tasks`;
  const nominal = (spec.cpu.count * spec.cpu.ms) / spec.processes;
  return [
    ratio(`pool ${tiny}: Python Pool time / mpconn Pool time`, row("python-pool")?.tinyMs, ours?.tinyMs, "≥ 3", (v) => v >= 3, `${ms(row("python-pool")?.tinyMs)} vs ${ms(ours?.tinyMs)}`),
    ratio(`pool ${tiny}: Bun IPC pool time / mpconn Pool time`, row("bun-ipc-pool")?.tinyMs, ours?.tinyMs, "≥ 3", (v) => v >= 3, `${ms(row("bun-ipc-pool")?.tinyMs)} vs ${ms(ours?.tinyMs)}`),
    ratio(
      `pool map ${spec.cpu.count} × ${spec.cpu.ms} ms CPU-bound: mpconn Pool time / ideal (work done ÷ processes)`,
      ours?.cpuMs,
      ours?.cpuIdealMs,
      "≤ 1.05",
      (v) => v <= 1.05,
      `${ms(ours?.cpuMs)} vs ${ms(ours?.cpuIdealMs)}; nominal ideal ${ms(nominal)}`,
    ),
    ratio("pool apply, 16 MiB Float64Array: mpconn Pool time / sendBytes time", ours?.bigMs, ours?.bigBytesMs, "≤ 1.5", (v) => v <= 1.5, `${ms(ours?.bigMs)} vs ${ms(ours?.bigBytesMs)}`),
  ];
}

export function printPoolBench(result: PoolBench): void {
  const { spec, rows, ratios } = result;
  const cell = (v: number | null | undefined) => (v == null ? "—" : `${v.toFixed(1)} ms`).padStart(12);
  console.log(
    `\nPool: ${spec.processes} processes; map ${spec.tiny.count.toLocaleString("en-US")} tiny (chunksize ${spec.tiny.chunksize}), ` +
      `map ${spec.cpu.count} × ${spec.cpu.ms} ms (chunksize ${spec.cpu.chunksize}), apply 16 MiB Float64Array; medians`,
  );
  console.log(`${"system".padEnd(30)}${"tiny".padStart(12)}${"CPU-bound".padStart(12)}${"its ideal".padStart(12)}${"16 MiB".padStart(12)}`);
  for (const r of rows) {
    console.log(`${r.label.padEnd(30)}${cell(r.tinyMs)}${cell(r.cpuMs)}${cell(r.cpuIdealMs)}${cell(r.bigMs)}${r.error ? `  FAILED ${r.error}` : ""}`);
  }
  const ours = rows.find((r) => r.system === "mpconn-pool");
  if (ours?.bigBytesMs != null) console.log(`${"(mpconn sendBytes 16 MiB)".padEnd(30)}${"".padStart(36)}${cell(ours.bigBytesMs)}`);
  for (const r of ratios) {
    const value = r.value === null ? "—" : `${r.value.toFixed(2)}×`;
    const verdict = r.met === null ? "n/a" : r.met ? "met" : "MISSED";
    console.log(`  ${r.label}: ${value} (target ${r.target}, ${verdict}; ${r.detail})`);
  }
}

if (import.meta.main) {
  const result = await runPoolBench({ quick: process.argv.includes("--quick"), log: (m) => void process.stderr.write(`${m}\n`) });
  printPoolBench(result);
  if (result.rows.some((r) => r.error)) process.exitCode = 1;
}
