// The benchmark's report: its shape (what latest.json holds), the terminal tables and the
// hand-written SVG chart.

export type Kind = "pingpong" | "stream" | "objstream" | "objpingpong" | "rss" | "burst" | "into";

export interface ProcessMemory {
  /** Highest RSS of the process over the whole run (VmHWM), KiB. */
  peakKiB: number;
  /** RSS when the measured phases began (after warm-up), KiB. */
  baseKiB: number;
  /** Highest RSS during the measured phases minus baseKiB, KiB. */
  growthKiB: number;
}

export interface RunResult {
  system: string;
  workload: string;
  spec: { kind: Kind; size: number; count: number; warmup: number; reps: number };
  ok: boolean;
  error?: string;
  wallSeconds: number;
  /** Per repetition: seconds (streams) or round-trip statistics in µs (ping-pong). */
  reps?: Array<number | { median: number; p99: number }>;
  parent?: ProcessMemory;
  child?: ProcessMemory;
  // Medians over the repetitions:
  seconds?: number;
  msgsPerSec?: number;
  mbPerSec?: number;
  medianUs?: number;
  p99Us?: number;
  /** Slowest repetition / fastest − 1: how much the repetitions disagreed. */
  spread?: number;
}

export interface Ratio {
  label: string;
  value: number | null;
  target: string;
  /** null: could not be computed in this run (a system or workload missing). */
  met: boolean | null;
  detail?: string;
}

export interface Report {
  date: string;
  machine: { cpu: string; cores: number; host: string; bun: string; platform: string };
  /** The mpconn source measured: git commit, and whether src/ or assembly/ had uncommitted changes. */
  source: { commit: string; dirty: boolean };
  versions: Record<string, string>;
  options: { quick: boolean; only: string[] | null; reps: number | null };
  /** Fraction of the CPUs busy just before and just after the run (other processes). */
  loadBefore: number | null;
  loadAfter: number | null;
  warnings: string[];
  totalSeconds: number;
  systems: Array<{ name: string; label: string }>;
  skipped: Record<string, string>;
  workloads: Array<{ id: string; title: string; kind: Kind; size: number }>;
  results: RunResult[];
  codec: Array<{ op: string; size: number; wasmNs: number; tsNs: number; ratio: number }> | null;
  codecError?: string;
  ratios: Ratio[];
}

// ---- formatting -------------------------------------------------------------------------

export function fmtRate(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(0);
}

export function fmtSize(bytes: number): string {
  if (bytes >= 1 << 20) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1024) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

const fmtMB = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const fmtUs = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const mib = (kib: number | undefined): string => (kib === undefined ? "?" : (kib / 1024).toFixed(0));

// ---- terminal ---------------------------------------------------------------------------

interface Column {
  head: string;
  cell: (system: string) => string;
}

function table(report: Report, title: string, columns: Column[]): string {
  // Columns no system has a value in are left out.
  const cells = report.systems.map((s) => columns.map((c) => c.cell(s.name)));
  const kept = columns.map((_, i) => i).filter((i) => cells.some((row) => row[i] !== "·"));
  const head = ["system", ...kept.map((i) => columns[i]!.head)];
  const rows = report.systems.map((s, r) => [s.name, ...kept.map((i) => cells[r]![i]!)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]): string => row.map((c, i) => (i === 0 ? c.padEnd(widths[0]!) : c.padStart(widths[i]!))).join("  ");
  const lines = [fmt(head), ...rows.map(fmt)];
  const rule = "─".repeat(Math.max(...lines.map((l) => l.length)));
  return [title, rule, lines[0], rule, ...lines.slice(1), rule].join("\n");
}

