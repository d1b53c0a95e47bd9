// FrameDecoder / FrameBatch / frameHeader against the reference framer (test/fixtures/reference-framer.ts):
// hand-picked edge cases first, then fast-check properties over random streams, random
// chunkings and random damage. Seeds are fixed so a failure reproduces on every run.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import fc from "fast-check";
import { FrameDecoder, type FrameSink } from "../../src/frames/decoder.ts";
import { FrameBatch, frameHeader } from "../../src/frames/encoder.ts";
import { encodeFrames, headerStarts, ReferenceDecoder } from "../fixtures/reference-framer.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

// ---- helpers ---------------------------------------------------------------------------

/** A body whose bytes depend on its index and a salt, so reordered or mixed-up bodies show. */
function makeBody(size: number, index: number, salt = 0): Uint8Array {
  const body = new Uint8Array(size);
  for (let j = 0; j < size; j++) body[j] = (index * 131 + j * 7 + salt) & 0xff;
  return body;
}

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

/** Cut `stream` into chunks whose sizes cycle through `sizes`. */
function chunked(stream: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0, i = 0; at < stream.byteLength; i++) {
    const size = sizes[i % sizes.length]!;
    chunks.push(stream.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

interface Decoded {
  bodies: Uint8Array[];
  begins: number[];
  invalid: number[];
  eof: "clean" | "truncated";
}

/**
 * Feed chunks to a fresh FrameDecoder. Bodies are kept as delivered (not copied), so a body
 * that aliased reusable memory would show up corrupted by the time we compare.
 */
function decode(chunks: readonly Uint8Array[]): Decoded {
  const got: Omit<Decoded, "eof"> = { bodies: [], begins: [], invalid: [] };
  let pendingBegin: number | undefined;
  const sink: FrameSink = {
    frame(body) {
      if (got.invalid.length > 0) throw new Error("frame() after invalid()");
      // A begin(length) announces the very next frame.
      if (pendingBegin !== undefined && body.byteLength !== pendingBegin) {
        throw new Error(`begin(${pendingBegin}) was followed by a ${body.byteLength}-byte frame`);
      }
      pendingBegin = undefined;
      got.bodies.push(body);
    },
    begin(length) {
      if (pendingBegin !== undefined) throw new Error("begin() twice without a frame between");
      if (got.invalid.length > 0) throw new Error("begin() after invalid()");
      pendingBegin = length;
      got.begins.push(length);
    },
    invalid(length) {
      if (got.invalid.length > 0) throw new Error("invalid() twice");
      got.invalid.push(length);
    },
  };
  const decoder = new FrameDecoder(sink);
  try {
    for (const chunk of chunks) decoder.push(chunk);
    return { ...got, eof: decoder.eof() };
  } finally {
    decoder.dispose();
  }
}

function referenceDecode(chunks: readonly Uint8Array[]): Omit<Decoded, "begins"> {
  const reference = new ReferenceDecoder();
  const bodies: Uint8Array[] = [];
  for (const chunk of chunks) bodies.push(...reference.push(chunk).bodies);
  return { bodies, invalid: reference.invalid === undefined ? [] : [reference.invalid], eof: reference.eof() };
}

/** Same bodies in the same order; reports the first difference rather than two huge arrays. */
function expectSameBodies(actual: readonly Uint8Array[], expected: readonly Uint8Array[]): void {
  expect(actual.map((b) => b.byteLength)).toEqual(expected.map((b) => b.byteLength));
  for (let i = 0; i < expected.length; i++) {
    if (!Buffer.from(actual[i]!).equals(expected[i]!)) throw new Error(`body ${i} differs`);
  }
}

// ---- frameHeader -----------------------------------------------------------------------

describe("frameHeader", () => {
  test("4 bytes, big-endian, up to and including 0x7fffffff", () => {
    expect(frameHeader(0)).toEqual(bytes(0, 0, 0, 0));
    expect(frameHeader(258)).toEqual(bytes(0, 0, 1, 2));
    expect(frameHeader(0x7fffffff)).toEqual(bytes(0x7f, 0xff, 0xff, 0xff));
  });

  test("12 bytes from 2^31: the -1 marker, then a u64 length", () => {
    expect(frameHeader(2 ** 31)).toEqual(bytes(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0));
    expect(frameHeader(2 ** 40 + 5)).toEqual(bytes(0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0, 0, 0, 0, 5));
  });

  test("returns a fresh copy each time", () => {
    const first = frameHeader(1);
    frameHeader(2);
    expect(first).toEqual(bytes(0, 0, 0, 1));
  });

  test("agrees with the reference encoder", () => {
    for (const size of [0, 1, 255, 256, 65535, 65536, 0x7fffffff]) {
      const reference = new DataView(new ArrayBuffer(4));
      reference.setInt32(0, size);
      expect(frameHeader(size)).toEqual(new Uint8Array(reference.buffer));
    }
  });
});

// ---- FrameDecoder: edge cases ------------------------------------------------------------

describe("FrameDecoder", () => {
  test("empty frames, in one chunk and byte by byte", () => {
    const stream = encodeFrames([new Uint8Array(0), makeBody(3, 1), new Uint8Array(0), new Uint8Array(0)]);
    for (const chunks of [[stream], chunked(stream, [1])]) {
      const got = decode(chunks);
      expect(got.bodies.map((b) => b.byteLength)).toEqual([0, 3, 0, 0]);
      expect(got.eof).toBe("clean");
    }
  });

  test("an empty frame in the 12-byte form", () => {
    const got = decode([encodeFrames([new Uint8Array(0), makeBody(2, 0)], { long: [true, true] })]);
    expect(got.bodies).toEqual([new Uint8Array(0), makeBody(2, 0)]);
  });

  test("a frame inside one chunk is a view of that chunk, not a copy", () => {
    const stream = encodeFrames([makeBody(10, 0), makeBody(20, 1)]);
    const got = decode([stream]);
    expect(got.bodies.map((b) => [b.buffer === stream.buffer, b.byteOffset])).toEqual([
      [true, 4],
      [true, 18],
    ]);
    expect(got.begins).toEqual([]);
  });

  test("the 12-byte header form for small bodies", () => {
    const bodies = [makeBody(5, 0), makeBody(0, 1), makeBody(300, 2), makeBody(1, 3)];
    const got = decode([encodeFrames(bodies, { long: [true, false, true, true] })]);
    expectSameBodies(got.bodies, bodies);
    expect(got.eof).toBe("clean");
  });

  test("split into two and three chunks at every position", () => {
    const bodies = [makeBody(7, 0), makeBody(0, 1), makeBody(9, 2), makeBody(3, 3)];
    const stream = encodeFrames(bodies, { long: [false, true, true, false] });
    for (let a = 0; a <= stream.byteLength; a++) {
      expectSameBodies(decode([stream.subarray(0, a), stream.subarray(a)]).bodies, bodies);
      for (let b = a; b <= stream.byteLength; b++) {
        const chunks = [stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)];
        expectSameBodies(decode(chunks).bodies, bodies);
      }
    }
  });

  test("more frames in a chunk than the codec's entry table holds", () => {
    // 10,000 empty frames, then a real one: the decoder must call the codec again.
    const bodies = [...Array.from({ length: 10_000 }, () => new Uint8Array(0)), makeBody(9, 1)];
    const got = decode([encodeFrames(bodies)]);
    expectSameBodies(got.bodies, bodies);
  });

  test("frames of one size, then others: the same bodies through frame() and through frames()", () => {
    // After a few chunks the decoder guesses where headers lie (frames keep one size); each
    // chunk ends with a frame of another size, or with one cut by the chunk's end, and then
    // the size changes for good.
    const sizes = [...Array.from({ length: 300 }, (_, i) => (i % 50 === 49 ? 7 : 60)), ...Array.from({ length: 100 }, () => 33)];
    const bodies = sizes.map((size, i) => makeBody(size, i));
    const stream = encodeFrames(bodies);
    for (const cut of [[64 * 50 + 11], [1000, 3200, 77], [stream.byteLength]]) {
      const chunks = chunked(stream, cut);
      expectSameBodies(decode(chunks).bodies, bodies);
      const batched: Uint8Array[] = [];
      const decoder = new FrameDecoder({
        frame: (body) => void batched.push(body),
        frames(buffer, base, table, count) {
          for (let i = 0; i < count; i++) {
            const offset = base + (table[2 * i]! & 0xffffff);
            batched.push(buffer.slice(offset, offset + table[2 * i + 1]!));
          }
        },
        begin() {},
        invalid: (length) => {
          throw new Error(`invalid(${length})`);
        },
      });
      for (const chunk of chunks) decoder.push(chunk);
      decoder.dispose();
      expectSameBodies(batched, bodies);
    }
  });

  test("a stream that changes its frame size for good is again decoded many frames per call", () => {
    // 300 frames of 60 B, then 300 of 33 B, in chunks of ~4 KiB: the decoder guesses 60 B frames,
    // then must learn 33 B from the frames themselves rather than take them one per codec call.
    const bodies = [...Array.from({ length: 300 }, (_, i) => makeBody(60, i)), ...Array.from({ length: 300 }, (_, i) => makeBody(33, i + 300))];
    const chunks = chunked(encodeFrames(bodies), [4096]);
    const calls: number[] = [];
    const got: Uint8Array[] = [];
    const decoder = new FrameDecoder({
      frame: (body) => void got.push(body),
      frames(buffer, base, table, count) {
        calls.push(count);
        for (let i = 0; i < count; i++) {
          const offset = base + (table[2 * i]! & 0xffffff);
          got.push(buffer.slice(offset, offset + table[2 * i + 1]!));
        }
      },
      begin() {},
      invalid: (length) => {
        throw new Error(`invalid(${length})`);
      },
    });
    for (const chunk of chunks) decoder.push(chunk);
    decoder.dispose();
    expectSameBodies(got, bodies);
    // The 33 B frames fill ~3 chunks of 110 frames: a handful of calls each, not one per frame.
    const afterChange = calls.slice(calls.findIndex((_, i) => calls.slice(0, i + 1).reduce((a, b) => a + b, 0) >= 300) + 1);
    expect(afterChange.length).toBeLessThan(30);
  });

  test("a chunk larger than the codec's input region", () => {
    // ~1.3 MiB in one chunk, with frames straddling the 1 MiB boundary.
    const bodies = Array.from({ length: 330 }, (_, i) => makeBody(i % 3 === 0 ? 4093 : 4099, i));
    const stream = encodeFrames(bodies, { long: bodies.map((_, i) => i % 5 === 0) });
    expect(stream.byteLength).toBeGreaterThan(1 << 20);
    expectSameBodies(decode([stream]).bodies, bodies);
    expectSameBodies(decode([stream.subarray(0, 1000), stream.subarray(1000)]).bodies, bodies);
  });

  test("a body longer than the chunks that carry it", () => {
    const bodies = [makeBody(200_000, 0), makeBody(10, 1)];
    const stream = encodeFrames(bodies);
    const got = decode(chunked(stream, [3, 65536, 1, 4096]));
    expectSameBodies(got.bodies, bodies);
    expect(got.begins).toEqual([200_000]);
  });

  describe("invalid lengths", () => {
    for (const [name, header, length] of [
      ["0x80000000", bytes(0x80, 0, 0, 0), -(2 ** 31)],
      ["0xfffffffe", bytes(0xff, 0xff, 0xff, 0xfe), -2],
      ["a u64 length past 2^53 - 1", bytes(0xff, 0xff, 0xff, 0xff, 0, 0x20, 0, 0, 0, 0, 0, 0), 2 ** 53],
    ] as const) {
      test(`${name} → invalid(), and nothing after it is reported`, () => {
        const before = encodeFrames([makeBody(4, 0)]);
        const after = encodeFrames([makeBody(4, 1), makeBody(0, 2)]);
        const stream = new Uint8Array([...before, ...header, ...after]);
        // Whole, byte by byte, and split inside the bad header (the codec's slow path).
        for (const chunks of [[stream], chunked(stream, [1]), chunked(stream, [6, 3])]) {
          const got = decode([...chunks, after]);
          expectSameBodies(got.bodies, [makeBody(4, 0)]);
          expect(got.invalid).toEqual([length]);
        }
      });
    }
  });

  describe("eof()", () => {
    const long = encodeFrames([makeBody(5, 0)], { long: [true] });
    const short = encodeFrames([makeBody(5, 0)]);
    const cases: Array<[string, Uint8Array, "clean" | "truncated"]> = [
      ["nothing received", new Uint8Array(0), "clean"],
      ["after a whole frame", short, "clean"],
      ["after a whole 12-byte-header frame", long, "clean"],
      ["1 header byte", short.subarray(0, 1), "truncated"],
      ["3 header bytes", short.subarray(0, 3), "truncated"],
      ["a whole 4-byte header, no body byte", short.subarray(0, 4), "clean"],
      ["a header and part of the body", short.subarray(0, 6), "truncated"],
      ["all but the last body byte", short.subarray(0, 8), "truncated"],
      ["the ffffffff marker, no length byte", long.subarray(0, 4), "clean"],
      ["the marker and 1 length byte", long.subarray(0, 5), "truncated"],
      ["the marker and 7 length bytes", long.subarray(0, 11), "truncated"],
      ["the whole 12-byte header, no body byte", long.subarray(0, 12), "clean"],
      ["a 12-byte header and part of the body", long.subarray(0, 13), "truncated"],
    ];
    for (const [name, received, expected] of cases) {
      test(`${name} → ${expected}`, () => {
        const prefixes = [new Uint8Array(0), short];
        for (const prefix of prefixes) {
          const stream = new Uint8Array([...prefix, ...received]);
          for (const chunks of [[stream], chunked(stream, [1])]) {
            expect(decode(chunks).eof).toBe(expected);
            expect(referenceDecode(chunks).eof).toBe(expected);
          }
        }
      });
    }
  });

  test("a header claiming 2^40 bytes allocates only what arrives", () => {
    const before = process.memoryUsage().rss;
    const claims = [2 ** 40, 0x7fffffff, 2 ** 32 + 1];
    for (const claim of claims) {
      const header = frameHeader(claim);
      // A few body bytes, then 1 MiB more in pieces: storage should follow the bytes received.
      const got = decode([header, bytes(1, 2, 3), ...chunked(new Uint8Array(1 << 20), [65536])]);
      expect(got.begins).toEqual([claim]);
      expect(got.bodies).toEqual([]);
      expect(got.eof).toBe("truncated");
    }
    // Eagerly allocating a claim would throw (2^40) or commit gigabytes; allow generous slack.
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 2 ** 20);
  });

  test("a body spanning chunks is written into the destination the sink names, and reported as it", () => {
    const body = makeBody(300_000, 4);
    const target = new Uint8Array(400_000);
    const reported: Uint8Array[] = [];
    const asked: number[] = [];
    const decoder = new FrameDecoder({
      frame: (b) => void reported.push(b),
      begin: () => true,
      invalid: () => {},
      destination: (length) => {
        asked.push(length);
        return target.subarray(100, 100 + length);
      },
    });
    for (const chunk of chunked(encodeFrames([makeBody(5, 1), body, makeBody(7, 2)]), [70_000])) decoder.push(chunk);
    expect(asked).toEqual([300_000]);
    expect(reported.map((b) => b.byteLength)).toEqual([5, 300_000, 7]);
    expect(reported[1]!.buffer).toBe(target.buffer);
    expect(reported[1]!.byteOffset).toBe(100);
    expect(reported[1]).toEqual(body);
  });

  test("pushes after invalid() and empty chunks are ignored", () => {
    const got = decode([new Uint8Array(0), bytes(0x80, 0, 0, 1), encodeFrames([makeBody(3, 0)]), new Uint8Array(0)]);
    expect(got.bodies).toEqual([]);
    expect(got.invalid).toEqual([-(2 ** 31) + 1]);
  });

  // Sinks that send (growing codec memory) or decode another stream while a chunk is reported.
  describe("re-entrant sinks", () => {
    const stream = encodeFrames([makeBody(1, 0), makeBody(1, 1), makeBody(1, 2)]);

    test("wasm memory growing inside frame() does not lose the rest of the chunk", () => {
      // Replying from frame() takes a send block; with the pool empty that grows wasm memory,
      // which detaches the views FrameDecoder.scan() read its entry table through.
      const held: FrameBatch[] = [];
      const bodies: Uint8Array[] = [];
      const decoder = new FrameDecoder({
        frame(body) {
          bodies.push(body);
          const reply = new FrameBatch();
          reply.add(new Uint8Array(1));
          held.push(reply);
        },
        begin() {},
        invalid() {},
      });
      decoder.push(stream);
      for (const reply of held) reply.release();
      decoder.dispose();
      expectSameBodies(bodies, [makeBody(1, 0), makeBody(1, 1), makeBody(1, 2)]);
    });

    test("another decoder pushed inside frame() does not disturb the outer one", () => {
      const inner = new FrameDecoder({ frame() {}, begin() {}, invalid() {} });
      const bodies: Uint8Array[] = [];
      const outer = new FrameDecoder({
        frame(body) {
          bodies.push(body);
          if (bodies.length === 1) inner.push(encodeFrames([makeBody(3, 9), new Uint8Array(0), new Uint8Array(0)]));
        },
        begin() {},
        invalid() {},
      });
      outer.push(stream);
      inner.dispose();
      outer.dispose();
      expectSameBodies(bodies, [makeBody(1, 0), makeBody(1, 1), makeBody(1, 2)]);
    });
  });
});

