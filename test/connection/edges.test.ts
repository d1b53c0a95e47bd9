// What a connection does at the edges of the stream, checked against CPython itself where it can
// be run: a message longer than recvBytes' maxlength, every way a stream can end (a clean EOF,
// a message cut short, a socket error), and the reader closing while a chunk is decoded.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { Connection, EOFError, OSError, Pipe, structured } from "../../src/index.ts";
import { FrameDecoder } from "../../src/frames/decoder.ts";
import { closeFd, socketpair, writeAllBlocking } from "../../src/os/libc.ts";
import { rejection } from "../fixtures/assert.ts";
import { rawPeer } from "../fixtures/raw-peer.ts";
import { fixture } from "../fixtures/run.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** What CPython's own Connection reports in the maxlength cases (null without a python3). */
function cpythonMaxlength(): Record<string, unknown> | null {
  const python = Bun.which("python3");
  if (!python) return null;
  const script = `
import json
from multiprocessing import Pipe
out = {}
a, b = Pipe()
a.send_bytes(b"0123456789")
try: b.recv_bytes(9)
except OSError as e: out["duplex_error"] = str(e)
out["duplex"] = [b.closed, b.readable, b.writable]
try: b.recv_bytes()
except OSError as e: out["duplex_later"] = str(e)
a.send_bytes(b"more"); a.send_bytes(b"more")
out["duplex_peer_writes"] = True
b.send_bytes(b"back")
out["duplex_writes"] = a.recv_bytes().decode()
r, w = Pipe(False)
w.send_bytes(b"abcd")
try: r.recv_bytes(3)
except OSError as e: out["read_only_error"] = str(e)
out["read_only"] = [r.closed, r.readable, r.writable]
try: r.recv_bytes()
except OSError as e: out["read_only_later"] = str(e)
try:
    w.send_bytes(b"x"); w.send_bytes(b"x")
    out["read_only_peer"] = "ok"
except OSError as e: out["read_only_peer"] = type(e).__name__
print(json.dumps(out))
`;
  const run = Bun.spawnSync({ cmd: [python, "-c", script], stdout: "pipe", stderr: "pipe" });
  if (run.exitCode !== 0) throw new Error(`python3 failed: ${run.stderr.toString()}`);
  return JSON.parse(run.stdout.toString());
}

