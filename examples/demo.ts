// `npm run demo`: spawn a worker, stream messages of a few sizes to it as bytes and as
// objects, and print the rates. Takes about ten seconds.
import { spawn } from "../src/index.ts";

const { process: worker, conn } = spawn([process.execPath, new URL("./demo-worker.ts", import.meta.url).pathname]);

const MiB = 1 << 20;
const sizes: Array<[string, number, number]> = [
  ["64 B", 64, 2_000_000],
  ["4 KiB", 4096, 300_000],
  ["64 KiB", 65536, 20_000],
  ["1 MiB", MiB, 1_000],
];

function report(label: string, count: number, bytes: number, ms: number): void {
  const perSecond = (count / ms) * 1000;
  const mbs = (bytes / MiB / ms) * 1000;
  const rate = bytes > 0 ? `${mbs.toFixed(0).padStart(6)} MB/s` : "";
  console.log(`${label.padEnd(28)} ${count.toLocaleString().padStart(10)} msgs  ${fmt(perSecond).padStart(9)} msgs/s  ${rate}`);
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0);
}

console.log(`mpconn demo: parent ${process.pid} → worker ${worker.pid} over a socketpair (Bun ${Bun.version})\n`);
for (const [label, size, count] of sizes) {
  const body = new Uint8Array(size).fill(7);
  await conn.send({ kind: "bytes", count });
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await conn.sendBytes(body);
  const answer = (await conn.recv()) as { received: number; bytes: number };
  const ms = performance.now() - t0;
  if (answer.received !== count || answer.bytes !== size * count) throw new Error(`worker saw ${answer.received} messages`);
  report(`sendBytes ${label}`, count, size * count, ms);
}

const count = 500_000;
const item = { id: 0, name: "sensor-17", values: Array.from({ length: 10 }, (_, i) => i * 1.5) };
await conn.send({ kind: "objects", count });
const t0 = performance.now();
for (let i = 0; i < count; i++) {
  item.id = i;
  await conn.send(item);
}
const answer = (await conn.recv()) as { received: number };
if (answer.received !== count) throw new Error(`worker saw ${answer.received} objects`);
report("send {id, name, values[10]}", count, 0, performance.now() - t0);

const rounds = 20_000;
const ping = new Uint8Array(64);
await conn.send({ kind: "echo", count: rounds });
const times: number[] = [];
for (let i = 0; i < rounds; i++) {
  const t = performance.now();
  await conn.sendBytes(ping);
  await conn.recvBytes();
  times.push((performance.now() - t) * 1000);
}
times.sort((a, b) => a - b);
console.log(`${"round trip 64 B".padEnd(28)} ${rounds.toLocaleString().padStart(10)} msgs  median ${times[rounds >> 1]!.toFixed(1)} µs, p99 ${times[Math.floor(rounds * 0.99)]!.toFixed(1)} µs`);

await conn.send({ kind: "stop", count: 0 });
await worker.exited;
conn.close();
console.log(`\nworker exited with code ${worker.exitCode}.`);
