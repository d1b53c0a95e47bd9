// mpconn's benchmark: mpconn against Bun's and Node's IPC, CPython's multiprocessing.connection,
// a raw Bun socket and C, side by side, in one run.
//
//   bun bench/index.ts [--quick] [--only name,...] [--reps N] [--out DIR] [--list]
//
// Every system runs in processes of its own: the harness starts `bench/systems/<name> parent`,
// which starts its child, runs one workload and prints one `@@result` line (the child one
// `@@child` line); see bench/systems/common.ts. Results: a table on the terminal, JSON in
// bench/results/<date>-<host>.json and latest.json, a chart in latest.svg. See docs/benchmarks.md.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, homedir, hostname, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fmtRate, printTables, renderSvg, type Kind, type ProcessMemory, type Ratio, type Report, type RunResult } from "./render.ts";
import { printPoolBench, runPoolBench, type PoolBench } from "./pool.ts";

const BENCH = import.meta.dir;
const ROOT = join(BENCH, "..");
const SYSTEMS_DIR = join(BENCH, "systems");
const BUN = process.execPath;

// ---- options ----------------------------------------------------------------------------

interface Options {
  quick: boolean;
  only: string[] | null;
  reps: number | null;
  out: string | null;
  list: boolean;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { quick: false, only: null, reps: null, out: null, list: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === "--quick") options.quick = true;
    else if (arg === "--list") options.list = true;
    else if (arg.startsWith("--only")) options.only = [...(options.only ?? []), ...value().split(",").filter(Boolean)];
    else if (arg.startsWith("--reps")) options.reps = Math.max(1, Number.parseInt(value(), 10));
    else if (arg.startsWith("--out")) options.out = value();
    else if (arg === "--help" || arg === "-h") {
      console.log("usage: bun bench/index.ts [--quick] [--only name,...] [--reps N] [--out DIR] [--list]");
      process.exit(0);
    } else throw new Error(`unknown option ${arg} (try --help)`);
  }
  return options;
}

// ---- workloads --------------------------------------------------------------------------

/** How many messages a system can move in reasonable time: counts are chosen per tier. */
type Tier = "fast" | "medium" | "slow";
/** [count per repetition, warm-up count] */
type Counts = [number, number];

interface WorkloadDef {
  id: string;
  title: string;
  kind: Kind;
  size: number;
  counts: Record<Tier, Counts>;
  quick: Counts;
  quickSize?: number;
  /** Fixed repetitions (the RSS check runs once). */
  reps?: number;
}

const KiB = 1024;
const MiB = 1024 * 1024;
const all = (c: Counts): Record<Tier, Counts> => ({ fast: c, medium: c, slow: c });

export const WORKLOADS: WorkloadDef[] = [
  { id: "pingpong-64", title: "ping-pong 64 B", kind: "pingpong", size: 64, counts: all([10_000, 2_000]), quick: [300, 100] },
  {
    id: "stream-64",
    title: "stream 64 B",
    kind: "stream",
    size: 64,
    counts: { fast: [1_000_000, 100_000], medium: [200_000, 20_000], slow: [50_000, 5_000] },
    quick: [5_000, 500],
  },
  {
    id: "stream-4k",
    title: "stream 4 KiB",
    kind: "stream",
    size: 4 * KiB,
    counts: { fast: [100_000, 10_000], medium: [20_000, 2_000], slow: [20_000, 2_000] },
    quick: [500, 50],
  },
  {
    id: "stream-1m",
    title: "stream 1 MiB",
    kind: "stream",
    size: MiB,
    counts: { fast: [500, 50], medium: [100, 10], slow: [100, 10] },
    quick: [4, 1],
  },
  { id: "stream-256m", title: "one 256 MiB message", kind: "stream", size: 256 * MiB, counts: all([1, 1]), quick: [1, 1], quickSize: 4 * MiB },
  // Large messages (docs/large-messages.md): bursts of un-awaited sends, a 16 MiB stream with
  // recvBytes, and with recvBytesInto into one reused buffer.
  { id: "burst-1m", title: "256 × 1 MiB un-awaited", kind: "burst", size: MiB, counts: all([256, 256]), quick: [16, 16] },
  { id: "stream-16m", title: "stream 16 MiB", kind: "stream", size: 16 * MiB, counts: all([16, 4]), quick: [2, 1], quickSize: 2 * MiB },
  { id: "into-16m", title: "16 MiB recvBytesInto", kind: "into", size: 16 * MiB, counts: all([16, 4]), quick: [2, 1], quickSize: 2 * MiB },
  {
    id: "objects-stream",
    title: "objects stream",
    kind: "objstream",
    size: 0,
    counts: { fast: [200_000, 20_000], medium: [100_000, 10_000], slow: [30_000, 3_000] },
    quick: [1_000, 100],
  },
  { id: "objects-pingpong", title: "objects ping-pong", kind: "objpingpong", size: 0, counts: all([5_000, 1_000]), quick: [200, 50] },
  {
    id: "rss-1m-64",
    title: "RSS: 1,000,000 × 64 B",
    kind: "rss",
    size: 64,
    counts: all([1_000_000, 10_000]),
    quick: [20_000, 1_000],
    reps: 1,
  },
];