export function printTables(report: Report): void {
  const find = (system: string, workload: string): RunResult | undefined =>
    report.results.find((r) => r.system === system && r.workload === workload);
  const title = (id: string): string => report.workloads.find((w) => w.id === id)?.title ?? id;
  const has = (id: string): boolean => report.workloads.some((w) => w.id === id);
  const value = (workload: string, pick: (r: RunResult) => string | undefined) => (system: string): string => {
    const r = find(system, workload);
    if (!r) return "·";
    if (!r.ok) return "ERR";
    return pick(r) ?? "·";
  };
  const size = (id: string): string => fmtSize(report.workloads.find((w) => w.id === id)?.size ?? 0);

  const throughput: Column[] = [];
  for (const id of ["stream-64", "stream-4k", "stream-1m"]) {
    if (!has(id)) continue;
    throughput.push({ head: `${size(id)} msg/s`, cell: value(id, (r) => fmtRate(r.msgsPerSec!)) });
    throughput.push({ head: `${size(id)} MB/s`, cell: value(id, (r) => fmtMB(r.mbPerSec!)) });
  }
  if (has("stream-256m")) throughput.push({ head: `1×${size("stream-256m")} MB/s`, cell: value("stream-256m", (r) => fmtMB(r.mbPerSec!)) });
  if (has("objects-stream")) throughput.push({ head: "objects msg/s", cell: value("objects-stream", (r) => fmtRate(r.msgsPerSec!)) });

  // Large messages (docs/large-messages.md).
  const large: Column[] = [];
  for (const [id, head] of [
    ["burst-1m", "256×1 MiB burst MB/s"],
    ["stream-16m", "16 MiB MB/s"],
    ["into-16m", "16 MiB into MB/s"],
    ["stream-256m", "1×256 MiB MB/s"],
  ] as const) {
    if (has(id)) large.push({ head, cell: value(id, (r) => fmtMB(r.mbPerSec!)) });
  }
  if (has("stream-256m")) large.push({ head: "peak MiB 256 MiB", cell: value("stream-256m", (r) => `${mib(r.parent?.peakKiB)}/${mib(r.child?.peakKiB)}`) });

  const latencyMemory: Column[] = [];
  if (has("pingpong-64")) {
    latencyMemory.push({ head: "64 B rtt µs", cell: value("pingpong-64", (r) => fmtUs(r.medianUs!)) });
    latencyMemory.push({ head: "p99", cell: value("pingpong-64", (r) => fmtUs(r.p99Us!)) });
  }
  if (has("objects-pingpong")) {
    latencyMemory.push({ head: "obj rtt µs", cell: value("objects-pingpong", (r) => fmtUs(r.medianUs!)) });
    latencyMemory.push({ head: "p99", cell: value("objects-pingpong", (r) => fmtUs(r.p99Us!)) });
  }
  const peak = (r: RunResult): string => `${mib(r.parent?.peakKiB)}/${mib(r.child?.peakKiB)}`;
  for (const id of ["stream-64", "stream-256m", "objects-stream"]) {
    if (has(id)) latencyMemory.push({ head: `peak MiB ${id === "objects-stream" ? "objects" : size(id)}`, cell: value(id, peak) });
  }
  if (has("rss-1m-64")) {
    latencyMemory.push({
      head: "RSS growth MiB",
      cell: value("rss-1m-64", (r) => `${mib(r.parent?.growthKiB)}/${mib(r.child?.growthKiB)}`),
    });
  }

  const m = report.machine;
  const out: string[] = [];
  const source = `mpconn ${report.source.commit}${report.source.dirty ? " + uncommitted changes in src/" : ""}`;
  out.push(`\nmpconn bench: ${m.cpu}, ${m.cores} cores, Bun ${m.bun}, ${report.date.slice(0, 16).replace("T", " ")} UTC, ${source}`);
  out.push(`medians of ${describeReps(report)}; memory columns are parent/child`);
  if (throughput.length > 0) out.push("", table(report, "Throughput (one way, parent → child; higher is better)", throughput));
  if (large.length > 0) out.push("", table(report, "Large messages (one way, parent → child; higher is better)", large));
  if (latencyMemory.length > 0) out.push("", table(report, "Round trips (lower is better) and memory", latencyMemory));
  const failures = report.results.filter((r) => !r.ok);
  for (const f of failures) out.push(`ERR ${f.system} ${f.workload}: ${f.error}`);
  for (const [name, why] of Object.entries(report.skipped)) out.push(`skipped ${name}: ${why}`);
  if (report.codec) {
    out.push("", "Codec (bench/codec.ts, ns per frame)");
    for (const r of report.codec) {
      out.push(`  ${r.op.padEnd(7)} ${fmtSize(r.size).padStart(6)}   wasm ${r.wasmNs.toFixed(1).padStart(7)}   TS ${r.tsNs.toFixed(1).padStart(7)}   wasm/TS ${r.ratio.toFixed(2)}`);
    }
  } else if (report.codecError) out.push("", `codec: ${report.codecError}`);
  out.push("", "Bar ratios (this run)");
  const width = Math.max(...report.ratios.map((r) => r.label.length));
  for (const r of report.ratios) {
    const v = r.value === null ? "n/a" : r.value.toFixed(r.value >= 10 ? 1 : 2);
    const mark = r.met === null ? "n/a (not measured)" : r.met ? "met" : "NOT MET";
    out.push(`  ${r.label.padEnd(width)}  ${v.padStart(7)}  target ${r.target.padEnd(6)}  ${mark}${r.detail ? `  (${r.detail})` : ""}`);
  }
  for (const w of report.warnings) out.push(`warning: ${w}`);
  console.log(out.join("\n"));
}