// ---- FrameBatch: edge cases --------------------------------------------------------------

/** The framed bytes of a sealed batch, copied out of wasm memory. */
function sealed(batch: FrameBatch): Uint8Array {
  return batch.seal().slice();
}

describe("FrameBatch", () => {
  test("add + seal gives the reference encoding, and clear() starts over", () => {
    const batch = new FrameBatch();
    try {
      const bodies = [makeBody(0, 0), makeBody(64, 1), makeBody(4096, 2), makeBody(1, 3)];
      for (const body of bodies) expect(batch.add(body)).toBe(true);
      expect(batch.count).toBe(4);
      expect(sealed(batch)).toEqual(encodeFrames(bodies));
      batch.clear();
      expect(batch.add(makeBody(5, 9))).toBe(true);
      expect(sealed(batch)).toEqual(encodeFrames([makeBody(5, 9)]));
    } finally {
      batch.release();
    }
  });

  test("an empty batch seals to nothing, before and after it took a block", () => {
    const batch = new FrameBatch();
    expect(sealed(batch)).toEqual(new Uint8Array(0));
    batch.add(makeBody(3, 0));
    batch.clear();
    expect(sealed(batch)).toEqual(new Uint8Array(0));
    batch.release();
  });

  test("keep() hands the rest of the sealed bytes to a write queue; the batch starts afresh", () => {
    const batch = new FrameBatch();
    const bodies = [makeBody(10, 0), makeBody(20, 1)];
    for (const body of bodies) batch.add(body);
    const framed = sealed(batch);
    const kept = batch.keep(7);
    expect(batch.count).toBe(0);
    // The batch goes on with a block of its own; the kept bytes stay as they were.
    expect(batch.add(makeBody(5, 2))).toBe(true);
    expect(sealed(batch)).toEqual(encodeFrames([makeBody(5, 2)]));
    expect(kept.view()).toEqual(framed.subarray(7));
    kept.release();
    batch.release();
  });

  test("add() refuses what does not fit, and the batch stays intact", () => {
    const batch = new FrameBatch();
    try {
      for (let i = 0; i < FrameBatch.MAX_FRAMES; i++) expect(batch.add(new Uint8Array(0))).toBe(true);
      expect(batch.add(new Uint8Array(0))).toBe(false);
      expect(sealed(batch)).toEqual(new Uint8Array(4 * FrameBatch.MAX_FRAMES));
      batch.clear();
      const room = FrameBatch.ROOM - 4;
      expect(batch.add(new Uint8Array(room + 1))).toBe(false);
      expect(batch.add(makeBody(room, 1))).toBe(true);
      expect(sealed(batch)).toEqual(encodeFrames([makeBody(room, 1)]));
    } finally {
      batch.release();
    }
  });
});