// ---- systems ----------------------------------------------------------------------------

const BYTES: Kind[] = ["pingpong", "stream", "rss", "burst", "into"];
/** The large-message workloads: the only ones of the shared-memory systems. */
const LARGE = ["burst-1m", "stream-1m", "stream-16m", "into-16m", "stream-256m"];
const OBJECTS: Kind[] = ["objstream", "objpingpong"];

interface SystemDef {
  name: string;
  label: string;
  tier: Tier;
  kinds: Kind[];
  /** Only these workloads (default: every workload of its kinds). */
  workloads?: string[];
  /** null when usable; otherwise why it is skipped. Also fills in `command` and `version`. */
  prepare(): Promise<string | null>;
  command: (spec: string) => string[];
  version?: string;
}

function bunSystem(name: string, label: string, file: string, variant: string, kinds: Kind[], tier: Tier = "fast"): SystemDef {
  return {
    name,
    label,
    tier,
    kinds,
    version: `bun ${Bun.version}`,
    async prepare() {
      return null;
    },
    command: (spec) => [BUN, join(SYSTEMS_DIR, file), "parent", withVariant(spec, variant)],
  };
}

function withVariant(spec: string, variant: string): string {
  return JSON.stringify({ ...JSON.parse(spec), variant });
}

let tempDir: string | null = null;
function scratch(): string {
  tempDir ??= mkdtempSync(join(tmpdir(), "mpconn-bench-"));
  return tempDir;
}

function run(cmd: string[]): { ok: boolean; out: string } {
  try {
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
    return { ok: r.exitCode === 0, out: `${r.stdout.toString()}${r.stderr.toString()}`.trim() };
  } catch (error) {
    return { ok: false, out: String(error) };
  }
}

function findPython(): string | null {
  const onPath = Bun.which("python3");
  if (onPath) return onPath;
  const versions = join(homedir(), ".pyenv", "versions");
  if (!existsSync(versions)) return null;
  const found = readdirSync(versions)
    .filter((v) => v.startsWith("3.12"))
    .map((v) => join(versions, v, "bin", "python3"))
    .find((p) => existsSync(p));
  return found ?? null;
}

