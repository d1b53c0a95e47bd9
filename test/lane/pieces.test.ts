// Large messages cut into pieces (pieceSize) whose notices go out while the rest is still being
// copied in, so that the peer copies one piece out while the sender copies the next: the peer
// has the first piece before send() returns, every byte arrives exactly whatever the order of
// small and large messages, and a message announced only in part (a sender that died in the
// middle of it) fails as on the socket.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { OSError } from "../../src/errors.ts";
import { Lane, type IncomingMessage } from "../../src/lane/lane.ts";
import { FIRST, LAST, NOTICE_HEADER_SIZE, PIECE, decodeNotice } from "../../src/lane/notices.ts";
import { NOTICE_BATCH, PIPELINE_PIECE as PIECE_SIZE } from "../../src/lane/sender.ts";
import { closeFd } from "../../src/os/libc.ts";
import { memoryPair, seeded as random, seededHash as hash, type LaneEnd } from "../fixtures/lane-end.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const KiB = 1024;
const MiB = 1024 * KiB;
/** Pieces that pipeline the two copies (the default keeps messages up to 256 MiB whole). */
const PIECES = { pieceSize: PIECE_SIZE };


/** The notice frames of one write (emit hands over several back to back). */
function split(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const frames: Uint8Array[] = [];
  for (let at = 0; at < bytes.byteLength; ) {
    const end = at + NOTICE_HEADER_SIZE + view.getUint32(at + 4);
    frames.push(bytes.subarray(at, end));
    at = end;
  }
  return frames;
}

/** Two lanes wired to each other synchronously: a's notices reach b inside the call that writes them. */
function directPair() {
  const tickets = new Map<number, number>();
  let next = 1;
  const io = (peer: () => Lane) => ({
    control: (frame: Uint8Array) => void peer().take(frame.subarray(NOTICE_HEADER_SIZE)),
    give: (fd: number) => {
      tickets.set(next, fd);
      return Uint8Array.of(next++);
    },
    take: (ticket: Uint8Array) => Promise.resolve(tickets.get(ticket[0]!)!),
  });
  const a: Lane = new Lane(io(() => b), PIECES);
  const b: Lane = new Lane(io(() => a), PIECES);
  return { a, b };
}