describe("recvBytes(maxlength) with a longer message, as CPython", () => {
  test("a duplex end stops being readable and stays open; the peer can go on writing", async () => {
    const [a, b] = Pipe();
    await a.sendBytes(bytes("0123456789"));
    const refused = b.recvBytes(9);
    const queuedBehind = b.recvBytes();
    const error = await rejection(refused);
    expect(error).toBeInstanceOf(OSError);
    expect(error.message).toBe("bad message length");
    expect([b.closed, b.readable, b.writable]).toEqual([false, false, true]);
    // A read queued behind the refused one, and every later read, meets a write-only end.
    expect((await rejection(queuedBehind)).message).toBe("connection is write-only");
    expect((await rejection(b.recvBytes())).message).toBe("connection is write-only");
    await a.sendBytes(bytes("more"));
    await a.sendBytes(bytes("more"));
    await b.sendBytes(bytes("back"));
    expect(text(await a.recvBytes())).toBe("back");
    expect(b.closed).toBe(false);
    a.close();
    b.close();
  });

  test("a read-only end is closed (CPython calls close()); its flags keep their values", async () => {
    const [r, w] = Pipe(false);
    await w.sendBytes(bytes("abcd"));
    const error = await rejection(r.recvBytes(3));
    expect(error.message).toBe("bad message length");
    expect([r.closed, r.readable, r.writable]).toEqual([true, true, false]);
    expect((await rejection(r.recvBytes())).message).toBe("handle is closed");
    // The peer writes into a closed socket: EPIPE, at the latest on the second write.
    const sends = await Promise.allSettled([w.sendBytes(bytes("x")), w.sendBytes(bytes("x"))]);
    await new Promise((resolve) => setImmediate(resolve));
    const late = await rejection(w.sendBytes(bytes("x")));
    expect(late).toBeInstanceOf(OSError);
    expect(sends.length).toBe(2);
    w.close();
  });

  test("the same observations as CPython's own Connection", async () => {
    const cpython = cpythonMaxlength();
    if (!cpython) return; // no python3 here: the two tests above carry CPython's answers
    const [a, b] = Pipe();
    await a.sendBytes(bytes("0123456789"));
    const ours: Record<string, unknown> = {};
    ours.duplex_error = (await rejection(b.recvBytes(9))).message;
    ours.duplex = [b.closed, b.readable, b.writable];
    ours.duplex_later = (await rejection(b.recvBytes())).message;
    await a.sendBytes(bytes("more"));
    await a.sendBytes(bytes("more"));
    ours.duplex_peer_writes = true;
    await b.sendBytes(bytes("back"));
    ours.duplex_writes = text(await a.recvBytes());
    const [r, w] = Pipe(false);
    await w.sendBytes(bytes("abcd"));
    ours.read_only_error = (await rejection(r.recvBytes(3))).message;
    ours.read_only = [r.closed, r.readable, r.writable];
    ours.read_only_later = (await rejection(r.recvBytes())).message;
    try {
      await w.sendBytes(bytes("x"));
      await new Promise((resolve) => setImmediate(resolve));
      await w.sendBytes(bytes("x"));
      ours.read_only_peer = "ok";
    } catch (error) {
      ours.read_only_peer = (error as OSError).code === "EPIPE" ? "BrokenPipeError" : String(error);
    }
    expect(ours).toEqual(cpython);
    for (const c of [a, b, r, w]) c.close();
  });
});

describe("after the stream ended, later reads report EOFError (CPython's stream is at EOF)", () => {
  const cut: Array<[string, string]> = [
    ["EOF after 1-3 header bytes", "0000"],
    ["EOF inside the 8-byte length", "ffffffff000000"],
    ["EOF inside the body", "0000000568656c"],
    ["EOF inside a long body", "00100000" + "41".repeat(1000)],
  ];
  for (const [name, hex] of cut) {
    test(`${name}: "got end of file during message" once, then EOFError`, async () => {
      const peer = rawPeer();
      peer.write(hex);
      peer.close();
      const first = await rejection(peer.conn.recvBytes());
      expect(first).toBeInstanceOf(OSError);
      expect(first.message).toBe("got end of file during message");
      expect(await peer.conn.poll()).toBe(true);
      expect(await rejection(peer.conn.recvBytes())).toBeInstanceOf(EOFError);
      expect(await rejection(peer.conn.recv())).toBeInstanceOf(EOFError);
      expect(peer.conn.closed).toBe(false);
      peer.conn.close();
    });
  }

  test("reads already waiting when the stream is cut: the first gets the cut, the others EOFError", async () => {
    const peer = rawPeer();
    const reads = [peer.conn.recvBytes(), peer.conn.recvBytes(), peer.conn.recv()];
    peer.write("00000005 6865");
    peer.close();
    const [first, second, third] = await Promise.all(reads.map(rejection));
    expect(first!.message).toBe("got end of file during message");
    expect(second).toBeInstanceOf(EOFError);
    expect(third).toBeInstanceOf(EOFError);
    peer.conn.close();
  });

  test("messages queued before the cut are read first", async () => {
    const peer = rawPeer();
    peer.write("00000002 6869 000000");
    peer.close();
    expect(text(await peer.conn.recvBytes())).toBe("hi");
    expect((await rejection(peer.conn.recvBytes())).message).toBe("got end of file during message");
    expect(await rejection(peer.conn.recvBytes())).toBeInstanceOf(EOFError);
    peer.conn.close();
  });

  test("async iteration stops with the cut's error, not at a later EOFError", async () => {
    const peer = rawPeer();
    const hi = structured.dumps("hi");
    peer.write(Buffer.concat([Buffer.from([0, 0, 0, hi.byteLength]), hi, Buffer.from([0, 0])]));
    peer.close();
    const got: unknown[] = [];
    const error = await rejection(
      (async () => {
        for await (const value of peer.conn) got.push(value);
      })(),
    );
    expect(got).toEqual(["hi"]);
    expect(error.message).toBe("got end of file during message");
    peer.conn.close();
  });
});

