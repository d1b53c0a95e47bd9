// Passing connections between processes (docs/passing-connections.md): CPython's fd-transfer
// tests (_TestConnection.test_fd_transfer / test_large_fd_transfer / test_missing_fd_transfer,
// _TestPicklingConnections.test_access; CPython's test suite) plus mpconn's guarantees.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readdirSync } from "node:fs";
import { Client, Connection, EOFError, Listener, OSError, Pipe, spawn, structured, type Serializer, type Spawned } from "../../src/index.ts";
import { dup, dupTo, close } from "../../src/os/scm-rights.ts";
import { fetchDescriptor, pendingShares, share, REQUEST_SIZE } from "../../src/processes/fdpass/sharer.ts";
import { socketpair, writeAllBlocking, closeFd } from "../../src/os/libc.ts";
import { frameHeader } from "../../src/frames/encoder.ts";
import { leavingOf } from "../../src/connection/connection.ts";
import { rejection } from "../fixtures/assert.ts";
import { bun, fixture } from "../fixtures/run.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const linux = process.platform === "linux";

let worker: Spawned<unknown>;
beforeAll(() => {
  worker = spawn([bun, fixture("fdpass-worker.ts")]);
});
afterAll(async () => {
  worker.conn.close();
  await worker.process.exited;
});

/** Ask the worker to use `conn` as `op` says; its answer. */
async function ask(op: string, conn: Connection, extra: Record<string, unknown> = {}): Promise<any> {
  await worker.conn.send({ op, conn, ...extra });
  return worker.conn.recv();
}

const openDescriptors = (): number => readdirSync("/proc/self/fd").length;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!linux)("passing connections", () => {
  test("test_fd_transfer: a Pipe end sent to a running child, which talks through it", async () => {
    const [ours, theirs] = Pipe();
    expect(await ask("say", theirs, { text: "foo" })).toBe("said");
    expect(theirs.closed).toBe(true);
    expect(await ours.recv()).toBe("foo");
    expect(await rejection(ours.recv())).toBeInstanceOf(EOFError);
    ours.close();
  });

  test("a third party: two workers joined by a Pipe the parent made", async () => {
    const other = spawn([bun, fixture("fdpass-worker.ts")]);
    try {
      const [left, right] = Pipe();
      await other.conn.send({ op: "serve", conn: right });
      const { pid } = (await other.conn.recv()) as { pid: number };
      expect(await ask("ask", left, { text: "hello, other worker" })).toEqual({ echo: "hello, other worker", pid });
    } finally {
      other.conn.close();
      await other.process.exited;
    }
  });

  test("test_large_fd_transfer: a descriptor numbered above 256", async () => {
    const [ours, theirs] = Pipe();
    const high = dupTo(theirs.fileno(), 300);
    theirs.close();
    const conn = Connection.fromFd(high);
    expect(conn.fileno()).toBe(300);
    expect(await ask("say", conn, { text: "foo" })).toBe("said");
    expect(await ours.recv()).toBe("foo");
    ours.close();
  });

  test("test_access: read-only and write-only Pipe ends keep their access", async () => {
    const [reader, writer] = Pipe(false);
    await writer.send("to the reader");
    const r = await ask("access", reader);
    expect(r).toEqual({ readable: true, writable: false, received: "to the reader", sendError: "connection is read-only" });
    writer.close();

    const [reader2, writer2] = Pipe(false);
    const w = await ask("access", writer2);
    expect(w).toEqual({ readable: false, writable: true, recvError: "connection is write-only" });
    expect(await reader2.recv()).toBe("from the worker");
    reader2.close();
  });

  test("an accepted Listener connection handed to a worker, which serves the client", async () => {
    using listener = new Listener();
    const [client, accepted] = await Promise.all([Client(listener.address), listener.accept()]);
    // A request that has already arrived at the parent (unread there) travels with the connection.
    await client.send("early request");
    expect(await accepted.poll(5)).toBe(true);
    const answer = await ask("serve", accepted);
    expect(answer.serving).toBe(true);
    expect(accepted.closed).toBe(true);
    expect(await client.recv()).toEqual({ echo: "early request", pid: answer.pid });
    await client.send({ n: 2 });
    expect(await client.recv()).toEqual({ echo: { n: 2 }, pid: answer.pid });
    client.close();
  });

  const framed = (value: unknown) => {
    const body = structured.dumps(value);
    return Buffer.concat([frameHeader(body.byteLength), body]);
  };

  /** Move a connection fed by a raw socket; `before` arrives (and is read) here, `after` once it moved. */
  async function moveMidStream(before: Uint8Array, after: Uint8Array, queued: number): Promise<{ got: unknown[]; end: string }> {
    const [raw, peer] = socketpair();
    const conn = Connection.fromFd(peer);
    writeAllBlocking(raw, before);
    await conn.poll(0.2); // starts reading; Bun takes all that is there at once
    const unread = leavingOf(conn).unread();
    expect(unread.messages.length).toBe(queued);
    expect(unread.partial.length).toBeGreaterThan(0);
    await worker.conn.send({ op: "drain", conn });
    writeAllBlocking(raw, after);
    closeFd(raw);
    return (await worker.conn.recv()) as { got: unknown[]; end: string };
  }

  test("unread bytes travel: queued messages and a partly received body", async () => {
    const big = new Uint8Array(200_000).fill(7);
    const third = framed(big);
    const result = await moveMidStream(Buffer.concat([framed("one"), framed("two"), third.subarray(0, 1000)]), Buffer.concat([third.subarray(1000), framed("four")]), 2);
    expect(result.got.length).toBe(4);
    expect(result.got.slice(0, 2)).toEqual(["one", "two"]);
    expect(result.got[2]).toEqual(big);
    expect(result.got[3]).toBe("four");
    expect(result.end).toBe("EOFError");
  });

  test("unread bytes travel: a partly received header", async () => {
    const second = framed({ second: true });
    const result = await moveMidStream(Buffer.concat([framed("first"), second.subarray(0, 2)]), second.subarray(2), 1);
    expect(result).toEqual({ got: ["first", { second: true }], end: "EOFError" });
  });

  test("a connection whose peer already closed: its unread messages, then EOF", async () => {
    const [x, y] = Pipe();
    await x.send("last words");
    x.close();
    expect(await y.poll(5)).toBe(true);
    for (let i = 0; i < 100 && leavingOf(y).unread().fd >= 0; i++) await sleep(10); // Bun saw the end and closed the socket
    expect(leavingOf(y).unread().fd).toBe(-1);
    expect(await ask("drain", y)).toEqual({ got: ["last words"], end: "EOFError" });
  });

  test("writes made before the move reach the peer before the receiver's", async () => {
    const [x, y] = Pipe();
    void y.send("before the move"); // still queued in this process when y moves
    expect(await ask("say", y, { text: "after the move" })).toBe("said");
    expect(await x.recv()).toBe("before the move");
    expect(await x.recv()).toBe("after the move");
    x.close();
  });

  test("connections inside structures: { reply: conn } and [a, b], the same one twice", async () => {
    const [p1, q1] = Pipe();
    const [p2, q2] = Pipe();
    const answer = await ask("pair", q1, { conns: [q1, q2], again: q1 });
    expect(answer).toEqual({ count: 2, same: true });
    expect(await p1.recv()).toBe("pair 0");
    expect(await p2.recv()).toBe("pair 1");
    p1.close();
    p2.close();
  });

  test("a connection sent back and forth keeps working", async () => {
    const [x, y] = Pipe();
    const { conn } = (await ask("return", y)) as { conn: Connection };
    expect(conn).toBeInstanceOf(Connection);
    await x.send("ping");
    expect(await conn.recv()).toBe("ping");
    await conn.send("pong");
    expect(await x.recv()).toBe("pong");
    x.close();
    conn.close();
  });
});

