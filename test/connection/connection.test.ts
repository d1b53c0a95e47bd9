// Connection semantics, ported from CPython's _TestConnection and _TestPoll
// (Lib/test/_test_multiprocessing.py) plus mpconn's own guarantees.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { BufferTooShort, Connection, EOFError, OSError, Pipe, spawn } from "../../src/index.ts";
import { rejection } from "../fixtures/assert.ts";
import { rawPeer } from "../fixtures/raw-peer.ts";
import { bun, fixture } from "../fixtures/run.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe("_TestConnection", () => {
  test("test_connection: echo child, recvBytesInto, BufferTooShort, poll, 16 MiB, EOF", async () => {
    const { process: child, conn } = spawn([bun, fixture("echo.ts")], { stdout: "inherit" });
    await conn.send("bytes");
    // Bytes only: the echo worker was told "bytes".
    const seq = bytes("something");
    await conn.sendBytes(seq);
    expect(text(await conn.recvBytes())).toBe("something");

    const arr = new Int32Array([0, 1, 2, 3]);
    const buffer = new Int32Array(10);
    await conn.sendBytes(arr);
    expect(await conn.recvBytesInto(buffer)).toBe(16);
    expect([...buffer]).toEqual([0, 1, 2, 3, 0, 0, 0, 0, 0, 0]);

    const buffer2 = new Int32Array(10);
    await conn.sendBytes(arr);
    expect(await conn.recvBytesInto(buffer2, 3 * 4)).toBe(16);
    expect([...buffer2]).toEqual([0, 0, 0, 0, 1, 2, 3, 0, 0, 0]);

    const small = new Uint8Array(40);
    const longmsg = bytes("abcdefghij".repeat(11));
    await conn.sendBytes(longmsg);
    const error = await rejection(conn.recvBytesInto(small));
    expect(error).toBeInstanceOf(BufferTooShort);
    expect(text((error as BufferTooShort).data)).toBe(text(longmsg));
    expect(text((error as BufferTooShort).args[0] as Uint8Array)).toBe(text(longmsg));
    expect(small.every((b) => b === 0)).toBe(true);

    expect(await conn.poll()).toBe(false);
    expect(await conn.poll(-1)).toBe(false);
    const t0 = performance.now();
    expect(await conn.poll(0.2)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);

    await conn.sendBytes(new Uint8Array(0));
    expect(await conn.poll(5)).toBe(true);
    expect((await conn.recvBytes()).byteLength).toBe(0);

    const big = new Uint8Array(16 << 20);
    for (let i = 0; i < big.length; i += 4099) big[i] = i & 0xff;
    await conn.sendBytes(big);
    const back = await conn.recvBytes();
    expect(back.byteLength).toBe(big.byteLength);
    expect(Buffer.compare(back, big)).toBe(0);

    // The worker exits at our EOF; then its end is closed and ours sees EOF.
    const [r, w] = Pipe();
    w.close();
    await expect(r.recv()).rejects.toBeInstanceOf(EOFError);
    r.close();
    conn.close();
    expect(await child.exited).toBe(0);
  });

  test("objects round trip through a child (structured serializer)", async () => {
    const { process: child, conn } = spawn([bun, fixture("echo.ts")]);
    await conn.send("objects");
    const values: unknown[] = [
      [1, 2.25, null],
      { task: 1, data: new Float64Array([1.5, -0, Infinity]) },
      [NaN, -0],
      new Map<unknown, unknown>([[1, "a"], ["k", new Set([1n, 2n])]]),
      new Date(0),
      undefined,
      "é\ud800",
    ];
    for (const v of values) {
      await conn.send(v);
      expect(await conn.recv()).toEqual(v);
    }
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    await conn.send(cyclic);
    const got = (await conn.recv()) as { self: unknown };
    expect(got.self).toBe(got);
    conn.close();
    expect(await child.exited).toBe(0);
  });

  test("after the peer closes: flags unchanged, recv and recvBytes raise EOFError every time", async () => {
    const [a, b] = Pipe();
    await b.send(1);
    b.close();
    expect(await a.recv()).toBe(1);
    expect(a.readable).toBe(true);
    expect(a.writable).toBe(true);
    const e1 = await rejection(a.recv());
    expect(e1).toBeInstanceOf(EOFError);
    expect((e1 as EOFError).args).toEqual([]);
    await expect(a.recvBytes()).rejects.toBeInstanceOf(EOFError);
    expect(await a.poll()).toBe(true);
    expect(a.closed).toBe(false);
    a.close();
  });

  test("test_duplex_false", async () => {
    const [reader, writer] = Pipe(false);
    await writer.send(1);
    expect(await reader.recv()).toBe(1);
    expect(reader.readable).toBe(true);
    expect(reader.writable).toBe(false);
    expect(writer.readable).toBe(false);
    expect(writer.writable).toBe(true);
    await expect(reader.send(2)).rejects.toThrow(new OSError("connection is read-only"));
    await expect(reader.sendBytes(new Uint8Array(1))).rejects.toThrow("connection is read-only");
    await expect(writer.recv()).rejects.toThrow("connection is write-only");
    await expect(writer.poll()).rejects.toThrow("connection is write-only");
    reader.close();
    writer.close();
  });

  test("test_sendbytes: offset and size slicing, with Python's errors as RangeError", async () => {
    const [a, b] = Pipe();
    const msg = bytes("abcdefghijklmnopqrstuvwxyz");
    await a.sendBytes(msg);
    expect(text(await b.recvBytes())).toBe("abcdefghijklmnopqrstuvwxyz");
    await a.sendBytes(msg, 5);
    expect(text(await b.recvBytes())).toBe("fghijklmnopqrstuvwxyz");
    await a.sendBytes(msg, 7, 8);
    expect(text(await b.recvBytes())).toBe("hijklmno");
    await a.sendBytes(msg, 26);
    expect(text(await b.recvBytes())).toBe("");
    await a.sendBytes(msg, 26, 0);
    expect(text(await b.recvBytes())).toBe("");
    for (const [args, message] of [
      [[27], "buffer length < offset: 26 < 27"],
      [[22, 5], "buffer length < offset + size: 26 < 22 + 5"],
      [[26, 1], "buffer length < offset + size: 26 < 26 + 1"],
      [[-1], "offset is negative: -1"],
      [[4, -1], "size is negative: -1"],
    ] as const) {
      const error = await rejection(a.sendBytes(msg, ...(args as unknown as [number, number?])));
      expect(error).toBeInstanceOf(RangeError);
      expect(error.message).toBe(message);
    }
    // Offsets count bytes whatever the view's element size.
    await a.sendBytes(new Uint16Array([0x0102, 0x0304]), 1, 2);
    expect([...(await b.recvBytes())]).toEqual([0x01, 0x04]);
    await a.sendBytes(new ArrayBuffer(3));
    expect((await b.recvBytes()).byteLength).toBe(3);
    await expect(a.sendBytes("str" as unknown as Uint8Array)).rejects.toBeInstanceOf(TypeError);
    // Nothing was sent by the failed calls.
    expect(await b.poll(0.05)).toBe(false);
    a.close();
    b.close();
  });

  test("test_context: using closes both ends", async () => {
    let outerA: Connection;
    let outerB: Connection;
    {
      using a = Pipe()[0];
      outerA = a;
    }
    expect(outerA.closed).toBe(true);
    {
      const [x, y] = Pipe();
      await using a = x;
      using b = y;
      outerB = b;
      await a.send(1729);
      expect(await b.recv()).toBe(1729);
    }
    expect(outerB.closed).toBe(true);
    await expect(outerB.recv()).rejects.toThrow(new OSError("handle is closed"));
    expect(() => outerB.fileno()).toThrow("handle is closed");
  });

  test("closed connection: every call rejects 'handle is closed' before argument checks; close is idempotent", async () => {
    const [a, b] = Pipe();
    a.close();
    a.close();
    for (const p of [a.send(1), a.sendBytes(new Uint8Array(1), -5), a.recv(), a.recvBytes(-1), a.recvBytesInto(new Uint8Array(1)), a.poll()]) {
      const error = await rejection(p);
      expect(error).toBeInstanceOf(OSError);
      expect(error.message).toBe("handle is closed");
    }
    b.close();
  });

  test("recvBytes(maxlength): too long → 'bad message length', then write-only (duplex) or closed (read-only)", async () => {
    const [a, b] = Pipe();
    await a.sendBytes(bytes("0123456789"));
    await expect(b.recvBytes(10 - 1)).rejects.toThrow(new OSError("bad message length"));
    expect(b.readable).toBe(false);
    await expect(b.recv()).rejects.toThrow("connection is write-only");
    await b.sendBytes(bytes("still writable"));
    expect(text(await a.recvBytes())).toBe("still writable");
    await expect(a.recvBytes(-1)).rejects.toThrow(new RangeError("negative maxlength: -1"));
    a.close();
    b.close();

    const [r, w] = Pipe(false);
    await w.sendBytes(bytes("abc"));
    expect(text(await r.recvBytes(3))).toBe("abc");
    await w.sendBytes(bytes("abcd"));
    await expect(r.recvBytes(3)).rejects.toThrow("bad message length");
    expect(r.closed).toBe(true);
    w.close();
  });

  test("recvBytesInto argument errors", async () => {
    const [a, b] = Pipe();
    await expect(b.recvBytesInto(new Uint8Array(4), -1)).rejects.toThrow(new RangeError("negative offset: -1"));
    await expect(b.recvBytesInto(new Uint8Array(4), 5)).rejects.toThrow(new RangeError("offset too large: 5 > buffer length 4"));
    await a.sendBytes(new Uint8Array(0));
    expect(await b.recvBytesInto(new Uint8Array(4), 4)).toBe(0);
    a.close();
    b.close();
  });

  test("a value the serializer cannot encode rejects TypeError and sends nothing", async () => {
    const [a, b] = Pipe();
    await expect(a.send((() => 1) as unknown)).rejects.toBeInstanceOf(TypeError);
    await expect(a.send({ f: Symbol("x") } as unknown)).rejects.toBeInstanceOf(TypeError);
    const [j1, j2] = Pipe(true, { serializer: "json" });
    await expect(j1.send(10n as unknown)).rejects.toBeInstanceOf(TypeError);
    await j1.send({ ok: true });
    expect(await j2.recv()).toEqual({ ok: true });
    await a.send("next");
    expect(await b.recv()).toBe("next");
    for (const c of [a, b, j1, j2]) c.close();
  });

  test("garbage for recv(): a clear error, and the next frame still reads", async () => {
    const [a, b] = Pipe();
    const [j1, j2] = Pipe(true, { serializer: "json" });
    await a.sendBytes(bytes("not a structured clone"));
    await a.send("after");
    await expect(b.recv()).rejects.toThrow();
    expect(await b.recv()).toBe("after");
    await j1.sendBytes(bytes("{not json"));
    await j1.send([1]);
    await expect(j2.recv()).rejects.toBeInstanceOf(SyntaxError);
    expect(await j2.recv()).toEqual([1]);
    for (const c of [a, b, j1, j2]) c.close();
  });

  test("bytes sent are those in the buffer at the time of the call", async () => {
    const [a, b] = Pipe();
    const buf = bytes("before");
    const small = a.sendBytes(buf);
    buf.set(bytes("AFTER!"));
    const big = new Uint8Array(1 << 20).fill(1);
    const bigSent = a.sendBytes(big);
    big.fill(2);
    await small;
    await bigSent;
    expect(text(await b.recvBytes())).toBe("before");
    const got = await b.recvBytes();
    expect(got.every((x) => x === 1)).toBe(true);
    a.close();
    b.close();
  });

  test("close() while a recv is pending rejects it; close() still delivers queued bytes", async () => {
    const [a, b] = Pipe();
    const pending = b.recv();
    b.close();
    await expect(pending).rejects.toThrow(new OSError("handle is closed"));

    const [c, d] = Pipe();
    const big = new Uint8Array(8 << 20).fill(7);
    c.sendBytes(big);
    c.send("last");
    c.close();
    expect((await d.recvBytes()).byteLength).toBe(8 << 20);
    expect(await d.recv()).toBe("last");
    await expect(d.recv()).rejects.toBeInstanceOf(EOFError);
    a.close();
    d.close();
  });

  test("async iteration ends at EOF", async () => {
    const [a, b] = Pipe();
    for (let i = 0; i < 5; i++) a.send(i);
    a.close();
    const got: unknown[] = [];
    for await (const m of b) got.push(m);
    expect(got).toEqual([0, 1, 2, 3, 4]);
    b.close();
  });

  test("64 MiB message, each direction", async () => {
    const [a, b] = Pipe();
    const big = new Uint8Array(64 << 20);
    for (let i = 0; i < big.length; i += 1000) big[i] = (i / 1000) & 0xff;
    const received = b.recvBytes();
    await a.sendBytes(big);
    const got = await received;
    expect(got.byteLength).toBe(big.byteLength);
    expect(Buffer.compare(got, big)).toBe(0);
    await b.sendBytes(got);
    expect(Buffer.compare(await a.recvBytes(), big)).toBe(0);
    a.close();
    b.close();
  });

  test("Connection.fromFd: invalid descriptors throw", () => {
    expect(() => Connection.fromFd(-1)).toThrow(RangeError);
    expect(() => Connection.fromFd(1.5)).toThrow(TypeError);
    expect(() => Connection.fromFd(44977608)).toThrow(OSError);
    expect(() => new Connection(3, { readable: false, writable: false })).toThrow(TypeError);
  });
});

