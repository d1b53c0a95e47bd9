// The shared-memory lane inside Connection: Pipe({ sharedMemory: true }) ends in one process.
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { BufferTooShort, OSError } from "../../src/errors.ts";
import { Pipe } from "../../src/processes/pipe.ts";
import type { Connection } from "../../src/connection/connection.ts";
import "../../src/processes/fdpass/index.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

const hash = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const mappings = (): number => readFileSync("/proc/self/maps", "utf8").split("\n").filter((line) => line.includes("memfd:mpconn-lane")).length;
const descriptors = (): number => readdirSync("/proc/self/fd").length;
const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};
/** Regions the lane of `conn` maps (sending, receiving). */
const regions = (conn: Connection): { sending: number; receiving: number } =>
  (conn as unknown as { lane: { lane: { regions: { sending: number; receiving: number } } } }).lane.lane.regions;

function random(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = seed | 1;
  const words = new Uint32Array(bytes.buffer, 0, size >>> 2);
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return bytes;
}

describe("Pipe({ sharedMemory: true })", () => {
  test("large messages take the lane, and arrive as they were at the call although the buffer is overwritten right after", async () => {
    const [a, b] = Pipe(true, { sharedMemory: true });
    const buf = new Uint8Array(3 * MiB);
    const expected: string[] = [];
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 12; i++) {
      buf.set(random(buf.byteLength, i + 1));
      expected.push(hash(buf));
      sends.push(a.sendBytes(buf));
      buf.fill(0xee); // the caller reuses its buffer at once
    }
    for (let i = 0; i < 12; i++) expect(hash(await b.recvBytes())).toBe(expected[i]!);
    await Promise.all(sends);
    expect(regions(a).sending).toBeGreaterThan(0);
    expect(regions(b).receiving).toBeGreaterThan(0);
    a.close();
    b.close();
  });

  test("both directions at once, small and large interleaved, stay in order without deadlock", async () => {
    const [a, b] = Pipe(true, { sharedMemory: true });
    const sizes = [10, 300 * KiB, 5, 2 * MiB, 64 * KiB, 9 * MiB, 0, 128 * KiB, 1, 17 * MiB, 3];
    const send = (conn: Connection, seed: number): Promise<void[]> =>
      Promise.all(sizes.map((size, i) => conn.sendBytes(random(size + 4, seed + i))));
    const receive = async (conn: Connection, seed: number): Promise<void> => {
      for (let i = 0; i < sizes.length; i++) expect(hash(await conn.recvBytes())).toBe(hash(random(sizes[i]! + 4, seed + i)));
    };
    await Promise.all([send(a, 100), send(b, 200), receive(b, 100), receive(a, 200)]);
    a.close();
    b.close();
  });

  test("recvBytesInto at an offset, BufferTooShort, then maxlength, through the lane", async () => {
    const [a, b] = Pipe(true, { sharedMemory: true });
    const one = random(1 * MiB, 7);
    const two = random(2 * MiB, 8);
    // Not awaited: five MiB in flight is past the lane's high-water mark (half its first region).
    const sends = [a.sendBytes(one), a.sendBytes(two), a.sendBytes(two)];
    const into = new Uint8Array(1 * MiB + 100);
    expect(await b.recvBytesInto(into, 100)).toBe(1 * MiB);
    expect(hash(into.subarray(100))).toBe(hash(one));
    const short = await b.recvBytesInto(new Uint8Array(MiB), 0).catch((error: unknown) => error);
    expect(short).toBeInstanceOf(BufferTooShort);
    expect(hash((short as BufferTooShort).data as Uint8Array)).toBe(hash(two));
    const long = await b.recvBytes(MiB).catch((error: unknown) => error);
    expect(long).toBeInstanceOf(OSError);
    expect((long as OSError).message).toBe("bad message length");
    await Promise.all(sends);
    a.close();
    b.close();
  });

  test("poll and EOF behave as on the socket; close leaves no descriptor or mapping", async () => {
    const fds = descriptors();
    const maps = mappings();
    const [a, b] = Pipe(true, { sharedMemory: true });
    expect(await b.poll(0)).toBe(false);
    await a.sendBytes(random(4 * MiB, 3));
    expect(await b.poll(null)).toBe(true);
    a.close();
    expect((await b.recvBytes()).byteLength).toBe(4 * MiB);
    expect(await b.recvBytes().catch((error: unknown) => (error as Error).name)).toBe("EOFError");
    b.close();
    await turns(20);
    expect(mappings()).toBe(maps);
    expect(descriptors()).toBe(fds);
  });

  test("{ sharedMemory: false } and the default keep the socket; a bad value is a TypeError", async () => {
    for (const options of [{}, { sharedMemory: false }]) {
      const [a, b] = Pipe(true, options);
      expect((a as unknown as { lane: unknown }).lane).toBeNull();
      const body = random(2 * MiB, 5);
      await a.sendBytes(body);
      expect(hash(await b.recvBytes())).toBe(hash(body));
      a.close();
      b.close();
    }
    expect(() => Pipe(true, { sharedMemory: "yes" as unknown as boolean })).toThrow(TypeError);
  });

  test("a connection with the lane refuses to move to another process, and sends nothing", async () => {
    const [a, b] = Pipe(true, { sharedMemory: true });
    const [c, d] = Pipe();
    const error = await c.send(a).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).code).toBe("LANE_NOT_MOVABLE");
    expect(await d.poll(0)).toBe(false);
    // The first message in a region resolves once the peer holds the region: b must be reading.
    const received = b.recvBytes();
    await a.sendBytes(random(MiB, 1));
    expect((await received).byteLength).toBe(MiB);
    for (const conn of [a, b, c, d]) conn.close();
  });
});
