// Memory for huge messages inside Connection (docs/large-messages.md, "What recvBytes returns";
// docs/internals.md, "Warm memory for queued sends"): spill memory goes back to the kernel at
// once when let go, and is let go when the lane starts carrying large messages; received huge
// messages, on the socket and through the lane, reuse the memory of results the user dropped and
// never change under a user who keeps them; a worker thread, which has no pool, still gets them
// right. Sizes scaled down from the 256 MiB benchmark to 80 MiB.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { Pipe } from "../../src/processes/pipe.ts";
import { resultPool } from "../../src/lane/pool.ts";
import { giveSpill, shedSpill, spillKept, takeSpill } from "../../src/messages/spill.ts";
import "../../src/processes/fdpass/index.ts";
import { hash, laneOf, MiB } from "../fixtures/lane.ts";

setDefaultTimeout(60_000);

const SIZE = 80 * MiB;
const rssMiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;

/** `size` bytes that differ page by page and per `seed`. */
function message(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 4096) bytes[at] = (seed * 7 + at / 4096) & 0xff;
  bytes[size - 1] = seed;
  return bytes;
}

describe("spill memory", () => {
  test("let go, its pages go back to the kernel at once, without waiting for the collector", () => {
    shedSpill();
    const buffer = takeSpill(96 * MiB);
    buffer.fill(1);
    giveSpill(buffer);
    expect(spillKept()).toBeGreaterThanOrEqual(96 * MiB);
    const resident = rssMiB();
    shedSpill();
    expect(spillKept()).toBe(0);
    expect(resident - rssMiB()).toBeGreaterThan(80);
    // The buffer object is still valid memory (nothing that kept a view of it could fault): zeros.
    expect(buffer[12345]).toBe(0);
  });

  test("is let go when a connection's lane carries its first large message", async () => {
    const [a, b] = Pipe();
    const sent = Array.from({ length: 16 }, () => a.sendBytes(message(MiB, 1)));
    for (let i = 0; i < 16; i++) await b.recvBytes();
    await Promise.all(sent);
    expect(spillKept()).toBeGreaterThan(0);
    const [c, d] = Pipe(true, { sharedMemory: true });
    expect(laneOf(c)?.active).toBe(true);
    const small = c.sendBytes(message(1000, 2)); // the socket's: nothing changes
    expect(spillKept()).toBeGreaterThan(0);
    const large = c.sendBytes(message(MiB, 3));
    expect(spillKept()).toBe(0);
    expect((await d.recvBytes()).byteLength).toBe(1000);
    expect(hash(await d.recvBytes())).toBe(hash(message(MiB, 3)));
    await Promise.all([small, large]);
    for (const conn of [a, b, c, d]) conn.close();
  });
});

for (const [name, options] of [
  ["the socket", {}],
  ["the lane", { sharedMemory: true }],
] as const) {
  describe(`huge messages through ${name}`, () => {
    test("a kept result never changes while later results reuse dropped ones' memory; the pool stays at a few slots", async () => {
      const pool = resultPool()!;
      const [a, b] = Pipe(true, options);
      const receive = async (seed: number): Promise<Uint8Array> => {
        const [, got] = await Promise.all([a.sendBytes(message(SIZE, seed)), b.recvBytes()]);
        return got;
      };
      const kept = await receive(0);
      const digest = hash(kept);
      expect(digest).toBe(hash(message(SIZE, 0)));
      const before = pool.mapped;
      for (let seed = 1; seed <= 5; seed++) {
        const got = await receive(seed);
        expect(got.byteLength).toBe(SIZE);
        expect(got[SIZE - 1]).toBe(seed);
        expect(got[4096]).toBe((seed * 7 + 1) & 0xff);
      }
      expect(hash(kept)).toBe(digest);
      // The kept result's slot, and one or two reused for the dropped ones: not one per message.
      expect(pool.mapped - before).toBeLessThanOrEqual(3);
      a.close();
      b.close();
    });
  });
}

test("a worker thread, without the pool, receives huge messages exactly on the socket and through the lane", async () => {
  const worker = new Worker(new URL("../fixtures/no-pool-worker.ts", import.meta.url));
  const report = await new Promise<{ pool: boolean; socket: boolean[]; lane: boolean[] }>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  await worker.terminate();
  expect(report).toEqual({ pool: false, socket: [true, true], lane: [true, true] });
});
