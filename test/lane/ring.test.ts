// The sender's ring: contiguous page-aligned allocations freed oldest first, never overlapping
// a live one, starting again at 0 when empty (so steady traffic reuses the same warm pages).
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { PAGE, Ring } from "../../src/lane/ring.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

describe("Ring", () => {
  test("allocates page-aligned, wraps to the start, refuses what does not fit", () => {
    const ring = new Ring(8 * PAGE);
    expect(ring.allocate(1)).toBe(0);
    expect(ring.allocate(3 * PAGE)).toBe(PAGE);
    expect(ring.allocate(4 * PAGE + 1)).toBe(-1); // 5 pages wanted, 4 left
    expect(ring.allocate(4 * PAGE)).toBe(4 * PAGE);
    expect(ring.allocate(1)).toBe(-1); // full
    ring.free(); // page 0 free
    expect(ring.allocate(1)).toBe(0); // wraps
    expect(ring.allocate(1)).toBe(-1);
    ring.free();
    ring.free(); // only the wrapped page 0 is live: pages 1..7 follow it
    expect(ring.used).toBe(PAGE);
    expect(ring.allocate(8 * PAGE)).toBe(-1);
    expect(ring.allocate(7 * PAGE)).toBe(PAGE);
  });

  test("an empty ring starts again at 0", () => {
    const ring = new Ring(8 * PAGE);
    ring.allocate(5 * PAGE);
    ring.allocate(2 * PAGE);
    ring.free();
    ring.free();
    expect(ring.count).toBe(0);
    expect(ring.allocate(PAGE)).toBe(0);
  });

  test("wraps to the start rather than moving on into pages it never touched", () => {
    const ring = new Ring(16 * PAGE);
    ring.allocate(4 * PAGE);
    ring.allocate(4 * PAGE); // touched: pages 0..7
    ring.free();
    expect(ring.allocate(2 * PAGE)).toBe(0); // pages 8.. were never written: go back to 0
    ring.free(); // live: pages 0..1
    expect(ring.allocate(2 * PAGE)).toBe(2 * PAGE); // written before: go on
    expect(ring.allocate(7 * PAGE)).toBe(4 * PAGE); // no room before the oldest: on into new pages
  });

  test("random traffic: live allocations never overlap, and are freed in order", () => {
    const size = 64 * PAGE;
    const ring = new Ring(size);
    const live: Array<[number, number]> = [];
    let x = 12345;
    const rand = (n: number): number => {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      return x % n;
    };
    for (let step = 0; step < 20_000; step++) {
      if (live.length > 0 && rand(3) === 0) {
        ring.free();
        live.shift();
        continue;
      }
      const n = 1 + rand(20 * PAGE);
      const at = ring.allocate(n);
      if (at < 0) continue;
      expect(at % PAGE).toBe(0);
      expect(at + n).toBeLessThanOrEqual(size);
      for (const [s, e] of live) expect(at + n <= s || at >= e).toBe(true);
      live.push([at, at + Math.ceil(n / PAGE) * PAGE]);
    }
  });
});