describe("the reader is torn down while a chunk is decoded", () => {
  /** Runs `body` recording whatever decoding a chunk throws (Bun would hand it to the socket's error handler). */
  async function decodingErrors(body: () => Promise<void>): Promise<unknown[]> {
    const push = FrameDecoder.prototype.push;
    const thrown: unknown[] = [];
    FrameDecoder.prototype.push = function (this: FrameDecoder, chunk: Uint8Array) {
      try {
        return push.call(this, chunk);
      } catch (error) {
        thrown.push(error);
        throw error;
      }
    };
    try {
      await body();
    } finally {
      FrameDecoder.prototype.push = push;
    }
    return thrown;
  }

  test("Pipe(false), recvBytes(10), one 4 MiB message: the OSError, cleanly", async () => {
    const thrown = await decodingErrors(async () => {
      const [r, w] = Pipe(false);
      const pending = r.recvBytes(10);
      await w.sendBytes(new Uint8Array(4 << 20));
      const error = await rejection(pending);
      expect(error).toBeInstanceOf(OSError);
      expect(error.message).toBe("bad message length");
      expect(r.closed).toBe(true);
      // Let the rest of the message arrive at the (closed) reader.
      await Promise.allSettled([w.sendBytes(new Uint8Array(1))]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      w.close();
    });
    expect(thrown).toEqual([]);
  });

  test("a serializer's loads() that closes the connection, with more frames in the same chunk", async () => {
    const thrown = await decodingErrors(async () => {
      const [ours, theirs] = socketpair();
      const conn: Connection<string> = Connection.fromFd(ours, {
        serializer: {
          dumps: (value: string) => bytes(value),
          loads(body) {
            conn.close(); // runs while the chunk that brought `body` is being decoded
            return text(body);
          },
        },
      });
      const first = conn.recv();
      const second = conn.recv();
      // Three frames and the start of a long one, in one write.
      writeAllBlocking(theirs, Buffer.from("00000001610000000162000000016300100000" + "41".repeat(64), "hex"));
      expect(await first).toBe("a");
      expect((await rejection(second)).message).toBe("handle is closed");
      closeFd(theirs);
    });
    expect(thrown).toEqual([]);
  });
});

describe("an exception of mpconn's own in a socket callback is never swallowed", () => {
  test("the connection fails with it: pending and later reads, and sends, reject with the error itself", async () => {
    const [a, b] = Pipe();
    const pending = a.recvBytes();
    const push = FrameDecoder.prototype.push;
    const bug = new TypeError("a bug in decoding");
    FrameDecoder.prototype.push = function () {
      throw bug;
    };
    try {
      await b.sendBytes(bytes("hello"));
      expect(await rejection(pending)).toBe(bug);
    } finally {
      FrameDecoder.prototype.push = push;
    }
    expect(await rejection(a.recvBytes())).toBe(bug);
    expect(await rejection(a.recv())).toBe(bug);
    expect(await a.poll()).toBe(true);
    expect(await rejection(a.sendBytes(bytes("x")))).toBe(bug);
    expect(a.closed).toBe(false);
    a.close();
    b.close();
  });

  test("on a connection already closed, it reaches the process as an uncaught exception", async () => {
    const run = Bun.spawn([process.execPath, fixture("fault-after-close.ts")], { stdout: "pipe", stderr: "pipe" });
    const [code, out] = await Promise.all([run.exited, new Response(run.stdout).text()]);
    expect(out.trim()).toBe("uncaught: a bug in decoding");
    expect(code).toBe(7);
  });
});
