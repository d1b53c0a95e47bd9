// The memory the lane copies large messages into (src/lane/buffers.ts): zeroed, of the length
// asked for, writable, and given back once the garbage collector frees it — for both kinds,
// an advised ordinary buffer and a huge-page mapping of its own.
import { describe, expect, test } from "bun:test";
import { messageBuffer } from "../../src/lane/buffers.ts";
import { freshBuffer, hugePageBuffer } from "../../src/os/shm.ts";

const MiB = 1024 * 1024;
const rss = (): number => process.memoryUsage().rss;

for (const [name, make] of [
  ["freshBuffer", freshBuffer],
  ["hugePageBuffer", hugePageBuffer],
  ["messageBuffer", messageBuffer],
] as const) {
  describe(name, () => {
    test("zeroed, writable, exactly the size asked for", () => {
      for (const size of [1, MiB - 1, 3 * MiB + 5, 9 * MiB]) {
        const buffer = make(size);
        expect(buffer.byteLength).toBe(size);
        expect(buffer.buffer.byteLength).toBe(size);
        expect(buffer.every((v) => v === 0)).toBe(true);
        buffer.fill(0xa5);
        expect(buffer[size - 1]).toBe(0xa5);
        expect(buffer.slice(0, 1)).toEqual(new Uint8Array([0xa5]));
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
