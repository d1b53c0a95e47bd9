// The pool of warm slots behind recvBytes results of any size from 1 MiB (src/lane/pool.ts,
// docs/large-messages.md "What recvBytes returns"): a huge result reuses the slot of one the user
// dropped instead of making a second one resident beside it; results the user keeps never
// change and cost a collection per doubling, not one per message; free slots are unmapped after
// a quiet spell. Sizes are scaled down from the 256 MiB benchmark to 80 MiB (still a "large"
// slot, worth a full collection).
import { ptr } from "bun:ffi";
import { afterEach, describe, expect, spyOn, test, setDefaultTimeout } from "bun:test";
import { readFileSync } from "node:fs";
import { messageBuffer } from "../../src/lane/buffers.ts";
import { resultPool } from "../../src/lane/pool.ts";
import { hash, MiB } from "../fixtures/lane.ts";

setDefaultTimeout(60_000);

const SIZE = 80 * MiB;
const pool = resultPool()!;
const rssMiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;

/** Receive-and-drop, as a loop over `await conn.recvBytes()` does: the result is gone when this returns. */
function takeAndDrop(fill: number): number {
  const buffer = messageBuffer(SIZE);
  buffer.fill(fill);
  return ptr(buffer);
}

/** Until the pool unmapped every free slot (its quiet spell is 2 s; a take re-arms it). */
async function untilIdleTrimmed(): Promise<void> {
  for (let i = 0; i < 100 && pool.bytes(true) > 0; i++) await Bun.sleep(100);
}

afterEach(() => {
  Bun.gc(true);
});

describe("resultPool for huge results", () => {
  test("results over 64 MiB come from the pool", () => {
    const buffer = messageBuffer(SIZE);
    expect(buffer.byteLength).toBe(SIZE);
    // Its memory is a slot in use (other files' garbage, collected meanwhile, may change the totals).
    expect(pool.inUse(ptr(buffer))).toBe(true);
    buffer.fill(3);
    expect(buffer[SIZE - 1]).toBe(3);
  });

  test("a dropped huge result's slot is reused for the next one: memory stays at one result, not one per message", async () => {
    await untilIdleTrimmed();
    takeAndDrop(1);
    const start = rssMiB();
    const addresses = new Set<number>();
    for (let i = 0; i < 8; i++) addresses.add(takeAndDrop(i));
    // Without collections before mapping, each of these would be a fresh slot until the collector
    // happened to run (the pool's memory is not counted as the collector's own).
    expect(pool.mapped).toBeLessThanOrEqual(2);
    expect(addresses.size).toBeLessThanOrEqual(2);
    expect(rssMiB() - start).toBeLessThan(SIZE / MiB + 16);
  });

  test("a result dropped just now is found by a young-generation collection: no full collection", () => {
    takeAndDrop(1);
    const full = spyOn(Bun, "gc");
    try {
      const addresses = new Set<number>();
      for (let i = 0; i < 4; i++) addresses.add(takeAndDrop(i));
      expect(addresses.size).toBeLessThanOrEqual(2);
      // Bun.gc(false) would only schedule a collection: the pool would go on to Bun.gc(true).
      expect(full).not.toHaveBeenCalled();
    } finally {
      full.mockRestore();
    }
  });

  test("results kept by the user never change, while dropped ones' memory is reused around them", () => {
    const kept: { buffer: Uint8Array; digest: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const buffer = messageBuffer(SIZE);
      for (let at = 0; at < SIZE; at += 4096) buffer[at] = (i * 31 + at / 4096) & 0xff;
      buffer[SIZE - 1] = i;
      kept.push({ buffer, digest: hash(buffer) });
      for (let j = 0; j < 3; j++) takeAndDrop(0xee); // reused slots are overwritten
    }
    const addresses = new Set(kept.map((k) => ptr(k.buffer)));
    expect(addresses.size).toBe(3);
    for (const k of kept) expect(hash(k.buffer)).toBe(k.digest);
  });

  test("a user keeping every result: no failure, correct results, and a collection per doubling rather than per message", () => {
    const gc = spyOn(Bun, "gc");
    try {
      const kept: { buffer: Uint8Array; digest: string }[] = [];
      // 14 × 80 MiB: past the pool's 1 GiB cap, where results become ordinary memory.
      for (let i = 0; i < 14; i++) {
        const buffer = messageBuffer(SIZE);
        buffer.fill(i);
        buffer[i] = 0xff;
        kept.push({ buffer, digest: hash(buffer) });
      }
      for (const [i, k] of kept.entries()) {
        expect(k.buffer.byteLength).toBe(SIZE);
        expect(k.buffer[0]).toBe(i === 0 ? 0xff : i);
        expect(hash(k.buffer)).toBe(k.digest);
      }
      expect(new Set(kept.map((k) => ptr(k.buffer))).size).toBe(14);
      expect(pool.bytes(false)).toBeLessThanOrEqual(1024 * MiB);
      // A young (bun:jsc's edenGC) and a full collection (Bun.gc(true), counted here) per
      // fruitless attempt, attempts only each time the slots in use doubled (80, 160, 320,
      // 640 MiB): 4 full collections, where one attempt per message makes 13.
      expect(gc.mock.calls.length).toBeLessThanOrEqual(5);
    } finally {
      gc.mockRestore();
    }
  });

  test("free slots are unmapped after a quiet spell: a process that stopped receiving keeps none of this memory", async () => {
    const maps = (): number => readFileSync("/proc/self/maps", "utf8").split("\n").length;
    Bun.gc(true);
    takeAndDrop(5);
    Bun.gc(true);
    expect(pool.bytes(true)).toBeGreaterThanOrEqual(SIZE);
    const resident = rssMiB();
    const mappings = maps();
    await untilIdleTrimmed();
    expect(pool.bytes(true)).toBe(0);
    expect(pool.mapped).toBe(0);
    expect(resident - rssMiB()).toBeGreaterThan(SIZE / MiB - 16);
    expect(maps()).toBeLessThan(mappings);
  });
});
