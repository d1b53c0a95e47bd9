// Small messages are handed out as copies of their own (up to COPY_MAX bytes), larger ones as
// views of the chunk they arrived in: what a user can see of that choice is that a small message
// kept does not keep its chunk, that no received message aliases another, and that every byte
// is the sender's, at every size around the boundary, whichever way the receive was made.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { Pipe } from "../../src/index.ts";
import { COPY_MAX, Inbox, type Receiver } from "../../src/messages/inbox.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const SIZES = [0, 1, 64, COPY_MAX - 1, COPY_MAX, COPY_MAX + 1, 4096];

/** A body of `size` bytes that differs from every other message's (`seed`). */
function body(size: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, j) => (seed * 7 + j * 13 + 1) & 0xff);
}

describe("small messages", () => {
  test("a burst of mixed sizes arrives byte for byte; small bodies hold no more than themselves; none aliases another", async () => {
    const [a, b] = Pipe();
    const sent = Array.from({ length: 210 }, (_, i) => body(SIZES[i % SIZES.length]!, i));
    // Un-awaited: the messages travel together, many to a chunk.
    const done = Promise.all(sent.map((m) => a.sendBytes(m)));
    const got: Uint8Array[] = [];
    for (let i = 0; i < sent.length; i++) got.push(await b.recvBytes());
    await done;
    for (let i = 0; i < sent.length; i++) expect(got[i]).toEqual(sent[i]!);
    for (const m of got) {
      // A kept small message does not keep the (much larger) chunk it arrived in alive.
      if (m.byteLength > 0 && m.byteLength <= COPY_MAX) expect(m.buffer.byteLength).toBe(m.byteLength);
    }
    // Overwriting what was received changes no other message.
    for (const m of got) m.fill(0xee);
    for (let i = 0; i < sent.length; i++) expect(got[i]!.every((x) => x === 0xee)).toBe(true);
    a.close();
    b.close();
  });

  test("recvBytesInto places a small message at its offset, waiting or queued, and leaves the rest alone", async () => {
    const [a, b] = Pipe();
    const target = new Uint8Array(100).fill(0x5a);
    // Waiting: the receive is made before the message is sent.
    const waiting = b.recvBytesInto(target, 10);
    await a.sendBytes(body(20, 1));
    expect(await waiting).toBe(20);
    // Queued: the message is there before the receive (poll waits for it).
    await a.sendBytes(body(30, 2));
    expect(await b.poll(null)).toBe(true);
    expect(await b.recvBytesInto(target, 60)).toBe(30);
    expect([...target.subarray(10, 30)]).toEqual([...body(20, 1)]);
    expect([...target.subarray(60, 90)]).toEqual([...body(30, 2)]);
    expect([...target.subarray(0, 10), ...target.subarray(30, 60), ...target.subarray(90)].every((x) => x === 0x5a)).toBe(true);
    a.close();
    b.close();
  });
});

describe("Inbox: bodies as the application gets them", () => {
  const take = (inbox: Inbox): Uint8Array => {
    const body = inbox.takeNow(Infinity);
    if (body === undefined) throw new Error("nothing queued");
    return body;
  };

  test("up to COPY_MAX bytes a copy, past it a view of the received buffer, a whole buffer itself", () => {
    const inbox = new Inbox(
      () => {},
      () => {},
    );
    // One received buffer holding three bodies, as the codec's table describes them (offset, length).
    const chunk = new Uint8Array(4 + COPY_MAX + 4 + COPY_MAX + 1 + 4 + 3);
    for (let i = 0; i < chunk.byteLength; i++) chunk[i] = i & 0xff;
    const second = 4 + COPY_MAX + 4;
    const third = second + COPY_MAX + 1 + 4;
    const table = Uint32Array.of(4, COPY_MAX, second, COPY_MAX + 1, third, 3);
    expect(inbox.frames(chunk, 0, table, 3)).toBe(true);
    const copy = take(inbox);
    expect(copy).toEqual(chunk.subarray(4, 4 + COPY_MAX));
    expect(copy.buffer).not.toBe(chunk.buffer);
    const view = take(inbox);
    expect(view).toEqual(chunk.subarray(second, second + COPY_MAX + 1));
    expect(view.buffer).toBe(chunk.buffer);
    expect(view.byteOffset).toBe(second);
    expect(take(inbox)).toEqual(chunk.subarray(third, third + 3));
    // A body that is a buffer of its own (assembled across chunks, read from the lane) is handed on as it is.
    const own = new Uint8Array([1, 2, 3]);
    inbox.frame(own);
    expect(take(inbox)).toBe(own);
  });

  test("a waiting receive gets a copy of a small body too, and the rest of the chunk stays queued", () => {
    const inbox = new Inbox(
      () => {},
      () => {},
    );
    const delivered: Uint8Array[] = [];
    const receiver: Receiver = { maxlength: Infinity, deliver: (b) => void delivered.push(b), fail: (e) => { throw e; } };
    inbox.receive(receiver);
    const chunk = Uint8Array.from({ length: 20 }, (_, i) => i);
    expect(inbox.frames(chunk, 0, Uint32Array.of(4, 6, 14, 6), 2)).toBe(true);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toEqual(chunk.subarray(4, 10));
    expect(delivered[0]!.buffer).not.toBe(chunk.buffer);
    expect(take(inbox)).toEqual(chunk.subarray(14, 20));
  });
});