export const SYSTEMS: SystemDef[] = [
  bunSystem("mpconn-bytes", "mpconn sendBytes/recvBytes", "mpconn.ts", "bytes", BYTES),
  bunSystem("mpconn-structured", "mpconn send/recv, structured", "mpconn.ts", "structured", OBJECTS),
  bunSystem("mpconn-json", "mpconn send/recv, json", "mpconn.ts", "json", OBJECTS),
  {
    ...bunSystem("mpconn-pickle", "mpconn send/recv, pickle", "mpconn.ts", "pickle", OBJECTS),
    async prepare() {
      const module = join(ROOT, "src", "serializers", "pickle", "index.ts");
      if (!existsSync(module)) return "src/serializers/pickle/index.ts does not exist";
      // Accepted as a serializer name, and round-trips an object through a Pipe?
      const probe = `
        await import(${JSON.stringify(module)});
        const { Pipe } = await import(${JSON.stringify(join(ROOT, "src", "index.ts"))});
        const [a, b] = Pipe(true, { serializer: "pickle" });
        await a.send({ id: 1, name: "x", values: [0.5] });
        const got = await b.recv();
        if (got.id !== 1) throw new Error("pickle round trip failed: " + JSON.stringify(got));
        a.close(); b.close();`;
      const r = run([BUN, "-e", probe]);
      const why = r.out.split("\n").find((l) => /^\s*\w*Error: /.test(l)) ?? r.out.split("\n").pop();
      return r.ok ? null : `"pickle" is not usable as a serializer here: ${why?.trim().slice(0, 200)}`;
    },
  },
  bunSystem("bun-ipc-advanced", 'Bun.spawn ipc, "advanced"', "bun-ipc.ts", "advanced", [...BYTES, ...OBJECTS], "medium"),
  bunSystem("bun-ipc-json", 'Bun.spawn ipc, "json"', "bun-ipc.ts", "json", [...BYTES, ...OBJECTS], "medium"),
  {
    name: "node-ipc",
    label: 'node fork ipc, "advanced"',
    tier: "slow",
    kinds: ["pingpong", "stream", ...OBJECTS],
    command: () => [],
    async prepare() {
      const node = Bun.which("node");
      if (!node) return "node is not on PATH";
      this.version = `node ${run([node, "--version"]).out}`;
      this.command = (spec) => [node, join(SYSTEMS_DIR, "node-ipc.cjs"), "parent", spec];
      return null;
    },
  },
  {
    name: "python",
    label: "CPython multiprocessing",
    tier: "medium",
    kinds: [...BYTES, ...OBJECTS],
    command: () => [],
    async prepare() {
      const found = findPython();
      if (!found) return "no python3 on PATH or in ~/.pyenv/versions/3.12*";
      // Resolve pyenv shims to the interpreter itself (a shim costs a shell per start).
      const r = run([found, "-c", "import sys; print(sys.executable); print(sys.version.split()[0])"]);
      if (!r.ok) return `${found} does not run: ${r.out.slice(0, 200)}`;
      const [exe, version] = r.out.split("\n");
      this.version = `python ${version}`;
      this.command = (spec) => [exe!, join(SYSTEMS_DIR, "python.py"), "parent", spec];
      return null;
    },
  },
  {
    name: "python-shm",
    label: "CPython shared_memory",
    tier: "medium",
    kinds: ["stream", "into"],
    workloads: ["stream-16m", "into-16m"],
    command: () => [],
    async prepare() {
      const python = SYSTEMS.find((x) => x.name === "python")!;
      const why = await python.prepare();
      if (why) return why;
      this.version = python.version;
      this.command = (spec) => python.command(withVariant(spec, "shm"));
      return null;
    },
  },
  bunSystem("raw-bun", "raw Bun socket-fd + framing", "raw.ts", "raw", BYTES),
  { ...bunSystem("mpconn-nolane", "mpconn sendBytes/recvBytes, lane off", "mpconn.ts", "nolane", ["burst", "stream", "into"]), workloads: LARGE },
  { ...bunSystem("lane-raw", "mpconn's lane alone (src/lane)", "lane.ts", "", ["burst", "stream", "into"]), workloads: LARGE },
  {
    name: "c",
    label: "C socketpair",
    tier: "fast",
    kinds: BYTES,
    command: () => [],
    async prepare() {
      const cc = Bun.which("cc");
      if (!cc) return "cc is not on PATH";
      const exe = join(scratch(), "c-bench");
      const r = run([cc, "-O2", "-o", exe, join(SYSTEMS_DIR, "c.c")]);
      if (!r.ok) return `cc failed: ${r.out.slice(0, 300)}`;
      this.version = run([cc, "--version"]).out.split("\n")[0];
      this.command = (spec) => [exe, "parent", spec];
      return null;
    },
  },
];

