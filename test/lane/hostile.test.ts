// A peer that breaks the lane's rules — malformed notices, pieces outside its region, regions
// that are not what they claim, releases that do not fit — can only make its own messages fail:
// every case here ends in an OSError (code EPROTO) and a closed lane, never a read outside a
// mapping, a hang or a crash.
import { dlopen } from "bun:ffi";
import { afterEach, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readdirSync } from "node:fs";
import { OSError } from "../../src/errors.ts";
import { Lane } from "../../src/lane/lane.ts";
import { FIRST, LAST, NOTICE_HEADER_SIZE, OFFER, PIECE, RELEASE, RETIRE, encodeNotice, type Notice } from "../../src/lane/notices.ts";
import { Region } from "../../src/lane/region.ts";
import { PIPELINE_PIECE } from "../../src/lane/sender.ts";
import { closeFd, socketpair } from "../../src/os/libc.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const PAGE = 4096;

/** A lane whose peer is this test: notices go in by hand, regions are handed over by ticket number. */
function victim(options = {}) {
  const control: Uint8Array[] = [];
  const offered = new Map<number, number>();
  const lane = new Lane(
    {
      control: (frame) => control.push(frame),
      give: (fd) => {
        closeFd(fd);
        return Uint8Array.of(0);
      },
      take: (ticket) => {
        const fd = offered.get(ticket[0]!);
        return fd === undefined ? Promise.reject(new OSError("no such ticket", "ENOENT")) : Promise.resolve(fd);
      },
    },
    options,
  );
  const take = (notice: Notice | Uint8Array) => lane.take(notice instanceof Uint8Array ? notice : encodeNotice(notice).subarray(NOTICE_HEADER_SIZE));
  /** A region of the peer's, offered as `id` (the lane receives a read-only descriptor of it). */
  const offer = (id: number, size = 16 * PAGE): Region => {
    const region = Region.create(id, size);
    owned.push(region);
    offered.set(id, region.shareReadOnly());
    take({ kind: OFFER, region: id, size, ticket: Uint8Array.of(id) });
    return region;
  };
  return { lane, control, take, offer, offered };
}

const owned: Region[] = [];
afterEach(() => {
  for (const region of owned.splice(0)) region.close();
});

