// The decoder's hook for the shared-memory lane's notices (length field -2): with the hook, each
// notice comes out whole and in its place among the frames, however the stream is cut; without
// it, -2 stays the invalid length it is for CPython.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { FrameDecoder, type FrameSink } from "../../src/frames/decoder.ts";
import { frameHeader } from "../../src/frames/encoder.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

type Event = string;

function notice(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(8 + body.byteLength);
  const view = new DataView(frame.buffer);
  view.setInt32(0, -2);
  view.setUint32(4, body.byteLength);
  frame.set(body, 8);
  return frame;
}

function framed(body: Uint8Array): Uint8Array {
  const head = frameHeader(body.byteLength);
  const out = new Uint8Array(head.byteLength + body.byteLength);
  out.set(head);
  out.set(body, head.byteLength);
  return out;
}

const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

const fill = (size: number, seed: number): Uint8Array => Uint8Array.from({ length: size }, (_, i) => (i * 7 + seed) & 0xff);
const describeBody = (kind: string, body: Uint8Array): Event => `${kind}:${body.byteLength}:${body[0] ?? "-"}:${body.at(-1) ?? "-"}`;

function decode(stream: Uint8Array, cut: (i: number) => number, hook: boolean): Event[] {
  const events: Event[] = [];
  const sink: FrameSink = {
    frame: (body) => void events.push(describeBody("frame", body)),
    begin: () => {},
    invalid: (length) => void events.push(`invalid:${length}`),
  };
  const decoder = new FrameDecoder(sink);
  if (hook) {
    decoder.notices = (body) => {
      events.push(describeBody("notice", body));
      return true;
    };
  }
  for (let at = 0, i = 0; at < stream.byteLength; i++) {
    const size = Math.max(1, cut(i));
    decoder.push(stream.slice(at, at + size));
    at += size;
  }
  events.push(`eof:${decoder.eof()}`);
  decoder.dispose();
  return events;
}

const parts: Array<["frame" | "notice", Uint8Array]> = [
  ["frame", fill(10, 1)],
  ["notice", fill(32, 2)],
  ["notice", fill(16, 3)],
  ["frame", fill(0, 4)],
  ["frame", fill(70_000, 5)],
  ["notice", fill(48 + 60, 6)],
  ["frame", fill(3, 7)],
  ["notice", fill(8, 8)],
];
const stream = concat(parts.map(([kind, body]) => (kind === "frame" ? framed(body) : notice(body))));
const expected = [...parts.map(([kind, body]) => describeBody(kind, body)), "eof:clean"];

describe("FrameDecoder with a notice hook", () => {
  test("whole stream in one chunk", () => {
    expect(decode(stream, () => stream.byteLength, true)).toEqual(expected);
  });

  for (const size of [1, 2, 3, 5, 7, 8, 9, 13, 4096, 65_537]) {
    test(`chunks of ${size} bytes`, () => {
      expect(decode(stream, () => size, true)).toEqual(expected);
    });
  }

  test("chunks of varying sizes (fixed pseudo-random sequence)", () => {
    for (let seed = 1; seed <= 20; seed++) {
      let x = seed;
      const next = (): number => {
        x = (x * 1103515245 + 12345) & 0x7fffffff;
        return 1 + (x % 300);
      };
      expect(decode(stream, next, true)).toEqual(expected);
    }
  });

  test("a stream cut inside a notice ends truncated", () => {
    const cut = stream.subarray(0, framed(fill(10, 1)).byteLength + 12);
    expect(decode(cut, () => 5, true).at(-1)).toBe("eof:truncated");
  });

  test("a notice longer than 4 KiB is an invalid length, and nothing after it is decoded", () => {
    const bad = concat([notice(fill(5000, 1)), framed(fill(3, 2))]);
    expect(decode(bad, () => 100, true)).toEqual(["invalid:-2", "eof:clean"]);
  });

  test("without the hook, -2 is an invalid length as for CPython", () => {
    expect(decode(stream, () => stream.byteLength, false)).toEqual([describeBody("frame", fill(10, 1)), "invalid:-2", "eof:clean"]);
    expect(decode(stream, () => 3, false)).toEqual([describeBody("frame", fill(10, 1)), "invalid:-2", "eof:clean"]);
  });
});