describe.skipIf(!linux)("refused moves send nothing", () => {
  test("a TCP connection, a closed one, itself, over TCP, and with json or pickle", async () => {
    const [a, b] = Pipe();
    using tcp = new Listener(["127.0.0.1", 0]);
    const [client, accepted] = await Promise.all([Client(tcp.address), tcp.accept()]);

    const e1 = await rejection(a.send({ conn: client }));
    expect(e1).toBeInstanceOf(TypeError);
    expect(e1.message).toContain("TCP");
    expect(client.closed).toBe(false);

    const [c, d] = Pipe();
    d.close();
    const e2 = await rejection(a.send([c, d]));
    expect(e2).toBeInstanceOf(OSError);
    expect(e2.message).toContain("closed");
    expect(c.closed).toBe(false); // moved nothing: c is still here and usable

    expect(await rejection(a.send(a))).toBeInstanceOf(TypeError);

    const e3 = await rejection(client.send(c));
    expect(e3).toBeInstanceOf(TypeError);
    expect(e3.message).toContain("unix-socket");

    const [j1] = Pipe(true, { serializer: "json" });
    const e4 = await rejection(j1.send({ conn: c }));
    expect(e4).toBeInstanceOf(TypeError);
    expect(e4.message).toContain("structured serializer");
    const [k1] = Pipe(true, { serializer: "pickle" });
    const e5 = await rejection(k1.send({ conn: c }));
    expect(e5).toBeInstanceOf(TypeError);
    expect(e5.message).toContain("Connection");

    expect(await b.poll(0.05)).toBe(false);
    expect(pendingShares()).toBe(0);
    // What was refused is untouched and still works.
    expect(c.closed).toBe(false);
    await client.send("still here");
    expect(await accepted.recv()).toBe("still here");
    for (const x of [a, b, c, client, accepted, j1, k1]) x.close();
  });

  test("a message that fails to encode after a connection in it moves nothing", async () => {
    const [a, b] = Pipe();
    const [c, d] = Pipe();
    expect(await rejection(a.send([c, () => 1]))).toBeInstanceOf(TypeError);
    expect(c.closed).toBe(false);
    expect(pendingShares()).toBe(0);
    await d.send("fine");
    expect(await c.recv()).toBe("fine");
    for (const x of [a, b, c, d]) x.close();
  });
});

