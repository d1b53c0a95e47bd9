// The lane's signal notices (HELLO, OFF, DONE): their shape is checked like every notice's, and
// what a peer can do with them only concerns its own messages.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { OSError } from "../../src/errors.ts";
import { Lane } from "../../src/lane/lane.ts";
import { DONE, HELLO, NOTICE_HEADER_SIZE, OFF, decodeNotice, encodeNotice } from "../../src/lane/notices.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const io = { control: () => {}, give: () => new Uint8Array(1), take: () => Promise.reject(new OSError("no", "ENOENT")) };

describe("signal notices", () => {
  for (const kind of [HELLO, OFF, DONE]) {
    test(`kind ${kind}: round trip, and a region, flags or extra bytes make it malformed`, () => {
      const frame = encodeNotice({ kind } as Parameters<typeof encodeNotice>[0]);
      const body = frame.subarray(NOTICE_HEADER_SIZE);
      expect(decodeNotice(body)).toEqual({ kind } as ReturnType<typeof decodeNotice>);
      const withRegion = body.slice();
      withRegion[2] = 1;
      expect(() => decodeNotice(withRegion)).toThrow(/malformed/);
      const withFlags = body.slice();
      withFlags[1] = 1;
      expect(() => decodeNotice(withFlags)).toThrow(/malformed/);
      const longer = new Uint8Array(body.byteLength + 8);
      longer.set(body);
      expect(() => decodeNotice(longer)).toThrow(/malformed/);
    });
  }

  test("HELLO turns a waiting lane on; OFF turns it off and is reported; DONE is reported", () => {
    const lane = new Lane(io, {}, false);
    const signals: string[] = [];
    lane.onSignal = (signal) => signals.push(signal);
    expect(lane.carries(1 << 20)).toBe(false);
    expect(lane.take(Lane.hello().subarray(NOTICE_HEADER_SIZE))).toBeNull();
    expect(lane.carries(1 << 20)).toBe(true);
    expect(lane.take(Lane.signal("off").subarray(NOTICE_HEADER_SIZE))).toBeNull();
    expect(lane.carries(1 << 20)).toBe(false);
    expect(lane.take(Lane.signal("done").subarray(NOTICE_HEADER_SIZE))).toBeNull();
    expect(signals).toEqual(["off", "done"]);
    lane.close();
  });
});