describe("_TestPoll", () => {
  test("test_empty_string: a zero-length message keeps poll() true until read", async () => {
    const [a, b] = Pipe();
    expect(await a.poll()).toBe(false);
    await b.sendBytes(new Uint8Array(0));
    expect(await a.poll()).toBe(true);
    expect(await a.poll()).toBe(true);
    expect((await a.recvBytes()).byteLength).toBe(0);
    expect(await a.poll()).toBe(false);
    a.close();
    b.close();
  });

  test("test_strings: mixed empty and non-empty messages, with pauses", async () => {
    const strings = ["hello", "", "a", "b", "", "bye", "", "lop"];
    const [a, b] = Pipe();
    const writer = (async () => {
      for (const s of strings) {
        for (let i = 0; i < 300; i++) if (i % 100 === 0) await Bun.sleep(1);
        await b.sendBytes(bytes(s));
      }
    })();
    for (const s of strings) {
      while (!(await a.poll(0.01))) {}
      expect(text(await a.recvBytes())).toBe(s);
    }
    await writer;
    a.close();
    b.close();
  });

  test("test_boundaries: polling while a message arrives in pieces never splits it", async () => {
    const peer = rawPeer();
    peer.write("0000000a 6869");
    expect(await peer.conn.poll(0.05)).toBe(false);
    peer.write("6a6b6c6d6e6f7071");
    expect(await peer.conn.poll(5)).toBe(true);
    expect(text(await peer.conn.recvBytes())).toBe("hijklmnopq");
    peer.close();
    peer.conn.close();
  });

  test("test_dont_merge: separate messages stay separate", async () => {
    const [a, b] = Pipe();
    await a.sendBytes(bytes("a"));
    expect(await b.poll()).toBe(true);
    await a.sendBytes(bytes("b"));
    expect(await b.poll()).toBe(true);
    await a.sendBytes(bytes("cd"));
    expect(await b.poll()).toBe(true);
    expect(text(await b.recvBytes())).toBe("a");
    expect(await b.poll()).toBe(true);
    expect(text(await b.recvBytes())).toBe("b");
    expect(await b.poll()).toBe(true);
    expect(text(await b.recvBytes())).toBe("cd");
    a.close();
    b.close();
  });

  test("poll(null) waits for a message; poll rejects a bad timeout", async () => {
    const [a, b] = Pipe();
    setTimeout(() => a.send(1), 20);
    expect(await b.poll(null)).toBe(true);
    await expect(b.poll("1" as unknown as number)).rejects.toBeInstanceOf(TypeError);
    a.close();
    b.close();
  });
});

