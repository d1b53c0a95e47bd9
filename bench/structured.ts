// Micro-benchmark: the structured serializer (our codec) against bun:jsc's serialize and
// deserialize and against JSON (mpconn's json serializer: UTF-8 bytes), in one process,
// interleaved, medians of several samples. ns per message, encode and decode.
//   bun bench/structured.ts [--quick] [--json]
// JSON does not keep Maps, Sets or typed arrays: its rows for those cases time a lossy copy.
import { deserialize, serialize } from "bun:jsc";
import { json } from "../src/serializers/json.ts";
import { structured } from "../src/serializers/structured.ts";
import type { Serializer } from "../src/serializers/serializer.ts";

export interface StructuredBenchRow {
  case: string;
  codec: string;
  encodeNs: number;
  decodeNs: number;
  bytes: number;
  /** bun:jsc's encode+decode time divided by this codec's: above 1 means faster than bun:jsc. */
  vsJsc: number;
}

const codecs: Record<string, Serializer> = {
  structured,
  "bun:jsc": { dumps: (v) => new Uint8Array(serialize(v)), loads: (b) => deserialize(b) },
  json,
};

function item(id: number) {
  return { id, name: `item-${id}`, values: Array.from({ length: 10 }, (_, k) => id * 0.5 + k / 3 + 0.125) };
}

/** Each case is a pool of values of one shape, used in turn (so no cache sees one value only). */
function cases(): [string, unknown[]][] {
  const mapSet = (seed: number) => ({
    byId: new Map(Array.from({ length: 100 }, (_, i) => [i + seed, { tags: new Set([`t${i % 7}`, `t${i % 5}`, "all"]), at: new Date(1.7e12 + i) }])),
    seen: new Set(Array.from({ length: 100 }, (_, i) => i * 3 + seed)),
    names: new Map(Array.from({ length: 50 }, (_, i) => [`key-${i}`, `value number ${i + seed}`])),
  });
  const words = "the quick brown fox jumps over the lazy dog while structured clone copies every string".split(" ");
  const strings = (seed: number) => ({
    title: `A string-heavy message, number ${seed}`,
    body: Array.from({ length: 300 }, (_, i) => words[(i + seed) % words.length]).join(" "),
    tags: Array.from({ length: 50 }, (_, i) => `${words[i % words.length]}-${i + seed}`),
    i18n: { ja: "構造化クローンは文字列をそのまま運びます。".repeat(4) + seed, fr: "Clonage structuré : déjà vu, naïve café.".repeat(4) + seed, emoji: "ok 👍 🎉".repeat(8) + seed },
    lines: Array.from({ length: 40 }, (_, i) => `line ${i}: ${words.slice(0, ((i + seed) % 10) + 3).join(" ")}`),
  });
  return [
    ["small object {id, name, values[10]}", Array.from({ length: 10000 }, (_, i) => item(i))],
    ["array of 1000 small objects", [Array.from({ length: 1000 }, (_, i) => item(i))]],
    ["Float64Array 1 MiB", [new Float64Array(131072).map((_, i) => i / 7)]],
    ["Map/Set-heavy object", Array.from({ length: 16 }, (_, i) => mapSet(i))],
    ["string-heavy object", Array.from({ length: 16 }, (_, i) => strings(i))],
  ];
}

let sink = 0;

/** Median ns per call of `fn(i)` (i counting up) over `samples` runs of about `ms` milliseconds. */
function measure(fn: (i: number) => void, samples: number, ms: number): number {
  let n = 1;
  let i = 0;
  // Warm up (and find how many calls make `ms`).
  for (;;) {
    const t = Bun.nanoseconds();
    for (let k = 0; k < n; k++) fn(i++);
    const dt = Bun.nanoseconds() - t;
    if (dt > ms * 1e6) {
      n = Math.max(1, Math.round((n * ms * 1e6) / dt));
      break;
    }
    n *= 2;
  }
  const times: number[] = [];
  for (let s = 0; s < samples; s++) {
    Bun.gc(true);
    const t = Bun.nanoseconds();
    for (let k = 0; k < n; k++) fn(i++);
    times.push((Bun.nanoseconds() - t) / n);
  }
  return times.sort((a, b) => a - b)[times.length >> 1]!;
}

export function runStructuredBench(quick = false): StructuredBenchRow[] {
  const samples = quick ? 3 : 7;
  const ms = quick ? 30 : 100;
  const rows: StructuredBenchRow[] = [];
  for (const [name, pool] of cases()) {
    const names = Object.keys(codecs);
    const results = names.map((c) => {
      const s = codecs[c]!;
      const encoded = pool.map((v) => s.dumps(v));
      const m = pool.length;
      const encodeNs = measure((i) => { sink += s.dumps(pool[i % m]).length; }, samples, ms);
      const decodeNs = measure((i) => { if (s.loads(encoded[i % m]!) === null) sink++; }, samples, ms);
      return { encodeNs, decodeNs, bytes: encoded[0]!.length };
    });
    const jsc = results[1]!.encodeNs + results[1]!.decodeNs;
    names.forEach((c, k) => rows.push({ case: name, codec: c, ...results[k]!, vsJsc: jsc / (results[k]!.encodeNs + results[k]!.decodeNs) }));
  }
  return rows;
}

function ns(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} ms`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)} µs`;
  return `${Math.round(x)} ns`;
}

export function renderStructuredTable(rows: StructuredBenchRow[]): string {
  const head = ["case", "codec", "encode", "decode", "enc+dec", "bytes", "× bun:jsc speed"];
  const body = rows.map((r) => [r.case, r.codec, ns(r.encodeNs), ns(r.decodeNs), ns(r.encodeNs + r.decodeNs), String(r.bytes), r.vsJsc.toFixed(2)]);
  const lines = [head, head.map(() => "---"), ...body].map((cells) => `| ${cells.join(" | ")} |`);
  return lines.join("\n");
}

if (import.meta.main) {
  const rows = runStructuredBench(process.argv.includes("--quick"));
  console.log(process.argv.includes("--json") ? JSON.stringify(rows, null, 2) : renderStructuredTable(rows));
  if (sink === 0.5) console.log(sink);
}
