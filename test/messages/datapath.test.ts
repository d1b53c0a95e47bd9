// The socket path for large messages: queued sends keep the bytes as they were at the call
// (copied into reused spill memory), large bodies land in their final buffer (a waiting
// recvBytesInto's own buffer), small and large stay in order.
import { describe, expect, test } from "bun:test";
import { randomFillSync } from "node:crypto";
import { BufferTooShort, Pipe } from "../../src/index.ts";
import { spillKept } from "../../src/messages/spill.ts";
import { rejection } from "../fixtures/assert.ts";

const MiB = 1 << 20;
const sha = (bytes: Uint8Array): string => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

/** Sends `sizes` from one buffer, refilled with random bytes right after each un-awaited call; the hashes sent. */
function sendOverwritten(conn: { sendBytes(b: Uint8Array, o?: number, n?: number): Promise<void> }, sizes: number[]): {
  hashes: string[];
  sent: Promise<void[]>;
} {
  const buffer = new Uint8Array(Math.max(...sizes));
  const hashes: string[] = [];
  const sent: Promise<void>[] = [];
  for (const size of sizes) {
    randomFillSync(buffer, 0, size);
    hashes.push(sha(buffer.subarray(0, size)));
    sent.push(conn.sendBytes(buffer, 0, size));
    // Overwrite at once: what was queued must not change.
    buffer.fill(0xee);
  }
  return { hashes, sent: Promise.all(sent) };
}

describe("the socket path for large messages", () => {
  test("un-awaited large sends overwritten after each call arrive as they were at the call, both ways at once", async () => {
    const [a, b] = Pipe();
    const sizes = [3 * MiB, 17, 1 * MiB + 5, 20_000, 64 * 1024, 2 * MiB, 1, 300_000, 16 * 1024 + 1];
    const ab = sendOverwritten(a, sizes);
    const ba = sendOverwritten(b, [...sizes].reverse());
    const gotB: string[] = [];
    const gotA: string[] = [];
    for (let i = 0; i < sizes.length; i++) {
      gotB.push(sha(await b.recvBytes()));
      gotA.push(sha(await a.recvBytes()));
    }
    await ab.sent;
    await ba.sent;
    expect(gotB).toEqual(ab.hashes);
    expect(gotA).toEqual(ba.hashes);
    a.close();
    b.close();
  });

  test("a burst of 64 × 1 MiB un-awaited sends arrives hash-identical and in order; the spill memory is reused", async () => {
    const [a, b] = Pipe();
    const sizes = Array.from({ length: 64 }, (_, i) => MiB + i);
    for (let round = 0; round < 2; round++) {
      const { hashes, sent } = sendOverwritten(a, sizes);
      // The kernel cannot take 64 MiB at once: most of it waits in spill memory.
      const got: string[] = [];
      for (let i = 0; i < sizes.length; i++) got.push(sha(await b.recvBytes()));
      await sent;
      expect(got).toEqual(hashes);
      // Given back, not dropped: the next burst copies into the same (warm) buffers.
      expect(spillKept()).toBeGreaterThan(32 * MiB);
    }
    a.close();
    b.close();
  });

  test("recvBytesInto waiting before a large message arrives: the bytes land at its offset, the rest untouched", async () => {
    const [a, b] = Pipe();
    const body = randomFillSync(new Uint8Array(3 * MiB + 7));
    const target = new Uint8Array(4 * MiB).fill(0x5a);
    const into = b.recvBytesInto(target, 1000);
    await Bun.sleep(0);
    await a.sendBytes(body);
    expect(await into).toBe(body.byteLength);
    expect(sha(target.subarray(1000, 1000 + body.byteLength))).toBe(sha(body));
    expect(target.subarray(0, 1000).every((x) => x === 0x5a)).toBe(true);
    expect(target.subarray(1000 + body.byteLength).every((x) => x === 0x5a)).toBe(true);
    // Into a DataView over a Float64Array's buffer, at an offset: the same bytes.
    const floats = new Float64Array(MiB);
    const second = b.recvBytesInto(new DataView(floats.buffer), 8);
    await a.sendBytes(body.subarray(0, 2 * MiB));
    expect(await second).toBe(2 * MiB);
    expect(sha(new Uint8Array(floats.buffer, 8, 2 * MiB))).toBe(sha(body.subarray(0, 2 * MiB)));
    a.close();
    b.close();
  });

  test("recvBytesInto waiting with a buffer too short for a large message: BufferTooShort with the whole message", async () => {
    const [a, b] = Pipe();
    const body = randomFillSync(new Uint8Array(2 * MiB));
    const small = new Uint8Array(MiB).fill(1);
    const into = b.recvBytesInto(small, 0);
    await Bun.sleep(0);
    void a.sendBytes(body);
    const error = await rejection(into);
    expect(error).toBeInstanceOf(BufferTooShort);
    expect(sha((error as BufferTooShort).data)).toBe(sha(body));
    // The caller's buffer was not written into.
    expect(small.every((x) => x === 1)).toBe(true);
    // The stream goes on.
    void a.sendBytes(new Uint8Array([9]));
    expect([...(await b.recvBytes())]).toEqual([9]);
    a.close();
    b.close();
  });

  test("small and large messages interleaved, un-awaited, stay in order", async () => {
    const [a, b] = Pipe();
    const sizes = Array.from({ length: 200 }, (_, i) => (i % 7 === 3 ? MiB + i : i % 5 === 0 ? 17_000 : i));
    const { hashes, sent } = sendOverwritten(a, sizes);
    const got: string[] = [];
    for (let i = 0; i < sizes.length; i++) got.push(sha(await b.recvBytes()));
    await sent;
    expect(got).toEqual(hashes);
    a.close();
    b.close();
  });
});
