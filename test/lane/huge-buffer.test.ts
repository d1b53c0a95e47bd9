// The memory recvBytes returns for a large lane message: fresh, zeroed, the length asked for,
// and gone again (unmapped by its native deallocator) once the garbage collector frees it.
import { expect, test } from "bun:test";
import { hugePageBuffer } from "../../src/os/shm.ts";

const MiB = 1024 * 1024;
const rss = (): number => process.memoryUsage().rss;

test("hugePageBuffer: zeroed, writable, exactly the size asked for", () => {
  const buffer = hugePageBuffer(3 * MiB + 5);
  expect(buffer.byteLength).toBe(3 * MiB + 5);
  expect(buffer.buffer.byteLength).toBe(3 * MiB + 5);
  expect(buffer.every((v) => v === 0)).toBe(true);
  buffer.fill(0xa5);
  expect(buffer[3 * MiB + 4]).toBe(0xa5);
  expect(buffer.slice(MiB, MiB + 4)).toEqual(new Uint8Array([0xa5, 0xa5, 0xa5, 0xa5]));
});

test("hugePageBuffer: the memory is returned to the system when the buffer is collected", () => {
  Bun.gc(true);
  const before = rss();
  (() => {
    const buffer = hugePageBuffer(256 * MiB);
    buffer.fill(1); // resident now
    expect(rss() - before).toBeGreaterThan(200 * MiB);
  })();
  Bun.gc(true);
  expect(rss() - before).toBeLessThan(64 * MiB);
});