function expectProtocolError(work: () => unknown, words: RegExp): OSError {
  let caught: unknown;
  try {
    work();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(OSError);
  expect((caught as OSError).code).toBe("EPROTO");
  expect((caught as OSError).message).toMatch(words);
  return caught as OSError;
}

const read = (message: ReturnType<Lane["take"]>): Promise<Uint8Array> =>
  new Promise((resolve, reject) => message!.read((error, bytes) => (error ? reject(error) : resolve(bytes))));

const piece = (region: number, offset: number, length: number, total: number, flags = FIRST | LAST): Notice => ({ kind: PIECE, region, flags, offset, length, total });

describe("lane: malformed notices", () => {
  const bodies: Array<[string, number[], RegExp]> = [
    ["too short", [1, 0, 0], /malformed notice \(3 bytes\)/],
    ["unknown kind", [9, 0, 0, 0, 0, 0, 0, 0], /unknown kind 9/],
    ["reserved bytes set", [2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], /reserved bytes/],
    ["a PIECE of the wrong size", [1, 3, 1, 0, 0, 0, 0, 0], /kind 1 with 8 bytes/],
    ["unknown flags", [1, 0x80, 1, 0, 0, 0, 0, 0, ...Array(24).fill(0)], /flags 0x80/],
    ["a number past 2**53", [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0], /past 2\*\*53/],
    ["a RELEASE with a region", [2, 0, 5, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], /flags or region set/],
  ];
  for (const [name, bytes, words] of bodies) {
    test(name, () => {
      const { lane, take } = victim();
      expectProtocolError(() => take(Uint8Array.from(bytes)), words);
      // The lane is closed: nothing more is followed.
      expect(() => take({ kind: RETIRE, region: 1 })).toThrow(OSError);
      expect(lane.carries(1 << 30)).toBe(false);
    });
  }
});

describe("lane: pieces that do not fit", () => {
  test("a piece in a region never offered", () => {
    const { take } = victim();
    expectProtocolError(() => take(piece(3, 0, 10, 10)), /region 3, which is unknown/);
  });

  test("a piece past the end of its region, or far beyond it", () => {
    for (const [offset, length] of [
      [16 * PAGE - 10, 11],
      [2 ** 52, 1],
      [0, 2 ** 40],
    ]) {
      const { take, offer } = victim();
      offer(1);
      expectProtocolError(() => take(piece(1, offset!, length!, length!)), /a piece of \d+ bytes at \d+ in a region of 65536/);
    }
  });

  test("an empty piece", () => {
    const { take, offer } = victim();
    offer(1);
    expectProtocolError(() => take(piece(1, 0, 0, 0)), /a piece of 0 bytes/);
  });

  test("more pieces outstanding than the region can hold, or overlapping", () => {
    const { take, offer } = victim();
    offer(1, 2 * PAGE);
    take(piece(1, 0, 10, 10));
    take(piece(1, 0, 10, 10)); // same place twice: the count still bounds what is held
    expectProtocolError(() => take(piece(1, 0, 10, 10)), /more pieces outstanding than region 1 can hold/);
  });

  test("pieces whose bytes add up to more than the region", () => {
    const { take, offer } = victim();
    offer(1, 4 * PAGE);
    take(piece(1, 0, 3 * PAGE, 3 * PAGE));
    expectProtocolError(() => take(piece(1, 0, 2 * PAGE, 2 * PAGE)), /more pieces outstanding/);
  });

  test("a message whose first piece is longer than the message", () => {
    const { take, offer } = victim();
    offer(1);
    expectProtocolError(() => take(piece(1, 0, 20, 10)), /a message of 10 bytes with a first piece of 20/);
  });

  test("a later piece with no message begun, and a message begun inside another", () => {
    const a = victim();
    a.offer(1);
    expectProtocolError(() => a.take(piece(1, 0, 10, 0, LAST)), /a piece outside any message/);
    const b = victim();
    b.offer(1);
    b.take(piece(1, 0, PAGE, 3 * PAGE, FIRST));
    expectProtocolError(() => b.take(piece(1, PAGE, 10, 10)), /a new message began inside another/);
  });

  test("pieces that overshoot the message, or stop short of it with LAST", () => {
    const a = victim();
    a.offer(1);
    a.take(piece(1, 0, PAGE, 2 * PAGE, FIRST));
    expectProtocolError(() => a.take(piece(1, PAGE, 2 * PAGE, 0, LAST)), /do not add up to the message's 8192 bytes/);
    const b = victim();
    b.offer(1);
    b.take(piece(1, 0, PAGE, 3 * PAGE, FIRST));
    expectProtocolError(() => b.take(piece(1, PAGE, PAGE, 0, LAST)), /do not add up/);
    const c = victim();
    c.offer(1);
    expectProtocolError(() => c.take(piece(1, 0, PAGE, 2 * PAGE, FIRST | LAST)), /do not add up/);
  });

  test("a read in progress ends with the error when a bad notice follows", async () => {
    const { take, offer } = victim();
    offer(1);
    const message = take(piece(1, 0, PAGE, 3 * PAGE, FIRST));
    const reading = read(message);
    expectProtocolError(() => take(piece(9, 0, PAGE, 0)), /region 9/);
    const error = await reading.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).code).toBe("EPROTO");
  });

  test("a message claiming 2**50 bytes fails its own read with ENOMEM", async () => {
    const { take, offer } = victim();
    offer(1);
    const message = take(piece(1, 0, PAGE, 2 ** 50, FIRST));
    const error = await read(message).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).code).toBe("ENOMEM");
  });

  test("a piece in a retired region; retiring twice or an unknown region", () => {
    const a = victim();
    a.offer(1);
    a.take(piece(1, 0, 10, 10)); // unread: the region stays until it is consumed
    a.take({ kind: RETIRE, region: 1 });
    expectProtocolError(() => a.take(piece(1, PAGE, 10, 10)), /region 1, which is retired/);
    const c = victim();
    c.offer(1);
    c.take({ kind: RETIRE, region: 1 }); // nothing outstanding: unmapped at once, then unknown
    expectProtocolError(() => c.take(piece(1, 0, 10, 10)), /region 1, which is unknown/);
    const b = victim();
    expectProtocolError(() => b.take({ kind: RETIRE, region: 4 }), /region 4 retired, which is unknown/);
  });
});

describe("lane: messages in pieces of PIPELINE_PIECE", () => {
  const P = PIPELINE_PIECE;

  test("a message in four pieces is read whole; one whose next piece runs past the region, or overshoots its length, is EPROTO", async () => {
    const { take, offer } = victim();
    const region = offer(1, 4 * P);
    region.bytes.set(Uint8Array.from({ length: 4 * P }, (_, i) => (i * 7) & 0xff));
    const whole = take(piece(1, 0, P, 4 * P, FIRST));
    for (const k of [1, 2]) take(piece(1, k * P, P, 0, 0));
    take(piece(1, 3 * P, P, 0, LAST));
    expect(Buffer.from(await read(whole)).equals(Buffer.from(region.bytes))).toBe(true);

    const { take: takeB, offer: offerB } = victim();
    offerB(1, 4 * P);
    const cut = takeB(piece(1, 0, P, 4 * P, FIRST));
    const failed = read(cut).catch((e: unknown) => e);
    takeB(piece(1, P, P, 0, 0));
    expectProtocolError(() => takeB(piece(1, 3 * P + PAGE, P, 0, 0)), new RegExp(`a piece of ${P} bytes at ${3 * P + PAGE} in a region of ${4 * P}`));
    expect(((await failed) as OSError).code).toBe("EPROTO");

    const { take: takeC, offer: offerC } = victim();
    offerC(1, 4 * P);
    takeC(piece(1, 0, P, 3 * P - 1, FIRST));
    takeC(piece(1, P, P, 0, 0));
    expectProtocolError(() => takeC(piece(1, 2 * P, P, 0, LAST)), new RegExp(`do not add up to the message's ${3 * P - 1} bytes`));
  });
});