describe.skipIf(!linux)("your own serializer", () => {
  test("one that wraps structured and passes the hooks on carries connections; the arrival reads with it", async () => {
    let calls = 0;
    const wrapper: Serializer = {
      dumps: (value, hooks) => (calls++, structured.dumps(value, hooks)),
      loads: (bytes, hooks) => (calls++, structured.loads(bytes, hooks)),
    };
    const [a, b] = Pipe(true, { serializer: wrapper });
    const [c, d] = Pipe();
    await a.send({ conn: c });
    expect(c.closed).toBe(true);
    const { conn } = (await b.recv()) as { conn: Connection };
    expect(calls).toBe(2);
    await d.send("through the moved end");
    expect(await conn.recv()).toBe("through the moved end");
    expect(calls).toBe(3); // the connection that arrived on `b` reads with b's serializer
    for (const x of [a, b, conn, d]) x.close();
  });

  test("one that drops the hooks: a clear TypeError, nothing sent, nothing moved", async () => {
    const dropping: Serializer = { dumps: (value) => structured.dumps(value), loads: (bytes) => structured.loads(bytes) };
    const [a, b] = Pipe(true, { serializer: dropping });
    const [c, d] = Pipe();
    const error = await rejection(a.send({ conn: c }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe("a Connection can only be sent with the structured serializer, or one that passes the hooks it is given on to structured");
    expect(c.closed).toBe(false);
    expect(pendingShares()).toBe(0);
    expect(await b.poll(0.05)).toBe(false);
    await d.send("c still works");
    expect(await c.recv()).toBe("c still works");
    for (const x of [a, b, c, d]) x.close();
  });
});

test.skipIf(linux)("elsewhere than Linux, sending a connection is refused clearly", async () => {
  const [a, b] = Pipe();
  const [c, d] = Pipe();
  const e = await rejection(a.send(c));
  expect(e).toBeInstanceOf(OSError);
  expect(e.message).toContain("only supported on Linux");
  expect(c.closed).toBe(false);
  for (const x of [a, b, c, d]) x.close();
});

describe.skipIf(!linux)("the sharer", () => {
  test("test_missing_fd_transfer: an answer without a descriptor, and a bad token", async () => {
    // A fake sharer that answers "here it is" but attaches no descriptor.
    const path = `/tmp/mpconn-fake-sharer-${process.pid}`;
    const fake = Bun.listen({ unix: path, socket: { data(s) { s.write(new Uint8Array([1])); s.end(); } } });
    try {
      const e = await rejection(fetchDescriptor({ address: path, request: new Uint8Array(REQUEST_SIZE) }));
      expect(e).toBeInstanceOf(OSError);
      expect(e.message).toContain("without a descriptor");
    } finally {
      fake.stop(true);
    }
    const [x, y] = socketpair();
    const ticket = share(dup(x), Promise.resolve());
    const forged = { ...ticket, request: ticket.request.slice() };
    forged.request[REQUEST_SIZE - 1]! ^= 1;
    expect((await rejection(fetchDescriptor(forged))).message).toContain("no such connection");
    const fd = await fetchDescriptor(ticket); // the forged attempt did not spend the real one
    close(fd);
    closeFd(x);
    closeFd(y);
  });

  test("each token works once: a replayed message fails to bring its connection", async () => {
    const [a, b] = Pipe();
    const [c, d] = Pipe();
    await a.send({ conn: d });
    const body = await b.recvBytes();
    await a.sendBytes(body);
    await a.sendBytes(body);
    const { conn } = (await b.recv()) as { conn: Connection };
    await c.send("hi");
    expect(await conn.recv()).toBe("hi");
    const e = await rejection(b.recv());
    expect(e).toBeInstanceOf(OSError);
    expect(e.message).toContain("received once");
    for (const x of [a, b, c, conn]) x.close();
  });

  test("a fetch from a sender that is gone is a clear error", async () => {
    const e = await rejection(fetchDescriptor({ address: `/tmp/mpconn-no-such-sharer-${process.pid}`, request: new Uint8Array(REQUEST_SIZE) }));
    expect(e).toBeInstanceOf(OSError);
    expect(e.message).toContain("is gone");
  });

  test("200 transfers in a row leak no descriptors", async () => {
    const [a, b] = Pipe();
    const once = async (i: number) => {
      const [x, y] = Pipe();
      await a.send({ i, y });
      const { y: moved } = (await b.recv()) as { y: Connection };
      if (i % 20 === 0) {
        await x.send(i);
        expect(await moved.recv()).toBe(i);
      }
      x.close();
      moved.close();
    };
    await once(-1); // the sharer's socket exists from here on
    await sleep(20);
    const before = openDescriptors();
    for (let i = 0; i < 200; i++) await once(i);
    await sleep(50);
    expect(pendingShares()).toBe(0);
    expect(openDescriptors()).toBe(before);
    a.close();
    b.close();
  });
});
