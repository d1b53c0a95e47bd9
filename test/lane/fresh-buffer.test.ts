// The memory the lane copies large messages into (src/lane/buffers.ts, pool.ts, os/shm.ts):
// of the length asked for, writable, given back once the garbage collector frees it, and a
// pooled slot handed out again only once the buffer's memory was released — also when the
// buffer was transferred and its first owner collected.
import { ptr } from "bun:ffi";
import { describe, expect, test } from "bun:test";
import { messageBuffer } from "../../src/lane/buffers.ts";
import { resultPool } from "../../src/lane/pool.ts";
import { freshBuffer } from "../../src/os/shm.ts";

const MiB = 1024 * 1024;
const rss = (): number => process.memoryUsage().rss;

for (const [name, make] of [["freshBuffer", freshBuffer]] as const) {
  describe(name, () => {
    test("zeroed, writable, exactly the size asked for", () => {
      for (const size of [1, MiB - 1, 3 * MiB + 5, 9 * MiB]) {
        const buffer = make(size);
        expect(buffer.byteLength).toBe(size);
        expect(buffer.buffer.byteLength).toBe(size);
        expect(buffer.every((v) => v === 0)).toBe(true);
        buffer.fill(0xa5);
        expect(buffer[size - 1]).toBe(0xa5);
      }
    });

    test("the memory is given back when the buffer is collected", () => {
      Bun.gc(true);
      const before = rss();
      (() => {
        const buffer = make(192 * MiB);
        buffer.fill(1); // resident now
        expect(rss() - before).toBeGreaterThan(150 * MiB);
      })();
      Bun.gc(true);
      expect(rss() - before).toBeLessThan(64 * MiB);
    });
  });
}

describe("messageBuffer (pooled from 1 MiB)", () => {
  test("the pool is there on Linux", () => {
    expect(resultPool()).not.toBeNull();
  });

  test("exactly the size asked for, writable; below 1 MiB an ordinary zeroed buffer", () => {
    for (const size of [MiB, 3 * MiB + 5, 9 * MiB]) {
      const buffer = messageBuffer(size);
      expect(buffer.byteLength).toBe(size);
      buffer.fill(0x5a);
      expect(buffer[size - 1]).toBe(0x5a);
    }
    expect(messageBuffer(1000).every((v) => v === 0)).toBe(true);
  });

  test("a slot is reused only after its buffer was released", () => {
    const held = messageBuffer(5 * MiB);
    const other = messageBuffer(5 * MiB);
    expect(ptr(other)).not.toBe(ptr(held));
    held.fill(1);
    other.fill(2);
    expect(held.every((v) => v === 1)).toBe(true);
    const address = ptr(held);
    (() => {
      for (let i = 0; i < 4; i++) messageBuffer(5 * MiB).fill(3); // dropped at once
    })();
    Bun.gc(true);
    const again = messageBuffer(5 * MiB);
    expect(ptr(again)).not.toBe(address); // `held` is still alive
    expect(held.every((v) => v === 1)).toBe(true);
    expect(other.every((v) => v === 2)).toBe(true);
  });

  test("released memory comes back warm: the same slot, after the buffer was collected", () => {
    let address = 0;
    (() => {
      address = ptr(messageBuffer(7 * MiB));
    })();
    Bun.gc(true);
    const seen = new Set<number>();
    const kept: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) {
      const b = messageBuffer(7 * MiB);
      seen.add(ptr(b));
      kept.push(b);
    }
    expect(seen.has(address)).toBe(true);
  });

  test("a transferred buffer keeps its slot after its first owner is collected", () => {
    let moved: ArrayBuffer | null = null;
    let address = 0;
    (() => {
      const original = messageBuffer(6 * MiB);
      original.fill(7);
      address = ptr(original);
      const buffer = original.buffer as ArrayBuffer;
      moved = structuredClone(buffer, { transfer: [buffer] });
      expect(original.byteLength).toBe(0); // detached: the memory moved, it was not copied
    })();
    Bun.gc(true);
    const others: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) {
      const b = messageBuffer(6 * MiB);
      others.push(b);
      expect(ptr(b)).not.toBe(address);
      b.fill(9);
    }
    const view = new Uint8Array(moved!);
    expect(view.byteLength).toBe(6 * MiB);
    expect(view.every((v) => v === 7)).toBe(true);
  });
});