describe("lane: regions that are not what they claim", () => {
  test("offers out of order, of odd or excessive sizes, or too many at once", () => {
    const a = victim();
    a.offer(2);
    expectProtocolError(() => a.offer(2), /region 2 offered after region 2/);
    const b = victim();
    expectProtocolError(() => b.take({ kind: OFFER, region: 1, size: PAGE + 1, ticket: new Uint8Array(0) }), /a region of 4097 bytes/);
    const c = victim({ maxRegion: 64 * PAGE });
    expectProtocolError(() => c.take({ kind: OFFER, region: 1, size: 128 * PAGE, ticket: new Uint8Array(0) }), /a region of 524288 bytes \(limit 262144\)/);
    const d = victim();
    for (let id = 1; id <= 16; id++) d.offer(id, PAGE);
    expectProtocolError(() => d.offer(17, PAGE), /more than 16 regions at once/);
  });

  /** Offer `fd` as region 1 of `size` bytes and try to read a message from it. */
  async function readFrom(fd: number, size: number): Promise<unknown> {
    const { take, offered } = victim();
    offered.set(1, fd);
    take({ kind: OFFER, region: 1, size, ticket: Uint8Array.of(1) });
    return read(take(piece(1, 0, 100, 100))).catch((e: unknown) => e);
  }

  const libc = dlopen("libc.so.6", {
    memfd_create: { args: ["buffer", "u32"], returns: "i32" },
    ftruncate: { args: ["i32", "i64"], returns: "i32" },
  }).symbols;

  test("a descriptor that is not a memory file (a socket) is refused, and closed", async () => {
    const before = readdirSync("/proc/self/fd").length;
    const [x, y] = socketpair();
    closeFd(y);
    const error = await readFrom(x, 16 * PAGE);
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).message).toMatch(/not a memory file/);
    expect(readdirSync("/proc/self/fd").length).toBe(before);
  });

  test("a memory file that could still shrink is refused: a mapping of it could fault", async () => {
    const fd = libc.memfd_create(Buffer.from("unsealed\0"), 1);
    expect(libc.ftruncate(fd, 16 * PAGE)).toBe(0);
    const error = await readFrom(fd, 16 * PAGE);
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).message).toMatch(/not sealed against shrinking/);
  });

  test("a sealed memory file smaller than announced is refused", async () => {
    const region = Region.create(1, 4 * PAGE);
    const fd = region.shareReadOnly();
    region.close();
    const error = await readFrom(fd, 16 * PAGE);
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).message).toMatch(/has 16384 bytes, 65536 were announced/);
  });

  test("whatever the peer writes into its region is only ever its own message's bytes", async () => {
    const { take, offer } = victim();
    const region = offer(1, 4 * PAGE);
    region.bytes.fill(7);
    const message = take(piece(1, PAGE, 2 * PAGE, 2 * PAGE));
    region.bytes.fill(9); // changed under the notice: the receiver copies what is there, nothing else
    const got = await read(message);
    expect(got.byteLength).toBe(2 * PAGE);
    expect(got.every((v) => v === 9)).toBe(true);
  });
});

describe("lane: releases that do not fit", () => {
  /** A lane that has sent one message of two pieces (maxSize 64 KiB: pieces of 32 KiB). */
  function sentTwoPieces() {
    const v = victim({ threshold: 1, initialSize: 16 * PAGE, maxSize: 16 * PAGE });
    const out = v.lane.send(new Uint8Array(12 * PAGE));
    while (out.pull());
    return v;
  }

  for (const [name, count] of [
    ["zero", 0],
    ["more than were placed", 3],
    ["far more than were placed", 2 ** 40],
  ] as const) {
    test(`a RELEASE of ${name}`, () => {
      const { lane, take } = sentTwoPieces();
      expectProtocolError(() => take({ kind: RELEASE, count }), /the peer released/);
      expect(lane.carries(1 << 20)).toBe(false);
    });
  }

  test("a RELEASE that goes backwards", () => {
    const { take } = sentTwoPieces();
    take({ kind: RELEASE, count: 2 });
    expectProtocolError(() => take({ kind: RELEASE, count: 1 }), /released 1 pieces, but 2 were released/);
  });
});
