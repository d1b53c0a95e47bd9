// Where the lane starts to pay: streams of messages of one size, every message through the
// lane (bench/systems/lane.ts, variant "lane") against mpconn's socket path (mpconn.ts) and
// the raw Bun socket (raw.ts), with recvBytes and with recvBytesInto. About 64 MiB per
// repetition, median of 5. Run it alone:  bun bench/lane-threshold.ts
import { join } from "node:path";

const KiB = 1024;
const sizes = [16, 32, 64, 128, 256, 512, 1024, 4096].map((k) => k * KiB);
const systems: Array<[string, string]> = [
  ["lane.ts", "lane"],
  ["mpconn.ts", "bytes"],
  ["raw.ts", "raw"],
];

async function measure(file: string, variant: string, workload: string, size: number): Promise<number> {
  const count = Math.max(16, Math.round((64 * 1024 * KiB) / size));
  const spec = { workload, size, count, warmup: Math.ceil(count / 4), reps: 5, variant };
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "systems", file), "parent", JSON.stringify(spec)], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`${file} ${workload} ${size}: failed`);
  const line = out.split("\n").find((l) => l.startsWith("@@result "))!;
  const reps = (JSON.parse(line.slice(9)) as { reps: number[] }).reps.sort((a, b) => a - b);
  return (count * size) / reps[reps.length >> 1]! / 1e6;
}

for (const workload of ["stream", "into"]) {
  console.log(`\n${workload === "into" ? "recvBytesInto" : "recvBytes"}, MB/s:   lane   mpconn socket   raw Bun   lane/mpconn`);
  for (const size of sizes) {
    const values: number[] = [];
    for (const [file, variant] of systems) values.push(await measure(file, variant, workload, size));
    const [l, m, r] = values as [number, number, number];
    console.log(`${String(size / KiB).padStart(5)} KiB ${l.toFixed(0).padStart(14)} ${m.toFixed(0).padStart(15)} ${r.toFixed(0).padStart(9)} ${(l / m).toFixed(2).padStart(12)}×`);
  }
}