function describeReps(report: Report): string {
  const reps = [...new Set(report.results.filter((r) => r.spec.kind !== "rss").map((r) => r.spec.reps))];
  return reps.length === 0 ? "—" : `${reps.join("/")} runs each (the RSS check runs once)`;
}

// ---- SVG --------------------------------------------------------------------------------

const PALETTE: Record<string, string> = {
  "mpconn-bytes": "#1f5fbf",
  "mpconn-structured": "#4f8fe8",
  "mpconn-json": "#7fb2f0",
  "mpconn-pickle": "#a9cdf7",
  "raw-bun": "#2e9e5b",
  c: "#7a7a7a",
  "bun-ipc-advanced": "#e07b18",
  "bun-ipc-json": "#f2b25c",
  "node-ipc": "#8c4fbf",
  python: "#c7b21c",
  "python-shm": "#e5d86a",
  "lane-raw": "#0b2f6b",
};
const FALLBACK = ["#d62728", "#17becf", "#bcbd22", "#e377c2"];

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

interface Group {
  id: string;
  label: string;
  unit: string;
  bars: Array<{ system: string; value: number }>;
}

export function renderSvg(report: Report): string {
  const metric: Array<[string, "msgsPerSec" | "mbPerSec", string]> = [
    ["pingpong-64", "msgsPerSec", "round trips/s"],
    ["stream-64", "msgsPerSec", "msgs/s"],
    ["stream-4k", "mbPerSec", "MB/s"],
    ["stream-1m", "mbPerSec", "MB/s"],
    ["stream-256m", "mbPerSec", "MB/s"],
    ["burst-1m", "mbPerSec", "MB/s"],
    ["stream-16m", "mbPerSec", "MB/s"],
    ["into-16m", "mbPerSec", "MB/s"],
    ["objects-stream", "msgsPerSec", "msgs/s"],
    ["objects-pingpong", "msgsPerSec", "round trips/s"],
  ];
  const groups: Group[] = [];
  for (const [id, key, unit] of metric) {
    const w = report.workloads.find((x) => x.id === id);
    if (!w) continue;
    const bars = report.systems
      .map((s) => ({ system: s.name, value: report.results.find((r) => r.system === s.name && r.workload === id && r.ok)?.[key] ?? 0 }))
      .filter((b) => b.value > 0);
    if (bars.length > 0) groups.push({ id, label: id === "stream-256m" ? `1 × ${fmtSize(w.size)}` : w.title, unit, bars });
  }
  const systems = report.systems.map((s) => s.name).filter((n) => groups.some((g) => g.bars.some((b) => b.system === n)));
  const color = (name: string): string => PALETTE[name] ?? FALLBACK[systems.indexOf(name) % FALLBACK.length]!;

  const W = 1200;
  const legendRows = Math.ceil(systems.length / 5);
  // Room between the legend and the plot for the value labels of the tallest bars.
  const top = 56 + legendRows * 20 + 40;
  const H = top + 380 + 96 + Math.min(2, report.warnings.length) * 14;
  const left = 64;
  const right = 16;
  const plotH = 380;
  const bottom = top + plotH;
  const plotW = W - left - right;
  const values = groups.flatMap((g) => g.bars.map((b) => b.value));
  const lo = Math.floor(Math.log10(Math.max(1e-3, Math.min(...values))));
  // Headroom above the tallest bar for its (vertical) value label.
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values)) + 0.15));
  const y = (v: number): number => bottom - ((Math.log10(v) - lo) / (hi - lo)) * plotH;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(`<text x="${left}" y="26" font-size="18" font-weight="600">mpconn vs IPC, CPython and raw sockets: parent ↔ child message passing</text>`);
  parts.push(`<text x="${left}" y="44" fill="#555">higher is better · log scale · each group in its own unit (below the group)</text>`);
  systems.forEach((name, i) => {
    const x = left + (i % 5) * 220;
    const ly = 58 + Math.floor(i / 5) * 20;
    parts.push(`<rect x="${x}" y="${ly}" width="12" height="12" fill="${color(name)}"/>`);
    const label = report.systems.find((s) => s.name === name)?.label ?? name;
    parts.push(`<text x="${x + 17}" y="${ly + 10.5}">${esc(label)}</text>`);
  });
  for (let d = lo; d <= hi; d++) {
    const gy = y(10 ** d);
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${gy.toFixed(1)}" y2="${gy.toFixed(1)}" stroke="${d === lo ? "#333" : "#ddd"}"/>`);
    parts.push(`<text x="${left - 6}" y="${(gy + 4).toFixed(1)}" text-anchor="end" fill="#444">${decade(d)}</text>`);
    if (d < hi) {
      for (const k of [2, 5]) {
        const my = y(k * 10 ** d);
        parts.push(`<line x1="${left}" x2="${W - right}" y1="${my.toFixed(1)}" y2="${my.toFixed(1)}" stroke="#f1f1f1"/>`);
      }
    }
  }
  const gw = plotW / Math.max(1, groups.length);
  groups.forEach((g, gi) => {
    const x0 = left + gi * gw;
    const inner = gw - 24;
    const bw = Math.min(26, inner / g.bars.length);
    const start = x0 + (gw - bw * g.bars.length) / 2;
    g.bars.forEach((b, bi) => {
      const bx = start + bi * bw;
      const by = y(b.value);
      parts.push(
        `<rect x="${(bx + 1).toFixed(1)}" y="${by.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(bottom - by).toFixed(1)}" fill="${color(b.system)}"><title>${esc(`${b.system}: ${fmtRate(b.value)} ${g.unit}`)}</title></rect>`,
      );
      const tx = bx + bw / 2 + 3.5;
      parts.push(`<text transform="translate(${tx.toFixed(1)},${(by - 4).toFixed(1)}) rotate(-90)" font-size="10" fill="#222">${fmtRate(b.value)}</text>`);
    });
    if (gi > 0) parts.push(`<line x1="${x0.toFixed(1)}" x2="${x0.toFixed(1)}" y1="${top}" y2="${bottom + 34}" stroke="#eee"/>`);
    parts.push(`<text x="${(x0 + gw / 2).toFixed(1)}" y="${bottom + 17}" text-anchor="middle" font-weight="600">${esc(g.label)}</text>`);
    parts.push(`<text x="${(x0 + gw / 2).toFixed(1)}" y="${bottom + 31}" text-anchor="middle" fill="#555">${esc(g.unit)}</text>`);
  });
  const m = report.machine;
  const caption = `${m.cpu}, ${m.cores} cores · Bun ${m.bun} · ${report.date.slice(0, 10)} · ${m.platform} · mpconn ${report.source.commit}${report.source.dirty ? "+" : ""} · medians of ${describeReps(report)}`;
  parts.push(`<text x="${left}" y="${bottom + 60}" fill="#333">${esc(caption)}</text>`);
  const versions = [...new Set(Object.values(report.versions).filter((v) => v && !v.startsWith("bun ")))].join(" · ");
  parts.push(`<text x="${left}" y="${bottom + 76}" fill="#777" font-size="11">${esc(versions)}</text>`);
  report.warnings.slice(0, 2).forEach((w, i) => {
    const text = `⚠ ${w}`.slice(0, 190);
    parts.push(`<text x="${left}" y="${bottom + 92 + i * 14}" fill="#b35c00" font-size="11">${esc(text)}</text>`);
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

function decade(d: number): string {
  const names: Record<number, string> = { 0: "1", 1: "10", 2: "100", 3: "1k", 4: "10k", 5: "100k", 6: "1M", 7: "10M", 8: "100M", 9: "1G" };
  return names[d] ?? `1e${d}`;
}