// ---- running ----------------------------------------------------------------------------

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function runOne(system: SystemDef, w: WorkloadDef, options: Options): Promise<RunResult> {
  const [count, warmup] = options.quick ? w.quick : w.counts[system.tier];
  const size = options.quick && w.quickSize ? w.quickSize : w.size;
  const reps = w.reps ?? options.reps ?? (options.quick ? 1 : 5);
  const spec = { workload: w.kind, size, count, warmup, reps };
  const result: RunResult = { system: system.name, workload: w.id, spec: { kind: w.kind, size, count, warmup, reps }, ok: false, wallSeconds: 0 };
  const started = performance.now();
  const timeoutMs = options.quick ? 30_000 : 240_000;
  let timedOut = false;
  // Its own process group, so a hung run can be killed with its child.
  const proc = Bun.spawn(system.command(JSON.stringify(spec)), { stdout: "pipe", stderr: "pipe", detached: true, cwd: ROOT });
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      proc.kill("SIGKILL");
    }
  }, timeoutMs);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  result.wallSeconds = (performance.now() - started) / 1000;
  const parentLine = out.split("\n").find((l) => l.startsWith("@@result "));
  const childLine = out.split("\n").find((l) => l.startsWith("@@child "));
  if (timedOut || code !== 0 || !parentLine) {
    const why = timedOut ? `timed out after ${timeoutMs / 1000} s` : code !== 0 ? `exit code ${code}` : "no @@result line";
    const tail = err.trim().split("\n").slice(-4).join(" | ");
    result.error = `${why}${tail ? `: ${tail}` : ""}`.slice(0, 600);
    return result;
  }
  const parsed = JSON.parse(parentLine.slice(9)) as { reps: RunResult["reps"]; mem: ProcessMemory };
  result.ok = true;
  result.reps = parsed.reps;
  result.parent = parsed.mem;
  if (childLine) result.child = (JSON.parse(childLine.slice(8)) as { mem: ProcessMemory }).mem;
  const r = parsed.reps ?? [];
  if (w.kind === "pingpong" || w.kind === "objpingpong") {
    const stats = r as Array<{ median: number; p99: number }>;
    result.medianUs = median(stats.map((s) => s.median));
    result.p99Us = median(stats.map((s) => s.p99));
    result.msgsPerSec = 1e6 / result.medianUs;
    const meds = stats.map((s) => s.median);
    result.spread = Math.max(...meds) / Math.min(...meds) - 1;
  } else {
    const secs = r as number[];
    result.seconds = median(secs);
    result.msgsPerSec = count / result.seconds;
    if (size > 0) result.mbPerSec = (count * size) / result.seconds / 1e6;
    result.spread = Math.max(...secs) / Math.min(...secs) - 1;
  }
  return result;
}

// ---- machine ----------------------------------------------------------------------------

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) return m[1]!.trim();
  } catch {}
  return cpus()[0]?.model ?? "unknown CPU";
}

/** Fraction of all CPUs busy over `ms`, from /proc/stat (null where there is none). */
async function cpuBusy(ms = 1000): Promise<number | null> {
  const read = (): number[] | null => {
    try {
      return readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    } catch {
      return null;
    }
  };
  const a = read();
  await Bun.sleep(ms);
  const b = read();
  if (!a || !b) return null;
  const d = b.map((v, i) => v - a[i]!);
  const total = d.reduce((x, y) => x + y, 0);
  const idle = d[3]! + (d[4] ?? 0);
  return total > 0 ? 1 - idle / total : null;
}

// ---- ratios -----------------------------------------------------------------------------