// ---- properties --------------------------------------------------------------------------

const frameArb = fc.record({
  size: fc.oneof(fc.integer({ min: 0, max: 16 }), fc.integer({ min: 0, max: 5000 })),
  // About one frame in five uses the 12-byte header.
  long: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
});
const framesArb = fc.array(frameArb, { maxLength: 40, size: "max" });
/** Chunk sizes, cycled: single bytes, header-sized bits, and chunks spanning many frames. */
const chunkSizesArb = fc.array(
  fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 8192 }), fc.integer({ min: 1, max: 1 << 18 })),
  { minLength: 1, maxLength: 12 },
);
/**
 * Where the stream ends: at its real end, a few bytes into some frame (where the eof() rules
 * differ: inside or right after a 4- or 12-byte header), or anywhere.
 */
const cutArb = fc.oneof(
  fc.constant("end" as const),
  fc.record({ frame: fc.nat(), past: fc.integer({ min: 0, max: 13 }) }),
  fc.nat(),
);
type Cut = typeof cutArb extends fc.Arbitrary<infer T> ? T : never;

function cutAt(cut: Cut, stream: Uint8Array, starts: readonly number[]): number {
  if (cut === "end") return stream.byteLength;
  if (typeof cut === "number") return cut % (stream.byteLength + 1);
  if (starts.length === 0) return 0;
  return Math.min(stream.byteLength, starts[cut.frame % starts.length]! + cut.past);
}

