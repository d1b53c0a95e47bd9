// Hostile byte streams from a raw peer in another process: a CPython raw socket (when a 3.12
// interpreter is installed under ~/.pyenv) and a Bun one. Each peer runs a small script of
// write operations on the socket mpconn's spawn() gave it, then exits (or SIGKILLs itself),
// and mpconn must report each stream as docs/internals.md ("The wire format") says, with bounded memory.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, EOFError, Listener, OSError, json, pickle, spawn, structured, type Address, type Serializer } from "../../src/index.ts";
import { rejection } from "../fixtures/assert.ts";
import { peakRssGrowth } from "../fixtures/memory.ts";
import { pyenvPythons } from "../fixtures/python.ts";
import { bun } from "../fixtures/run.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

// ---- the raw peers ------------------------------------------------------------------------

/**
 * One write operation of a peer script:
 *  ["hex", h]            write the bytes of hex string h
 *  ["fill", n, b]        write n bytes of value b
 *  ["seq", n]            write n frames, frame i carrying i as a 4-byte big-endian body
 *  ["repeat", h, n]      write the bytes of h n times
 *  ["sleep", ms]         pause
 *  ["kill"]              SIGKILL ourselves (without it the script ends by exiting normally)
 */
type Op = ["hex", string] | ["fill", number, number] | ["seq", number] | ["repeat", string, number] | ["sleep", number] | ["kill"];

const PY_PEER = `
import json, os, signal, socket, struct, sys, time
s = socket.socket(fileno=3)
for op in json.loads(sys.argv[1]):
    k = op[0]
    if k == "hex":
        s.sendall(bytes.fromhex(op[1]))
    elif k == "fill":
        left, block = op[1], bytes([op[2]]) * (1 << 20)
        while left > 0:
            n = min(left, len(block)); s.sendall(block[:n]); left -= n
    elif k == "seq":
        s.sendall(b"".join(struct.pack("!iI", 4, i) for i in range(op[1])))
    elif k == "repeat":
        unit, left = bytes.fromhex(op[1]), op[2]
        per = max(1, (1 << 20) // max(1, len(unit)))
        while left > 0:
            n = min(left, per); s.sendall(unit * n); left -= n
    elif k == "sleep":
        time.sleep(op[1] / 1000)
    elif k == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
s.close()
`;

const BUN_PEER = `
import { writeSync } from "node:fs";
const put = (b: Uint8Array) => { for (let at = 0; at < b.byteLength; ) at += writeSync(3, b, at, b.byteLength - at); };
for (const op of JSON.parse(process.argv[2]!)) {
  if (op[0] === "hex") put(Buffer.from(op[1], "hex"));
  else if (op[0] === "fill") {
    const block = new Uint8Array(1 << 20).fill(op[2]);
    for (let left = op[1]; left > 0; left -= block.byteLength) put(block.subarray(0, Math.min(left, block.byteLength)));
  } else if (op[0] === "seq") {
    const out = new DataView(new ArrayBuffer(8 * op[1]));
    for (let i = 0; i < op[1]; i++) out.setInt32(8 * i, 4), out.setUint32(8 * i + 4, i);
    put(new Uint8Array(out.buffer));
  } else if (op[0] === "repeat") {
    const unit = Buffer.from(op[1], "hex");
    const per = Math.max(1, Math.floor((1 << 20) / Math.max(1, unit.byteLength)));
    for (let left = op[2]; left > 0; left -= per) put(Buffer.concat(Array(Math.min(left, per)).fill(unit)));
  } else if (op[0] === "sleep") Bun.sleepSync(op[1]);
  else if (op[0] === "kill") process.kill(process.pid, "SIGKILL");
}
process.exit(0);
`;

const scratch = mkdtempSync(join(tmpdir(), "mpconn-hostile-"));
const bunPeerPath = join(scratch, "peer.ts");
writeFileSync(bunPeerPath, BUN_PEER);
const children: Array<{ kill(signal?: number | NodeJS.Signals): void }> = [];
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
});

/** CPython 3.12 from pyenv, if installed. */
const py = pyenvPythons(/^3\.12/)[0];
if (!py) console.log("hostile.test: no CPython 3.12 under ~/.pyenv/versions; only the Bun raw peer runs");

const peers: Array<[string, (ops: Op[]) => string[]]> = [["bun", (ops) => [bun, bunPeerPath, JSON.stringify(ops)]]];
if (py) peers.unshift(["python", (ops) => [py, "-c", PY_PEER, JSON.stringify(ops)]]);

/** Start a raw peer that runs `ops` on its end; our end is the returned connection. */
function peer<T = unknown>(command: string[], serializer?: "structured" | "json" | "pickle", stderr: "inherit" | "ignore" = "inherit") {
  const spawned = spawn<T>(command, { serializer, stdout: "inherit", stderr });
  children.push(spawned.process);
  return spawned;
}

const frame = (body: Uint8Array | string): string => {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const header = Buffer.alloc(4);
  header.writeInt32BE(bytes.byteLength);
  return header.toString("hex") + Buffer.from(bytes).toString("hex");
};
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

