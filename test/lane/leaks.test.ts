// Once both ends are closed, no descriptor and no mapping of the lane remains: counted in
// /proc/self/fd and /proc/self/maps (a region shows there as /memfd:mpconn-lane).
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, readdirSync } from "node:fs";
import { BufferTooShort, OSError } from "../../src/errors.ts";
import { Lane } from "../../src/lane/lane.ts";
import { NOTICE_HEADER_SIZE } from "../../src/lane/notices.ts";
import { Region } from "../../src/lane/region.ts";
import { memoryPair } from "../fixtures/lane-end.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const KiB = 1024;
const MiB = 1024 * KiB;
const SMALL = { threshold: 64 * KiB, initialSize: 256 * KiB, maxSize: 4 * MiB };

const mappings = (): number => readFileSync("/proc/self/maps", "utf8").split("\n").filter((line) => line.includes("memfd:mpconn-lane")).length;
const descriptors = (): number => readdirSync("/proc/self/fd").length;
const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe("lane: nothing left after close", () => {
  test("a session with growth, pieces, both directions and failed reads", async () => {
    const fds = descriptors();
    expect(mappings()).toBe(0);
    const [a, b] = memoryPair(SMALL);
    const sends = [a.sendBytes(new Uint8Array(3 * MiB)), b.sendBytes(new Uint8Array(9 * MiB)), a.sendBytes(new Uint8Array(100 * KiB)), a.sendBytes(new Uint8Array(2 * MiB))];
    expect((await b.recvBytes()).byteLength).toBe(3 * MiB);
    expect((await a.recvBytes()).byteLength).toBe(9 * MiB);
    expect(await b.recvBytesInto(new Uint8Array(10), 0).catch((e: unknown) => e)).toBeInstanceOf(BufferTooShort);
    expect(await b.recvBytes(10).catch((e: unknown) => e)).toBeInstanceOf(OSError);
    await Promise.all(sends);
    expect(mappings()).toBeGreaterThan(0);
    a.close();
    b.close();
    expect(mappings()).toBe(0);
    expect(descriptors()).toBe(fds);
  });

  test("one end closes with messages unread on the other (a peer that went away); then the other closes", async () => {
    const fds = descriptors();
    const [a, b] = memoryPair(SMALL);
    void a.sendBytes(new Uint8Array(MiB)).catch(() => {});
    void a.sendBytes(new Uint8Array(7 * MiB)).catch(() => {});
    await turns(5);
    const reading = b.recvBytesInto(new Uint8Array(16), 0).catch((e: unknown) => e); // BufferTooShort, read in full
    a.close();
    expect(await reading).toBeInstanceOf(BufferTooShort);
    b.close();
    expect(mappings()).toBe(0);
    expect(descriptors()).toBe(fds);
  });

  test("a region still being fetched when the receiver closes is closed when it arrives", async () => {
    const fds = descriptors();
    const sender = Region.create(1, 64 * KiB);
    let deliver: (fd: number) => void = () => {};
    const lane = new Lane({ control: () => {}, give: () => new Uint8Array(0), take: () => new Promise<number>((resolve) => (deliver = resolve)) });
    const offer = new Uint8Array(16);
    offer[0] = 3; // OFFER region 1 of 64 KiB
    offer[2] = 1;
    new DataView(offer.buffer).setUint32(8, 64 * KiB, true);
    lane.take(offer);
    lane.close();
    deliver(sender.shareReadOnly());
    await turns(2);
    sender.close();
    expect(mappings()).toBe(0);
    expect(descriptors()).toBe(fds);
    expect(NOTICE_HEADER_SIZE).toBe(8);
  });

  test("the regions a sender outgrew are unmapped once the peer consumed what was in them", async () => {
    const [a, b] = memoryPair(SMALL);
    for (const size of [128 * KiB, 600 * KiB, 1500 * KiB, 3 * MiB]) {
      const sent = a.sendBytes(new Uint8Array(size));
      await b.recvBytes();
      await sent;
    }
    await turns(3);
    expect(a.lane.regions).toEqual({ sending: 1, receiving: 0 });
    expect(b.lane.regions).toEqual({ sending: 0, receiving: 1 });
    expect(mappings()).toBe(2); // the one region, mapped once on each side
    a.close();
    b.close();
    expect(mappings()).toBe(0);
  });
});
