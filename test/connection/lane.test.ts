// The shared-memory lane inside Connection: Pipe({ sharedMemory: true }) ends in one process.
import { describe, expect, spyOn, test, setDefaultTimeout } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { BufferTooShort, OSError } from "../../src/errors.ts";
import { Pipe } from "../../src/processes/pipe.ts";
import { wait } from "../../src/connection/wait.ts";
import type { Connection } from "../../src/connection/connection.ts";
import "../../src/processes/fdpass/index.ts";
import { IncomingMessage } from "../../src/lane/receiver.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

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
  test("un-awaited large sends, the buffer overwritten right after each call, arrive as they were at the call, both directions", async () => {
    const [a, b] = Pipe(true, { sharedMemory: true });
    const expected = new Map<Connection, string[]>([
      [a, []],
      [b, []],
    ]);
    const sends: Promise<void>[] = [];
    const buffers = new Map<Connection, Uint8Array>([
      [a, new Uint8Array(3 * MiB)],
      [b, new Uint8Array(3 * MiB)],
    ]);
    for (let i = 0; i < 12; i++) {
      for (const [from, to] of [
        [a, b],
        [b, a],
      ] as const) {
        const buf = buffers.get(from)!;
        const size = buf.byteLength - i * 4096;
        buf.set(random(size, i + (from === a ? 1 : 1000)));
        expected.get(to)!.push(hash(buf.subarray(0, size)));
        sends.push(from.sendBytes(buf, 0, size));
        buf.fill(0xee); // the caller reuses its buffer at once
      }
    }
    for (let i = 0; i < 12; i++) {
      expect(hash(await b.recvBytes())).toBe(expected.get(b)![i]!);
      expect(hash(await a.recvBytes())).toBe(expected.get(a)![i]!);
    }
    await Promise.all(sends);
    for (const conn of [a, b]) {
      expect(regions(conn).sending).toBeGreaterThan(0);
      expect(regions(conn).receiving).toBeGreaterThan(0);
    }
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

  test("16 MiB messages (in pieces) between small ones, both directions at once: recvBytesInto one reused buffer at an offset, and recvBytes", async () => {
    const [a, b] = Pipe(true, { sharedMemory: true });
    const sizes = [16 * MiB, 7, 16 * MiB + 1, 16 * MiB - 3, 200 * KiB, 16 * MiB, 1];
    const send = async (conn: Connection, seed: number): Promise<void> => {
      const buffer = new Uint8Array(17 * MiB);
      for (const [i, size] of sizes.entries()) {
        buffer.set(random(size, seed + i));
        const sent = conn.sendBytes(buffer.subarray(0, size));
        buffer.fill(0xcc); // taken at the call
        if (i % 2 === 0) await sent;
      }
    };
    const receive = async (conn: Connection, seed: number): Promise<void> => {
      const into = new Uint8Array(17 * MiB);
      for (const [i, size] of sizes.entries()) {
        const expected = hash(random(size, seed + i));
        if (i % 3 === 2) expect(hash(await conn.recvBytes())).toBe(expected);
        else {
          into.fill(0x33, 0, 11);
          expect(await conn.recvBytesInto(into, 11)).toBe(size);
          expect(hash(into.subarray(11, 11 + size))).toBe(expected);
          expect(into.subarray(0, 11).every((v) => v === 0x33)).toBe(true);
        }
      }
    };
    await Promise.all([send(a, 300), send(b, 400), receive(b, 300), receive(a, 400)]);
    a.close();
    b.close();
  });

  test("a recvBytesInto loop gets each lane message straight into its buffer, never through a buffer of the lane's own", async () => {
    const [a, b] = Pipe(true, { sharedMemory: true });
    const bodies = [4, 5, 6].map((n) => random(n * MiB, n));
    const sends = bodies.map((body) => a.sendBytes(body));
    // The next message is announced while this one is read; the loop asks for it a few
    // microtasks later, and the lane waits a turn for it rather than reading it on its own.
    const ownBuffer = spyOn(IncomingMessage.prototype, "read");
    try {
      const into = new Uint8Array(6 * MiB);
      for (const body of bodies) {
        expect(await b.recvBytesInto(into)).toBe(body.byteLength);
        expect(hash(into.subarray(0, body.byteLength))).toBe(hash(body));
      }
      expect(ownBuffer).not.toHaveBeenCalled();
    } finally {
      ownBuffer.mockRestore();
    }
    await Promise.all(sends);
    a.close();
    b.close();
  });

  test("socket messages behind an unread lane message wait in order (the socket pauses past 16 MiB of them), then all arrive", async () => {
    const [a, b] = Pipe(true, { sharedMemory: true });
    const small = 64 * KiB - 1; // below the threshold: the socket carries these
    const sends = [a.sendBytes(random(10, 1)), a.sendBytes(random(MiB, 2))];
    for (let i = 0; i < 400; i++) sends.push(a.sendBytes(random(small, 100 + i)));
    sends.push(a.sendBytes(random(2 * MiB, 3)));
    expect(await b.poll(null)).toBe(true);
    // Nobody reads: the first message waits in the inbox, so the 1 MiB lane message stays in its
    // region, and 25 MiB of socket messages pile up behind it.
    const link = (b as unknown as { lane: { paused: boolean } }).lane;
    for (let i = 0; i < 20_000 && !link.paused; i++) await turns(1);
    expect(link.paused).toBe(true);
    expect(hash(await b.recvBytes())).toBe(hash(random(10, 1)));
    expect(hash(await b.recvBytes())).toBe(hash(random(MiB, 2)));
    for (let i = 0; i < 400; i++) expect(hash(await b.recvBytes())).toBe(hash(random(small, 100 + i)));
    expect(hash(await b.recvBytes())).toBe(hash(random(2 * MiB, 3)));
    await Promise.all(sends);
    expect(link.paused).toBe(false);
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

  test("a connection with the lane closed while its move waits for the peer: the send rejects, and later sends still go", async () => {
    const [a, b] = Pipe(true, { sharedMemory: true });
    const [c, d] = Pipe();
    await Promise.all([a.sendBytes(random(10, 1)), b.recvBytes()]); // both ends running
    const moved = c.send(a as unknown as never); // the retirement waits for b's answer: a closes first
    const after = c.sendBytes(random(5, 2));
    a.close();
    const error = await moved.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).code).toBe("HANDLE_CLOSED");
    await after;
    expect(hash(await d.recvBytes())).toBe(hash(random(5, 2)));
    for (const conn of [b, c, d]) conn.close();
  });

  test("wait, poll and EOF behave as on the socket; close leaves no descriptor or mapping", async () => {
    // The process's descriptor sharer (one listening socket, shared with connection passing)
    // stays once used: start it before counting.
    const [x, y] = Pipe(true, { sharedMemory: true });
    const warm = x.sendBytes(random(MiB, 9));
    await y.recvBytes();
    await warm;
    x.close();
    y.close();
    await turns(20);
    const fds = descriptors();
    const maps = mappings();
    const [a, b] = Pipe(true, { sharedMemory: true });
    expect(await b.poll(0)).toBe(false);
    // The first send into a region resolves once the peer holds it (it read a message there).
    const sent = a.sendBytes(random(4 * MiB, 3));
    expect(await wait([b], 30)).toEqual([b]);
    expect(await b.poll(null)).toBe(true);
    expect((await b.recvBytes()).byteLength).toBe(4 * MiB);
    await sent;
    a.close();
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

  test("a connection with the lane passed to another connection's peer: the lane is retired first, and every message arrives exactly", async () => {
    const [a, b] = Pipe(true, { sharedMemory: true });
    const [c, d] = Pipe();
    // Lane messages in flight both ways and unread, around small ones.
    const toB = [random(2 * MiB, 1), random(5, 2), random(3 * MiB, 3)];
    const toA = [random(MiB, 4), random(7, 5), random(4 * MiB, 6)];
    const sends = [...toB.map((body) => a.sendBytes(body)), ...toA.map((body) => b.sendBytes(body))];
    const moved = c.send(a as unknown as never);
    const after = c.sendBytes(random(9, 7)); // waits behind the move: order kept
    const a2 = (await d.recv()) as unknown as Connection;
    expect(hash(await d.recvBytes())).toBe(hash(random(9, 7)));
    await moved;
    await after;
    a.close();
    // What b had sent, unread at a, came along; what a had sent is at b.
    for (const body of toA) expect(hash(await a2.recvBytes())).toBe(hash(body));
    for (const body of toB) expect(hash(await b.recvBytes())).toBe(hash(body));
    await Promise.all(sends);
    // Both ways on, over the socket now: b's lane knows a's end retired.
    const more = [random(3 * MiB, 8), random(200 * KiB, 9)];
    await Promise.all([...more.map((body) => b.sendBytes(body)), ...more.map((body) => a2.sendBytes(body))]);
    for (const body of more) expect(hash(await a2.recvBytes())).toBe(hash(body));
    for (const body of more) expect(hash(await b.recvBytes())).toBe(hash(body));
    expect((a2 as unknown as { lane: unknown }).lane).toBeNull();
    for (const conn of [a2, b, c, d]) conn.close();
  });
});