const MiB = 1 << 20;

// ---- the streams --------------------------------------------------------------------------

for (const [name, command] of peers) {
  describe(`raw ${name} peer in another process`, () => {
    test("a header cut short, then EOF → OSError('got end of file during message')", async () => {
      const { conn } = peer(command([["hex", frame("whole")], ["hex", "000000"]]));
      expect(text(await conn.recvBytes())).toBe("whole");
      const error = await rejection(conn.recvBytes());
      expect(error).toBeInstanceOf(OSError);
      expect(error.message).toBe("got end of file during message");
      conn.close();
    });

    test("a body cut short, then EOF → OSError('got end of file during message'), also for recv()", async () => {
      const { conn } = peer(command([["hex", "00010000"], ["fill", 40_000, 0x61]]));
      const error = await rejection(conn.recv());
      expect(error).toBeInstanceOf(OSError);
      expect(error.message).toBe("got end of file during message");
      conn.close();
    });

    test("a negative length → OSError('bad message length…'); the frames before it arrive", async () => {
      const { conn } = peer(command([["hex", frame("hi")], ["hex", "8000000041414141"]]));
      expect(text(await conn.recvBytes())).toBe("hi");
      const error = await rejection(conn.recvBytes());
      expect(error).toBeInstanceOf(OSError);
      expect(error.message).toStartWith("bad message length");
      conn.close();
    });

    for (const [claim, header] of [
      ["2^40 bytes (8-byte header)", "ffffffff0000010000000000"],
      ["2^31 - 1 bytes (4-byte header)", "7fffffff"],
    ] as const) {
      test(`a header claiming ${claim}, 24 MiB of body, then EOF: RSS grows with what arrived, recv() fails cleanly`, async () => {
        const { conn } = peer(command([["hex", header], ["fill", 24 * MiB, 0x42]]));
        const { result: error, growth } = await peakRssGrowth(() => rejection(conn.recv()));
        console.log(`hostile.test: ${name} peer, claim ${claim}: peak RSS growth ${(growth / MiB).toFixed(0)} MiB for 24 MiB received`);
        expect(error).toBeInstanceOf(OSError);
        expect(error.message).toBe("got end of file during message");
        // Generous: the bytes that really arrived (24 MiB), a copy of them, and garbage chunks;
        // never anything like the claimed size.
        expect(growth).toBeLessThan(200 * MiB);
        conn.close();
      });
    }

    test("10,000 tiny frames, then the peer dies (SIGKILL) mid-frame: all 10,000 arrive in order, then the error", async () => {
      const { conn, process: child } = peer(command([["seq", 10_000], ["hex", "000000106869"], ["kill"]]));
      for (let i = 0; i < 10_000; i++) {
        const body = await conn.recvBytes();
        expect(body.byteLength).toBe(4);
        const got = new DataView(body.buffer, body.byteOffset, 4).getUint32(0);
        if (got !== i) throw new Error(`frame ${i} carried ${got}`);
      }
      const error = await rejection(conn.recvBytes());
      expect(error).toBeInstanceOf(OSError);
      expect(error.message).toBe("got end of file during message");
      await child.exited;
      expect(child.signalCode).toBe("SIGKILL");
      conn.close();
    });

    describe("garbage for recv(): a clear error, and the next frame still reads", () => {
      const codecs: Array<["structured" | "json" | "pickle", Serializer, Uint8Array[]]> = [
        [
          "structured",
          structured,
          [
            new TextEncoder().encode("not a structured clone"),
            new Uint8Array(64).fill(0xff),
            structured.dumps({ a: [1, 2, 3], b: "hello" }).subarray(0, 10),
            new Uint8Array(0),
          ],
        ],
        ["json", json, [new TextEncoder().encode("{not json"), new Uint8Array([0x22, 0xc3, 0x28, 0x22]), new Uint8Array(0)]],
        [
          "pickle",
          pickle,
          [
            new TextEncoder().encode("cos\nsystem\n(S'touch /tmp/mpconn-pwned'\ntR."), // a global: refused, never called
            pickle.dumps({ a: [1, 2, 3], b: "hello" }).subarray(0, 10),
            new Uint8Array([0x80, 0x05, 0xff]),
            new Uint8Array(0),
          ],
        ],
      ];
      for (const [serializerName, serializer, garbage] of codecs) {
        test(serializerName, async () => {
          const ops: Op[] = [];
          garbage.forEach((g, i) => ops.push(["hex", frame(g)], ["hex", frame(serializer.dumps({ after: i }))]));
          const { conn } = peer(command(ops), serializerName);
          for (let i = 0; i < garbage.length; i++) {
            const error = await rejection(conn.recv());
            // A decoding error: not the stream's EOFError/OSError, and it says something.
            expect(error).toBeInstanceOf(Error);
            expect(error).not.toBeInstanceOf(OSError);
            if (error instanceof EOFError) expect(error.args.length).toBeGreaterThan(0); // pickle's "Ran out of input", not a clean EOF
            expect(error.message.length).toBeGreaterThan(0);
            expect(await conn.recv()).toEqual({ after: i });
          }
          await expect(conn.recv()).rejects.toBeInstanceOf(EOFError);
          conn.close();
          expect(existsSync("/tmp/mpconn-pwned")).toBe(false);
        });
      }
    });
  });
}

