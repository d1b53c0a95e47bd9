// Summarise a V8/JSC .cpuprofile (from `bun --cpu-prof`): the functions with the most self
// time, and the most total (inclusive) time.
//   bun bench/profile.ts <file.cpuprofile> [--top N]
// To profile one system's parent and child, e.g. mpconn's 64 B stream:
//   BUN_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof" \
//     bun bench/systems/mpconn.ts parent '{"workload":"stream","size":64,"count":1000000,"warmup":100000,"reps":3}'
import { readFileSync } from "node:fs";
import { basename } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileLine {
  name: string;
  selfMs: number;
  selfPct: number;
  totalMs: number;
  totalPct: number;
}

export function summarize(profile: Profile): { totalMs: number; lines: ProfileLine[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode): string => {
    const f = n.callFrame;
    const where = f.url ? `${basename(f.url)}:${f.lineNumber + 1}` : "";
    return `${f.functionName || "(anonymous)"}${where ? ` ${where}` : ""}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
    all += dt;
    const node = byId.get(id);
    if (!node) return;
    const name = label(node);
    self.set(name, (self.get(name) ?? 0) + dt);
    // Inclusive: every distinct function on the stack, once.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at)!;
      const l = label(n);
      if (seen.has(l)) continue;
      seen.add(l);
      total.set(l, (total.get(l) ?? 0) + dt);
    }
  });
  const lines = [...self.keys(), ...total.keys()]
    .filter((k, i, a) => a.indexOf(k) === i)
    .map((name) => ({
      name,
      selfMs: self.get(name) ?? 0,
      selfPct: ((self.get(name) ?? 0) / all) * 100,
      totalMs: total.get(name) ?? 0,
      totalPct: ((total.get(name) ?? 0) / all) * 100,
    }));
  return { totalMs: all, lines };
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: bun bench/profile.ts <file.cpuprofile> [--top N]");
    process.exit(2);
  }
  const topAt = process.argv.indexOf("--top");
  const top = topAt > 0 ? Number(process.argv[topAt + 1]) : 15;
  const { totalMs, lines } = summarize(JSON.parse(readFileSync(file, "utf8")) as Profile);
  const show = (title: string, sorted: ProfileLine[], key: "selfPct" | "totalPct"): void => {
    console.log(`\n${title}`);
    for (const l of sorted.slice(0, top)) console.log(`  ${l[key].toFixed(1).padStart(5)}%  ${l.name}`);
  };
  console.log(`${basename(file)}: ${totalMs.toFixed(0)} ms sampled`);
  show("self time", [...lines].sort((a, b) => b.selfMs - a.selfMs), "selfPct");
  show("total time", [...lines].sort((a, b) => b.totalMs - a.totalMs), "totalPct");
}