function ratios(results: RunResult[], codec: CodecRow[] | null): Ratio[] {
  const get = (system: string, workload: string): RunResult | undefined =>
    results.find((r) => r.system === system && r.workload === workload && r.ok);
  const out: Ratio[] = [];
  const ratio = (
    label: string,
    a: [string, string],
    b: [string, string],
    metric: "msgsPerSec" | "mbPerSec" | "medianUs",
    test: (v: number) => boolean,
    target: string,
  ): void => {
    const x = get(...a)?.[metric];
    const y = get(...b)?.[metric];
    const value = x !== undefined && y !== undefined && y > 0 ? x / y : null;
    out.push({ label, value, target, met: value === null ? null : test(value) });
  };
  ratio("64 B stream msgs/s: mpconn / raw Bun", ["mpconn-bytes", "stream-64"], ["raw-bun", "stream-64"], "msgsPerSec", (v) => v >= 0.5, "≥ 0.5");
  ratio(
    "64 B stream msgs/s: mpconn / Bun IPC advanced",
    ["mpconn-bytes", "stream-64"],
    ["bun-ipc-advanced", "stream-64"],
    "msgsPerSec",
    (v) => v >= 10,
    "≥ 10",
  );
  for (const [w, name] of [
    ["stream-4k", "4 KiB"],
    ["stream-1m", "1 MiB"],
    ["stream-256m", "256 MiB"],
  ] as const) {
    ratio(`${name} stream MB/s: mpconn / raw Bun`, ["mpconn-bytes", w], ["raw-bun", w], "mbPerSec", (v) => v >= 0.8, "≥ 0.8");
  }
  // Large messages (issue 12 targets). mpconn-bytes has the lane on (spawn()'s default),
  // mpconn-nolane off; lane-raw is src/lane without Connection, its ceiling.
  const WHO: Record<string, string> = { "mpconn-bytes": "mpconn lane on", "mpconn-nolane": "mpconn lane off", "lane-raw": "lane alone" };
  for (const system of ["mpconn-bytes", "lane-raw"]) {
    const who = WHO[system]!;
    ratio(`256 × 1 MiB burst MB/s: ${who} / raw Bun`, [system, "burst-1m"], ["raw-bun", "burst-1m"], "mbPerSec", (v) => v >= 1, "≥ 1.0");
    ratio(`256 × 1 MiB burst MB/s: ${who} / CPython Pipe`, [system, "burst-1m"], ["python", "burst-1m"], "mbPerSec", (v) => v >= 1, "≥ 1.0");
    ratio(`16 MiB stream MB/s: ${who} / raw Bun`, [system, "stream-16m"], ["raw-bun", "stream-16m"], "mbPerSec", (v) => v >= 1.5, "≥ 1.5");
    ratio(`16 MiB stream MB/s: ${who} / CPython Pipe`, [system, "stream-16m"], ["python", "stream-16m"], "mbPerSec", (v) => v >= 2, "≥ 2");
    ratio(`16 MiB recvBytesInto MB/s: ${who} / C socketpair`, [system, "into-16m"], ["c", "into-16m"], "mbPerSec", (v) => v >= 2, "≥ 2");
    ratio(`256 MiB message MB/s: ${who} / raw Bun`, [system, "stream-256m"], ["raw-bun", "stream-256m"], "mbPerSec", (v) => v >= 1.5, "≥ 1.5");
    ratio(`256 MiB message MB/s: ${who} / CPython Pipe`, [system, "stream-256m"], ["python", "stream-256m"], "mbPerSec", (v) => v >= 1.5, "≥ 1.5");
  }
  // Lane off, the target is "no slower than before the lane": mpconn's ratio to raw Bun in the
  // runs of that time (issue 12's figures; bench/results/2026-11-25-vm.json for 1 MiB; the
  // lane-alone run of docs/large-messages.md for the workloads added with the lane).
  for (const [w, name, before, from] of [
    ["burst-1m", "256 × 1 MiB burst", 0.079, "221 vs 2,801 MB/s"],
    ["stream-1m", "1 MiB stream", 0.97, "3,014 vs 3,101 MB/s"],
    ["stream-16m", "16 MiB stream", 0.33, "519 vs 1,573 MB/s"],
    ["into-16m", "16 MiB recvBytesInto", 0.14, "294 vs 2,137 MB/s"],
    ["stream-256m", "256 MiB message", 0.38, "413 vs 1,097 MB/s"],
  ] as const) {
    ratio(`${name} MB/s: mpconn lane off / raw Bun (before the lane: ${before}, ${from})`, ["mpconn-nolane", w], ["raw-bun", w], "mbPerSec", (v) => v >= before, `≥ ${before}`);
  }
  for (const system of ["mpconn-bytes", "mpconn-nolane", "lane-raw"]) {
    const r = get(system, "stream-256m");
    for (const side of ["parent", "child"] as const) {
      const kib = r?.[side]?.peakKiB;
      const size = r?.spec.size ?? 0;
      const value = kib === undefined || size === 0 ? null : (kib * 1024) / size;
      out.push({ label: `256 MiB message: ${system} ${side} peak RSS / message size`, value, target: "≤ 2.5", met: value === null ? null : value <= 2.5 });
    }
  }
  ratio("16 MiB stream MB/s: lane alone / CPython shared_memory", ["lane-raw", "stream-16m"], ["python-shm", "stream-16m"], "mbPerSec", (v) => v >= 1, "≥ 1.0");
  ratio("64 B ping-pong median: mpconn / raw Bun", ["mpconn-bytes", "pingpong-64"], ["raw-bun", "pingpong-64"], "medianUs", (v) => v <= 1.15, "≤ 1.15");
  ratio(
    "64 B ping-pong median: mpconn / Bun IPC advanced",
    ["mpconn-bytes", "pingpong-64"],
    ["bun-ipc-advanced", "pingpong-64"],
    "medianUs",
    (v) => v < 1,
    "< 1",
  );
  ratio(
    "objects stream msgs/s: structured / Bun IPC advanced",
    ["mpconn-structured", "objects-stream"],
    ["bun-ipc-advanced", "objects-stream"],
    "msgsPerSec",
    (v) => v >= 2,
    "≥ 2",
  );
  ratio(
    "objects stream msgs/s: json / Bun IPC json",
    ["mpconn-json", "objects-stream"],
    ["bun-ipc-json", "objects-stream"],
    "msgsPerSec",
    (v) => v >= 2,
    "≥ 2",
  );
  const rss = get("mpconn-bytes", "rss-1m-64");
  for (const side of ["parent", "child"] as const) {
    const kib = rss?.[side]?.growthKiB;
    const count = rss?.spec.count ?? 0;
    out.push({
      label: `RSS growth, ${count.toLocaleString("en-US")} × 64 B, mpconn ${side} (MiB)`,
      value: kib === undefined ? null : kib / 1024,
      target: "< 64",
      met: kib === undefined ? null : kib < 64 * 1024,
    });
  }
  if (codec) {
    for (const row of codec) {
      out.push({
        label: `codec ${row.op} ${row.size >= 1024 ? `${row.size / 1024} KiB` : `${row.size} B`}: wasm / TS ns per frame`,
        value: row.ratio,
        target: "≤ 1.0",
        met: row.ratio <= 1.0,
        detail: `${row.wasmNs.toFixed(1)} vs ${row.tsNs.toFixed(1)} ns`,
      });
    }
  } else {
    out.push({ label: "codec wasm / TS (bench/codec.ts)", value: null, target: "≤ 1.0", met: null, detail: "not run" });
  }
  return out;
}