describe("memory while the application does not read", () => {
  const [name, command] = peers[0]!;

  /**
   * A peer floods us with `bytes` of `unit` frames that we never read. Returns the RSS growth
   * over 1.5 s and whether the peer was still held back (blocked in a write) by then.
   */
  async function flood(unit: string, bytes: number): Promise<{ growth: number; heldBack: boolean }> {
    // Its stderr is dropped: it dies in a write (broken pipe) when we close.
    const { conn, process: child } = peer(command([["repeat", unit, Math.floor(bytes / (unit.length / 2))]]), undefined, "ignore");
    await conn.poll(); // start reading, then read nothing
    const { growth } = await peakRssGrowth(() => Bun.sleep(1500));
    const heldBack = child.exitCode === null;
    conn.close();
    child.kill("SIGKILL");
    await child.exited;
    return { growth, heldBack };
  }

  test(`unread 1 KiB frames: reading pauses (16 MiB of bodies) and the ${name} peer is held back`, async () => {
    const { growth, heldBack } = await flood(frame(new Uint8Array(1024)), 64 * MiB);
    console.log(`hostile.test: 64 MiB of unread 1 KiB frames → peak RSS growth ${(growth / MiB).toFixed(0)} MiB`);
    expect(heldBack).toBe(true);
    expect(growth).toBeLessThan(128 * MiB);
  });

  // Regression: the inbox once paused on unread *body* bytes only, so 4-byte empty frames
  // (64 MiB of them) grew an idle receiver's RSS by ~1.4 GiB. Each queued message now counts a
  // fixed overhead towards the pause threshold.
  test("unread empty frames (4 bytes each): memory stays bounded", async () => {
    const { growth } = await flood("00000000", 16 * MiB);
    console.log(`hostile.test: 16 MiB of unread empty frames → peak RSS growth ${(growth / MiB).toFixed(0)} MiB`);
    expect(growth).toBeLessThan(128 * MiB);
  });
});


describe("messages that name things outside the stream", () => {
  /**
   * A peer sends a "connection record" (the EXTERNAL value src/processes/fdpass/transfer.ts writes for a
   * moved Connection) naming a unix socket of ours that is not an mpconn sharer. Returns what
   * that socket saw while the receiving end ran recv().
   */
  async function recordAttack(address: Address, victimName: string): Promise<string[]> {
    const victimPath = join(scratch, victimName);
    const contacts: string[] = [];
    const victim = Bun.listen({
      unix: victimPath,
      socket: {
        open: () => void contacts.push("connect"),
        data(socket, chunk) {
          contacts.push(Buffer.from(chunk).toString("latin1"));
          socket.end();
        },
      },
    });
    class Marker {}
    const request = new Uint8Array(48).fill(0x20);
    request.set(new TextEncoder().encode("POST /containers/db/kill HTTP/1.0\r\n\r\n"));
    const record = { mpconn: "Connection", version: 1, address: victimPath, request, unread: new Uint8Array(0), readable: true, writable: true };
    const message = structured.dumps(new Marker(), { replace: () => record });
    using listener = new Listener(address);
    const [attacker, server] = await Promise.all([Client(listener.address), listener.accept()]);
    try {
      await attacker.sendBytes(message);
      const outcome = await Promise.race([server.recv().then(() => "a value", (e: Error) => e.message), Bun.sleep(1000).then(() => "pending")]);
      await Bun.sleep(100);
      console.log(`hostile.test: connection record over ${JSON.stringify(listener.address)} → recv() ${outcome}; the named socket saw ${JSON.stringify(contacts)}`);
      return contacts;
    } finally {
      attacker.close();
      server.close();
      victim.stop(true);
    }
  }

  // Regression: a connection record from any peer used to make recv() connect to the unix socket
  // path it named and write 48 peer-chosen bytes there. Now records are refused unless they
  // arrive over a unix socket, and a fetch writes nothing to a socket another user listens on.
  test("a connection record from a TCP peer: recv() contacts no socket the peer names", async () => {
    expect(await recordAttack(["127.0.0.1", 0], "victim-tcp.sock")).toEqual([]);
  });

  // Regression: over a unix connection a record could name any socket of this user that is not
  // an mpconn sharer (e.g. $SSH_AUTH_SOCK, where 00000001 13 removes every identity), and recv()
  // connected and wrote the 48 bytes; the peer can be another user's process on an abstract
  // "\0name" Listener without an authkey. Now a fetch goes only to a socket in a private 0700
  // mpconn-* directory owned by this user.
  test("a connection record over an abstract unix socket names one of our own sockets: recv() contacts nothing", async () => {
    expect(await recordAttack(`\0mpconn-hostile-${process.pid}`, "victim-unix.sock")).toEqual([]);
  });
});