/**
 * Fixed seeds; a failing property stops shrinking after a few seconds rather than leaving the
 * suite running for minutes (a synchronous property cannot be cut short by the test timeout).
 */
function runs(seed: number, numRuns: number): fc.Parameters<unknown> {
  return { seed, numRuns, interruptAfterTimeLimit: 8_000, markInterruptAsFailure: true };
}

type Frame = { size: number; long: boolean };
function build(frames: readonly Frame[], salt: number): { bodies: Uint8Array[]; stream: Uint8Array } {
  const bodies = frames.map((f, i) => makeBody(f.size, i, salt));
  return { bodies, stream: encodeFrames(bodies, { long: frames.map((f) => f.long) }) };
}

describe("properties", () => {
  test("decoding random streams, cut and chunked at random, matches the reference", () => {
    fc.assert(
      fc.property(framesArb, fc.nat(255), chunkSizesArb, cutArb, (frames, salt, sizes, cut) => {
        const { bodies, stream } = build(frames, salt);
        const end = cutAt(cut, stream, headerStarts(frames));
        const chunks = chunked(stream.subarray(0, end), sizes);
        const expected = referenceDecode(chunks);
        const got = decode(chunks);
        expectSameBodies(got.bodies, expected.bodies);
        expect(got.invalid).toEqual([]);
        expect(got.eof).toBe(expected.eof);
        // And the oracle itself gets back what was encoded.
        if (cut === "end") expectSameBodies(expected.bodies, bodies);
      }),
      runs(0x5eed_0001, 1000),
    );
  }, 10_000);

  test("FrameBatch.seal() matches the reference encoder on random batches", () => {
    const sizeArb = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 40_000 }));
    fc.assert(
      fc.property(fc.array(sizeArb, { maxLength: 120, size: "max" }), fc.nat(255), (sizes, salt) => {
        const batch = new FrameBatch();
        try {
          let pending: Uint8Array[] = [];
          const flush = (): void => {
            expect(batch.count).toBe(pending.length);
            expect(sealed(batch)).toEqual(encodeFrames(pending));
            batch.clear();
            pending = [];
          };
          let used = 0;
          sizes.forEach((size, i) => {
            const body = makeBody(size, i, salt);
            if (!batch.add(body)) {
              // Refused only when really full; then it must fit in a fresh batch.
              expect(batch.count === FrameBatch.MAX_FRAMES || used + 4 + size > FrameBatch.ROOM).toBe(true);
              flush();
              used = 0;
              expect(batch.add(body)).toBe(true);
            }
            used += 4 + size;
            pending.push(body);
          });
          flush();
        } finally {
          batch.release();
        }
      }),
      runs(0x5eed_0002, 200),
    );
  }, 10_000);

  test("damaged streams: no throw, no hang, the same bodies and verdict as the reference", () => {
    // Damage aimed at header positions (where it matters most) or anywhere.
    const headerValues = [0xffffffff, 0x80000000, 0xfffffffe, 0x7fffffff, 0, 1, 5000, 0x00010000];
    const damageArb = fc.oneof(
      fc.record({ kind: fc.constant("header" as const), frame: fc.nat(), value: fc.constantFrom(...headerValues) }),
      fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
      fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.nat(255) }),
    );
    const streamArb = fc.oneof(
      fc.record({ frames: fc.array(frameArb, { maxLength: 16, size: "max" }), salt: fc.nat(255), damage: fc.array(damageArb, { minLength: 1, maxLength: 6 }) }),
      // Pure noise, too.
      fc.uint8Array({ maxLength: 3000, size: "max" }).map((noise) => ({ noise })),
    );
    fc.assert(
      fc.property(streamArb, chunkSizesArb, cutArb, (input, sizes, cut) => {
        let stream: Uint8Array;
        let starts: number[] = [];
        if ("noise" in input) {
          stream = input.noise;
        } else {
          const built = build(input.frames, input.salt);
          stream = built.stream;
          starts = headerStarts(input.frames);
          for (const d of input.damage) {
            if (stream.byteLength === 0) break;
            if (d.kind === "header" && starts.length > 0) {
              const at = starts[d.frame % starts.length]!;
              new DataView(stream.buffer).setUint32(at, d.value);
            } else if (d.kind === "flip") {
              stream[d.at % stream.byteLength]! ^= 1 << d.bit;
            } else if (d.kind === "set") {
              stream[d.at % stream.byteLength] = d.value;
            }
          }
        }
        const end = cutAt(cut, stream, starts);
        const chunks = chunked(stream.subarray(0, end), sizes);
        const expected = referenceDecode(chunks);
        const got = decode(chunks);
        expectSameBodies(got.bodies, expected.bodies);
        expect(got.invalid).toEqual(expected.invalid);
        if (expected.invalid.length === 0) expect(got.eof).toBe(expected.eof);
      }),
      runs(0x5eed_0003, 2000),
    );
  }, 10_000);
});