// ---- the codec micro-benchmark (bench/codec.ts, written separately) ----------------------

interface CodecRow {
  op: string;
  size: number;
  wasmNs: number;
  tsNs: number;
  ratio: number;
}

/** HOOK: bench/codec.ts exports runCodecBench({ quick }) → rows; run it in a process of its own. */
async function runCodec(quick: boolean): Promise<{ rows: CodecRow[] | null; error?: string }> {
  const file = join(BENCH, "codec.ts");
  if (!existsSync(file)) return { rows: null, error: "bench/codec.ts does not exist" };
  const script = `const { runCodecBench } = await import(${JSON.stringify(file)});
    const rows = await runCodecBench({ quick: ${quick} });
    console.log("@@codec " + JSON.stringify(rows));`;
  const proc = Bun.spawn([BUN, "-e", script], { stdout: "pipe", stderr: "pipe", cwd: ROOT });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const line = out.split("\n").find((l) => l.startsWith("@@codec "));
  if (code !== 0 || !line) return { rows: null, error: `bench/codec.ts failed (exit ${code}): ${err.trim().slice(-300)}` };
  return { rows: JSON.parse(line.slice(8)) as CodecRow[] };
}

// ---- main -------------------------------------------------------------------------------

function select(options: Options): { systems: SystemDef[]; workloads: WorkloadDef[]; codec: boolean; pool: boolean } {
  if (!options.only) return { systems: SYSTEMS, workloads: WORKLOADS, codec: true, pool: true };
  const matches = (name: string, token: string): boolean => name === token || name.startsWith(`${token}-`);
  const bySystem = SYSTEMS.filter((s) => options.only!.some((t) => matches(s.name, t)));
  const byWorkload = WORKLOADS.filter((w) => options.only!.some((t) => matches(w.id, t)));
  const codec = options.only.includes("codec");
  const pool = options.only.includes("pool");
  const unknown = options.only.filter((t) => t !== "codec" && t !== "pool" && !SYSTEMS.some((s) => matches(s.name, t)) && !WORKLOADS.some((w) => matches(w.id, t)));
  if (unknown.length > 0) {
    throw new Error(
      `--only: unknown name(s) ${unknown.join(", ")}; systems: ${SYSTEMS.map((s) => s.name).join(", ")}; workloads: ${WORKLOADS.map((w) => w.id).join(", ")}; or codec, pool`,
    );
  }
  return {
    systems: bySystem.length > 0 || byWorkload.length > 0 ? (bySystem.length > 0 ? bySystem : SYSTEMS) : [],
    workloads: byWorkload.length > 0 ? byWorkload : bySystem.length > 0 ? WORKLOADS : [],
    codec,
    pool,
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options.list) {
    console.log(`systems:   ${SYSTEMS.map((s) => s.name).join(", ")}`);
    console.log(`workloads: ${WORKLOADS.map((w) => w.id).join(", ")}`);
    console.log("also: codec (bench/codec.ts), pool (bench/pool.ts)");
    return;
  }
  const { systems, workloads, codec: wantCodec, pool: wantPool } = select(options);
  const log = (message: string): void => void process.stderr.write(`${message}\n`);
  const date = new Date();
  const machine = { cpu: cpuModel(), cores: cpus().length, host: hostname(), bun: Bun.version, platform: `${process.platform} ${process.arch}` };
  log(`mpconn bench${options.quick ? " (quick)" : ""}: ${machine.cpu}, ${machine.cores} cores, Bun ${machine.bun}`);

  const busyBefore = await cpuBusy(options.quick ? 200 : 1000);
  const warnings: string[] = [];
  if (busyBefore !== null && busyBefore > 0.25) {
    const w = `the machine was ${(busyBefore * 100).toFixed(0)}% busy before the run (load ${loadavg()[0]!.toFixed(2)}): numbers will be low and noisy`;
    warnings.push(w);
    log(`warning: ${w}`);
  }

  const active: SystemDef[] = [];
  const skipped: Record<string, string> = {};
  for (const s of systems) {
    const why = await s.prepare();
    if (why) {
      skipped[s.name] = why;
      log(`skip ${s.name}: ${why}`);
    } else active.push(s);
  }

  let codecRows: CodecRow[] | null = null;
  let codecError: string | undefined;
  if (wantCodec) {
    log("codec: bench/codec.ts …");
    const c = await runCodec(options.quick);
    codecRows = c.rows;
    codecError = c.error;
    log(codecRows ? `codec: ${codecRows.map((r) => `${r.op} ${r.size} B ${r.ratio.toFixed(2)}×`).join(", ")}` : `codec: ${codecError}`);
  }

  let pool: PoolBench | null = null;
  if (wantPool) {
    log("pool: bench/pool.ts …");
    pool = await runPoolBench({ quick: options.quick, log });
  }

  // Workload by workload, so that whatever the machine does meanwhile touches every system alike.
  const plan = workloads.flatMap((w) =>
    active.filter((s) => s.kinds.includes(w.kind) && (!s.workloads || s.workloads.includes(w.id))).map((s) => [s, w] as const),
  );
  const results: RunResult[] = [];
  const t0 = performance.now();
  for (const [i, [system, w]] of plan.entries()) {
    const tag = `[${String(i + 1).padStart(String(plan.length).length)}/${plan.length}] ${w.id.padEnd(16)} ${system.name.padEnd(18)}`;
    const tty = process.stderr.isTTY;
    if (tty) process.stderr.write(`${tag} …`);
    const r = await runOne(system, w, options);
    results.push(r);
    const shown = !r.ok
      ? `FAILED ${r.error}`
      : r.medianUs !== undefined
        ? `${r.medianUs.toFixed(1)} µs median, ${r.p99Us!.toFixed(1)} µs p99`
        : w.kind === "rss"
          ? `growth ${((r.parent?.growthKiB ?? 0) / 1024).toFixed(1)} / ${((r.child?.growthKiB ?? 0) / 1024).toFixed(1)} MiB (parent / child)`
          : `${fmtRate(r.msgsPerSec!)} msgs/s${r.mbPerSec !== undefined ? `, ${r.mbPerSec.toFixed(0)} MB/s` : ""}`;
    process.stderr.write(`${tty ? "\r" : ""}${tag} ${shown} (${r.wallSeconds.toFixed(1)} s)\n`);
  }
  const busyAfter = await cpuBusy(options.quick ? 200 : 1000);
  if (busyAfter !== null && busyAfter > 0.25) {
    const w = `the machine was ${(busyAfter * 100).toFixed(0)}% busy right after the run: something else was running`;
    warnings.push(w);
    log(`warning: ${w}`);
  }

  const commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]);
  const changes = run(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "assembly"]);
  const report: Report = {
    date: date.toISOString(),
    machine,
    source: { commit: commit.ok ? commit.out : "unknown", dirty: changes.ok && changes.out !== "" },
    versions: Object.fromEntries(active.map((s) => [s.name, s.version ?? ""])),
    options: { quick: options.quick, only: options.only, reps: options.reps },
    loadBefore: busyBefore,
    loadAfter: busyAfter,
    warnings,
    totalSeconds: (performance.now() - t0) / 1000,
    systems: active.map((s) => ({ name: s.name, label: s.label })),
    skipped,
    workloads: workloads.map((w) => ({ id: w.id, title: w.title, kind: w.kind, size: options.quick && w.quickSize ? w.quickSize : w.size })),
    results,
    codec: codecRows,
    codecError,
    ratios: [...ratios(results, codecRows), ...(pool?.ratios ?? [])],
  };
  if (pool) Object.assign(report, { pool });
  printTables(report);
  if (pool) printPoolBench(pool);

  const outDir = options.out ?? (options.quick ? null : join(BENCH, "results"));
  if (outDir) {
    mkdirSync(outDir, { recursive: true });
    const json = `${JSON.stringify(report, null, 2)}\n`;
    const name = `${date.toISOString().slice(0, 10)}-${machine.host.replace(/[^\w.-]/g, "_")}.json`;
    writeFileSync(join(outDir, name), json);
    writeFileSync(join(outDir, "latest.json"), json);
    writeFileSync(join(outDir, "latest.svg"), renderSvg(report));
    log(`wrote ${join(outDir, name)}, latest.json, latest.svg`);
  } else log("(quick run: nothing saved; pass --out DIR to keep the results)");
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  const failed = results.filter((r) => !r.ok).length + (pool?.rows.filter((r) => r.error).length ?? 0);
  if (failed > 0) log(`${failed} run(s) failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

if (import.meta.main) await main();