describe("lane: pieces", () => {
  test(`a 16 MiB message goes in pieces of ${PIECE_SIZE / KiB} KiB, announced as they are copied: the peer has the first before send() returns`, async () => {
    const { a, b } = directPair();
    // A first message grows the region to what 16 MiB needs and lets b map it (a descriptor
    // fetch takes a turn), so that the next one finds its region mapped on both sides.
    const first = a.send(random(16 * MiB, 1));
    let warm: IncomingMessage | null = null;
    for (let frame = first.pull(); frame; frame = first.pull()) warm = b.take(frame.subarray(NOTICE_HEADER_SIZE)) ?? warm;
    await new Promise<void>((resolve, reject) => warm!.read((error) => (error ? reject(error) : resolve())));

    const body = random(16 * MiB, 2);
    const target = new Uint8Array(16 * MiB + 3);
    const pieces: Array<{ offset: number; length: number; flags: number; copiedByPeer: boolean }> = [];
    let message: IncomingMessage | null = null;
    let read: Promise<void> | null = null;
    let at = 0;
    let writes = 0;
    const out = a.send(body, (frames) => {
      writes++;
      for (const frame of split(frames)) {
        const notice = decodeNotice(frame.subarray(NOTICE_HEADER_SIZE));
        message = b.take(frame.subarray(NOTICE_HEADER_SIZE)) ?? message;
        if (message && !read) read = new Promise((resolve, reject) => message!.readInto(target, 3, (error) => (error ? reject(error) : resolve())));
        if (notice.kind !== PIECE) continue;
        // b copies each piece as its notice arrives: this piece is in the target already.
        const end = at + notice.length;
        const copiedByPeer = target[3 + end - 1] === body[end - 1] && target[3 + at] === body[at];
        pieces.push({ offset: at, length: notice.length, flags: notice.flags, copiedByPeer });
        at = end;
      }
    });
    expect(out.pull()).toBeUndefined(); // everything went through emit
    expect(out.done).toBe(true);
    expect(pieces.length).toBe((16 * MiB) / PIECE_SIZE);
    // The first piece at once, then one write per NOTICE_BATCH bytes, and the rest at the end.
    expect(writes).toBe(1 + Math.ceil((16 * MiB - PIECE_SIZE) / NOTICE_BATCH));
    expect(pieces.filter((p) => p.length !== PIECE_SIZE || !p.copiedByPeer)).toEqual([]);
    expect(pieces[0]!.flags).toBe(FIRST);
    expect(pieces.at(-1)!.flags).toBe(LAST);
    await read;
    expect(hash(target.subarray(3))).toBe(hash(body));
    a.close();
    b.close();
  });

  test("by default a message up to maxSize / 2 travels whole: one notice, written once it is copied; a bad pieceSize is a RangeError", () => {
    const io = {
      control: () => {},
      give: (fd: number) => {
        closeFd(fd);
        return Uint8Array.of(1);
      },
      take: () => Promise.reject(new Error("unused")),
    };
    const lane = new Lane(io);
    const written: Uint8Array[] = [];
    lane.send(random(16 * MiB, 5), (frames) => written.push(...split(frames)));
    const pieces = written.map((frame) => decodeNotice(frame.subarray(NOTICE_HEADER_SIZE))).filter((notice) => notice.kind === PIECE);
    expect(pieces).toEqual([expect.objectContaining({ length: 16 * MiB, flags: FIRST | LAST, total: 16 * MiB })]);
    lane.close();
    for (const bad of [0, 1000, 4097, -4096, 1.5 * 4096])
      expect(() => new Lane(io, { pieceSize: bad })).toThrow(new RangeError(`pieceSize must be a positive multiple of 4096 (got ${bad})`));
  });

  test("16 MiB messages between small ones, both directions at once, recvBytesInto at an offset and recvBytes: every byte exact", async () => {
    const [a, b] = memoryPair(PIECES);
    const plan = (seed: number) =>
      Array.from({ length: 12 }, (_, i) => (i % 3 === 2 ? random(16 * MiB + i, seed + i) : random(100 + i * 1000, seed + i)));
    const fromA = plan(10);
    const fromB = plan(50);
    const send = (end: LaneEnd, bodies: Uint8Array[]) => {
      const buffer = new Uint8Array(17 * MiB);
      const sent: Promise<void>[] = [];
      for (const body of bodies) {
        buffer.set(body);
        sent.push(end.sendBytes(buffer, 0, body.byteLength));
        buffer.fill(0xee, 0, body.byteLength); // taken at the call
      }
      return Promise.all(sent);
    };
    const receive = async (end: LaneEnd, bodies: Uint8Array[]) => {
      const into = new Uint8Array(17 * MiB).fill(0x5a);
      for (const [i, body] of bodies.entries()) {
        if (i % 2 === 0) {
          expect(await end.recvBytesInto(into, 4097)).toBe(body.byteLength);
          expect(hash(into.subarray(4097, 4097 + body.byteLength))).toBe(hash(body));
          expect(into.subarray(0, 4097).every((v) => v === 0x5a)).toBe(true);
        } else expect(hash(await end.recvBytes())).toBe(hash(body));
      }
    };
    await Promise.all([send(a, fromA), send(b, fromB), receive(b, fromA), receive(a, fromB)]);
    a.close();
    b.close();
  });

  test("pieces consumed in the turn the lane closes are still released to the peer (a lane retired right after its last read)", async () => {
    const { a, b } = directPair();
    const out = a.send(random(2 * MiB, 4));
    let message: IncomingMessage | null = null;
    for (let frame = out.pull(); frame; frame = out.pull()) message = b.take(frame.subarray(NOTICE_HEADER_SIZE)) ?? message;
    expect(a.confirmed).toBe(false);
    await new Promise<void>((resolve) =>
      message!.read(() => {
        b.close(); // the RELEASE of this turn would otherwise wait for a microtask, and find the lane closed
        resolve();
      }),
    );
    expect(a.confirmed).toBe(true);
    expect(a.pressing).toBe(false);
    a.close();
  });

  test("a message announced only in part (its sender stopped in the middle): got end of file during message", async () => {
    const { a, b } = directPair();
    const frames: Uint8Array[] = [];
    a.send(random(4 * MiB, 3), (written) => frames.push(...split(written)));
    // The peer saw the offer and the first three pieces, then the stream ended.
    let message: IncomingMessage | null = null;
    let pieces = 0;
    for (const frame of frames) {
      if (decodeNotice(frame.subarray(NOTICE_HEADER_SIZE)).kind === PIECE && ++pieces > 3) break;
      message = b.take(frame.subarray(NOTICE_HEADER_SIZE)) ?? message;
    }
    expect(message!.complete).toBe(false);
    const read = new Promise<unknown>((resolve) => message!.read((error) => resolve(error)));
    b.end();
    const error = await read;
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).message).toBe("got end of file during message");
    expect((error as OSError).code).toBe("MESSAGE_TRUNCATED");
    a.close();
    b.close();
  });
});
