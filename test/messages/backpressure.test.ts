// Backpressure: a child process that stops reading (it sleeps before its first receive) while
// we send 256 MiB with awaited sends. Our memory must stay bounded (send() waits once 4 MiB are
// queued) and every byte must arrive, checked by a running SHA-256 on both sides, once the child
// reads again. Also measured: what un-awaited sends cost while the peer does not read (the
// figures are in docs/reliability.md).
import { afterAll, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "../../src/index.ts";
import { peakRssGrowth } from "../fixtures/memory.ts";
import { bun } from "../fixtures/run.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const MiB = 1 << 20;
const scratch = mkdtempSync(join(tmpdir(), "mpconn-backpressure-"));
const children: Array<{ kill(signal?: number | NodeJS.Signals): void }> = [];
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
});

// argv: sleep (ms), messages. Sleeps without touching the connection (so nothing is read), then
// receives that many messages, hashing their bytes, and answers { hash, bytes, messages }.
const SLEEPER = join(scratch, "sleeper.ts");
writeFileSync(
  SLEEPER,
  `import { parentConnection } from ${JSON.stringify(join(import.meta.dir, "..", "..", "src", "index.ts"))};
const conn = parentConnection();
const [sleepMs, count] = process.argv.slice(2).map(Number);
Bun.sleepSync(sleepMs);
const hasher = new Bun.CryptoHasher("sha256");
let bytes = 0;
for (let i = 0; i < count; i++) {
  const body = await conn.recvBytes();
  hasher.update(body);
  bytes += body.byteLength;
}
await conn.send({ hash: hasher.digest("hex"), bytes, messages: count });
conn.close();
`,
);

function sleeper(sleepMs: number, messages: number) {
  const spawned = spawn<{ hash: string; bytes: number; messages: number }>([bun, SLEEPER, String(sleepMs), String(messages)]);
  children.push(spawned.process);
  return spawned;
}

/** A piece of pseudo-random bytes; each send stamps its index into the first 4 (the buffer is reused). */
function piece(size: number): { bytes: Uint8Array; stamp(i: number): void } {
  const bytes = new Uint8Array(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  const view = new DataView(bytes.buffer);
  return { bytes, stamp: (i) => view.setUint32(0, i) };
}

for (const [size, count, sleepMs] of [
  [MiB, 256, 2000],
  [4096, 65536, 1000],
] as const) {
  const label = size === MiB ? "256 × 1 MiB" : "65,536 × 4 KiB";
  test(`a peer that stops reading: ${label} with awaited sendBytes — RSS growth < 300 MiB, every byte arrives`, async () => {
    const { conn, process: child } = sleeper(sleepMs, count);
    const { bytes, stamp } = piece(size);
    const hasher = new Bun.CryptoHasher("sha256");
    const started = performance.now();
    const { growth } = await peakRssGrowth(async () => {
      for (let i = 0; i < count; i++) {
        stamp(i);
        hasher.update(bytes);
        await conn.sendBytes(bytes);
      }
    });
    const sendSeconds = (performance.now() - started) / 1000;
    const report = await conn.recv();
    const totalSeconds = (performance.now() - started) / 1000;
    console.log(
      `backpressure.test: ${label} to a peer asleep for ${sleepMs / 1000} s: peak RSS growth ${(growth / MiB).toFixed(0)} MiB, ` +
        `sends done after ${sendSeconds.toFixed(2)} s, all hashed by the peer after ${totalSeconds.toFixed(2)} s`,
    );
    expect(report).toEqual({ hash: hasher.digest("hex"), bytes: size * count, messages: count });
    expect(growth).toBeLessThan(300 * MiB);
    // The sends really waited for the sleeping peer (256 MiB cannot fit in the buffers).
    expect(sendSeconds).toBeGreaterThan((sleepMs / 1000) * 0.5);
    expect(await child.exited).toBe(0);
    conn.close();
  }, 60_000);
}

test("un-awaited sends while the peer does not read: what they cost, and all of them arrive in order", async () => {
  const count = 100_000;
  const size = 1024;
  const { conn, process: child } = sleeper(1500, count);
  const { bytes, stamp } = piece(size);
  const hasher = new Bun.CryptoHasher("sha256");
  Bun.gc(true);
  const before = process.memoryUsage().rss;
  const started = performance.now();
  let last: Promise<void> = Promise.resolve();
  for (let i = 0; i < count; i++) {
    stamp(i);
    hasher.update(bytes);
    last = conn.sendBytes(bytes); // not awaited
  }
  const loopMs = performance.now() - started;
  Bun.gc(true);
  const queued = process.memoryUsage().rss - before;
  console.log(
    `backpressure.test: ${count.toLocaleString("en")} un-awaited ${size} B sends (${((count * size) / MiB).toFixed(0)} MiB) queued in ${loopMs.toFixed(0)} ms; ` +
      `RSS growth after GC ${(queued / MiB).toFixed(0)} MiB = ${(queued / (count * size)).toFixed(2)} B per queued byte`,
  );
  await last;
  const report = await conn.recv();
  expect(report).toEqual({ hash: hasher.digest("hex"), bytes: size * count, messages: count });
  // Generous: the bytes themselves plus per-send bookkeeping (measured ~1.4×).
  expect(queued).toBeLessThan(4 * count * size + 64 * MiB);
  expect(await child.exited).toBe(0);
  conn.close();
}, 60_000);
