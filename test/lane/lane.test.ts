// The lane between two ends in one process (test/fixtures/lane-end.ts plays the connection):
// what the user sees — bytes as they were at the call, order, both directions, recvBytesInto,
// BufferTooShort, maxlength, backpressure — with small regions so that growth and pieces happen.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { BufferTooShort, EOFError, OSError } from "../../src/errors.ts";
import { DEFAULTS, Lane } from "../../src/lane/lane.ts";
import { memoryPair, seeded as random, seededHash as hash, type LaneEnd } from "../fixtures/lane-end.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const KiB = 1024;
const MiB = 1024 * KiB;
/** Small regions: messages of a few MiB already make the lane grow (pieces: src/lane/sender.ts PIECE_SIZE). */
const SMALL = { threshold: 64 * KiB, initialSize: 256 * KiB, maxSize: 4 * MiB };

const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** Send every size from one buffer, overwritten right after each call, without awaiting; hashes of what was sent. */
function sendOverwriting(end: LaneEnd, sizes: number[], seed: number): { sent: Promise<void[]>; hashes: bigint[] } {
  const buffer = new Uint8Array(Math.max(...sizes));
  const hashes: bigint[] = [];
  const sent: Promise<void>[] = [];
  sizes.forEach((size, i) => {
    buffer.set(random(size, seed + i));
    hashes.push(hash(buffer.subarray(0, size)));
    sent.push(end.sendBytes(buffer, 0, size));
    buffer.fill(0xee); // the caller reuses its buffer at once
  });
  return { sent: Promise.all(sent), hashes };
}

describe("lane: what arrives", () => {
  test("un-awaited large sends overwritten after each call arrive as they were at the call", async () => {
    const [a, b] = memoryPair(SMALL);
    const sizes = [64 * KiB, 100_000, MiB, 3 * MiB + 17, 9 * MiB + 1, 200 * KiB, 5 * MiB];
    const { sent, hashes } = sendOverwriting(a, sizes, 1);
    for (const [i, size] of sizes.entries()) {
      const got = await b.recvBytes();
      expect(got.byteLength).toBe(size);
      expect(hash(got)).toBe(hashes[i]!);
    }
    await sent;
    a.close();
    b.close();
  });

  test("a received buffer never changes afterwards, while the ring is reused", async () => {
    const [a, b] = memoryPair(SMALL);
    const first = random(200 * KiB, 7);
    const kept = first.slice();
    await a.sendBytes(first);
    const got = await b.recvBytes();
    for (let i = 0; i < 40; i++) {
      await a.sendBytes(random(200 * KiB, 100 + i));
      await b.recvBytes();
    }
    expect(hash(got)).toBe(hash(kept));
    a.close();
    b.close();
  });

  test("small (socket) and large (lane) messages interleaved keep their order", async () => {
    const [a, b] = memoryPair(SMALL);
    const sizes = Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? 10 : i % 3 === 1 ? 300 * KiB + i : 2 * MiB + 3 * i));
    const { sent, hashes } = sendOverwriting(a, sizes, 40);
    for (const [i, size] of sizes.entries()) {
      const got = await b.recvBytes();
      expect([i, got.byteLength]).toEqual([i, size]);
      expect(hash(got)).toBe(hashes[i]!);
    }
    await sent;
    a.close();
    b.close();
  });

  test("both directions at once, each side sending before it reads, do not deadlock", async () => {
    const [a, b] = memoryPair(SMALL);
    const sizes = Array.from({ length: 24 }, (_, i) => MiB + i * 4097);
    const fromA = sendOverwriting(a, sizes, 1000);
    const fromB = sendOverwriting(b, sizes, 2000);
    const read = async (end: LaneEnd, hashes: bigint[]): Promise<void> => {
      for (const [i, size] of sizes.entries()) {
        const got = await end.recvBytes();
        expect(got.byteLength).toBe(size);
        expect(hash(got)).toBe(hashes[i]!);
      }
    };
    await Promise.all([read(b, fromA.hashes), read(a, fromB.hashes), fromA.sent, fromB.sent]);
    a.close();
    b.close();
  });

  test("a message larger than the largest region travels in pieces, read whole or into a buffer", async () => {
    const [a, b] = memoryPair(SMALL);
    const big = random(11 * MiB + 5, 3);
    const expected = hash(big);
    const sent = [a.sendBytes(big), a.sendBytes(big)];
    big.fill(0); // the copies were taken at the calls
    expect(hash(await b.recvBytes())).toBe(expected);
    const target = new Uint8Array(12 * MiB);
    expect(await b.recvBytesInto(target, 1000)).toBe(11 * MiB + 5);
    expect(hash(target.subarray(1000, 1000 + 11 * MiB + 5))).toBe(expected);
    await Promise.all(sent);
    a.close();
    b.close();
  });
});