describe("truncated and hostile streams (docs/internals.md, \"The wire format\")", () => {
  const cases: Array<[string, string, "EOFError" | "truncated" | "ok"]> = [
    ["EOF before any header byte", "", "EOFError"],
    ["EOF after 1-3 header bytes", "0000", "truncated"],
    ["EOF after a full header, before any body byte (CPython: EOFError)", "00000005", "EOFError"],
    ["EOF after the -1 marker, before the 8-byte length", "ffffffff", "EOFError"],
    ["EOF inside the 8-byte length", "ffffffff000000", "truncated"],
    ["EOF inside the body", "0000000568656c", "truncated"],
    ["the 8-byte form for a small body", "ffffffff0000000000000005 68656c6c6f", "ok"],
  ];
  for (const [name, hex, expected] of cases) {
    test(name, async () => {
      const peer = rawPeer();
      peer.write(hex);
      peer.close();
      if (expected === "ok") {
        expect(text(await peer.conn.recvBytes())).toBe("hello");
        await expect(peer.conn.recvBytes()).rejects.toBeInstanceOf(EOFError);
      } else if (expected === "EOFError") {
        const error = await rejection(peer.conn.recvBytes());
        expect(error).toBeInstanceOf(EOFError);
      } else {
        const error = await rejection(peer.conn.recvBytes());
        expect(error).toBeInstanceOf(OSError);
        expect(error.message).toBe("got end of file during message");
      }
      peer.conn.close();
    });
  }

  test("a negative length other than -1 is a protocol error", async () => {
    const peer = rawPeer();
    peer.write("00000002 6869 80000000 41414141");
    expect(text(await peer.conn.recvBytes())).toBe("hi");
    const error = await rejection(peer.conn.recvBytes());
    expect(error).toBeInstanceOf(OSError);
    expect(error.message).toStartWith("bad message length");
    peer.close();
    peer.conn.close();
  });

  test("a header claiming 2^40 bytes then EOF: bounded memory, a clear error", async () => {
    const peer = rawPeer();
    const before = process.memoryUsage().rss;
    peer.write("ffffffff 0000010000000000");
    peer.write(new Uint8Array(100_000));
    peer.close();
    const error = await rejection(peer.conn.recvBytes());
    expect(error.message).toBe("got end of file during message");
    expect(process.memoryUsage().rss - before).toBeLessThan(256 << 20);
    peer.conn.close();
  });

  test("maxlength is enforced on the header, before the body arrives", async () => {
    const peer = rawPeer();
    const pending = peer.conn.recvBytes(256);
    peer.write("7fffffff 4141");
    await expect(pending).rejects.toThrow("bad message length");
    peer.close();
    peer.conn.close();
  });
});