describe("lane: recvBytesInto, BufferTooShort, maxlength", () => {
  test("recvBytesInto lands the message at the offset and touches nothing else", async () => {
    const [a, b] = memoryPair(SMALL);
    const message = random(MiB + 3, 5);
    await a.sendBytes(message);
    const target = new Uint8Array(MiB + 4096).fill(0x5a);
    expect(await b.recvBytesInto(target, 4093)).toBe(MiB + 3);
    expect(hash(target.subarray(4093))).toBe(hash(message));
    expect(target.subarray(0, 4093).every((v) => v === 0x5a)).toBe(true);
    a.close();
    b.close();
  });

  test("a buffer too short: BufferTooShort with the whole message, which is consumed", async () => {
    const [a, b] = memoryPair(SMALL);
    const message = random(3 * MiB, 6);
    const after = random(128 * KiB, 8);
    // Not awaited: 3 MiB is past the small region's high-water mark until the reader frees it.
    const sent = Promise.all([a.sendBytes(message), a.sendBytes(after)]);
    const error = await b.recvBytesInto(new Uint8Array(MiB), 0).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BufferTooShort);
    expect(hash((error as BufferTooShort).data)).toBe(hash(message));
    expect(hash(await b.recvBytes())).toBe(hash(after));
    await sent;
    a.close();
    b.close();
  });

  test("an offset that leaves too little room is BufferTooShort too", async () => {
    const [a, b] = memoryPair(SMALL);
    await a.sendBytes(random(100 * KiB, 9));
    const error = await b.recvBytesInto(new Uint8Array(100 * KiB), 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BufferTooShort);
    expect((error as BufferTooShort).data.byteLength).toBe(100 * KiB);
    a.close();
    b.close();
  });

  test("a message longer than maxlength: OSError('bad message length'), and the peer's room comes back", async () => {
    const [a, b] = memoryPair(SMALL);
    await a.sendBytes(random(MiB, 10));
    const error = await b.recvBytes(MiB - 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).message).toBe("bad message length");
    await turns(3); // the RELEASE crosses
    expect(a.lane.pressing).toBe(false);
    a.close();
    b.close();
  });
});

describe("lane: options", () => {
  const io = { control: () => {}, give: () => new Uint8Array(0), take: () => Promise.reject(new Error("unused")) };

  test("an option given as undefined keeps its default", () => {
    const lane = new Lane(io, { threshold: undefined, initialSize: undefined });
    expect(lane.threshold).toBe(DEFAULTS.threshold);
    expect(lane.carries(DEFAULTS.threshold - 1)).toBe(false);
    expect(lane.carries(DEFAULTS.threshold)).toBe(true);
  });

  test("bad sizes are RangeErrors that show the value", () => {
    expect(() => new Lane(io, { threshold: 0 })).toThrow(new RangeError("threshold must be a positive integer (got 0)"));
    expect(() => new Lane(io, { initialSize: 1000 })).toThrow(new RangeError("initialSize must be a positive multiple of 4096 (got 1000)"));
    expect(() => new Lane(io, { initialSize: 8192, maxSize: 4096 })).toThrow(new RangeError("maxSize (4096) is below initialSize (8192)"));
  });
});

describe("lane: backpressure and growth", () => {
  test("a receiver that does not read holds the sender at the largest region; nothing is lost", async () => {
    const [a, b] = memoryPair(SMALL);
    const sizes = Array.from({ length: 12 }, () => MiB);
    let resolved = 0;
    const { sent, hashes } = sendOverwriting(a, sizes, 300);
    const all = sent.then(() => (resolved = sizes.length));
    await turns(20);
    expect(resolved).toBe(0);
    expect(a.lane.pressing).toBe(true);
    for (const [i, size] of sizes.entries()) {
      const got = await b.recvBytes();
      expect(got.byteLength).toBe(size);
      expect(hash(got)).toBe(hashes[i]!);
    }
    await all;
    expect(resolved).toBe(sizes.length);
    a.close();
    b.close();
  });

  test("an awaited stream against a slow reader never grows the region past what one message needs", async () => {
    const [a, b] = memoryPair(SMALL);
    const reading = (async () => {
      for (let i = 0; i < 30; i++) {
        await turns(2);
        await b.recvBytes();
      }
    })();
    for (let i = 0; i < 30; i++) await a.sendBytes(random(300 * KiB, i));
    await reading;
    expect(a.lane.regions.sending).toBe(1);
    a.close();
    b.close();
  });

  test("EOF after the last message: the messages already announced are still read, then EOFError", async () => {
    const [a, b] = memoryPair(SMALL);
    await a.sendBytes(random(MiB, 11));
    await a.sendBytes(random(2 * MiB, 12));
    a.close();
    await turns(2);
    expect((await b.recvBytes()).byteLength).toBe(MiB);
    expect((await b.recvBytes()).byteLength).toBe(2 * MiB);
    expect(await b.recvBytes().catch((e: unknown) => e)).toBeInstanceOf(EOFError);
    b.close();
  });
});
