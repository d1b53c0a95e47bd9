// Client(), and the authkey handshake over real sockets: connect errors, right and wrong keys,
// peers that stall, vanish or send oversized frames (CPython's OtherTest at socket level),
// TLS with a certificate made here, and live CPython Listener/Client peers.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthenticationError, Client, Listener, OSError, type Address, type Connection } from "../../src/index.ts";
import { rejection } from "../fixtures/assert.ts";
import { lineReader } from "../fixtures/lines.ts";
import { pyenvPythons } from "../fixtures/python.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const scratch = mkdtempSync(join(tmpdir(), "mpconn-client-test-"));
/** Python peers a failed test may have left waiting. */
const children: Array<{ kill(): void }> = [];
afterAll(() => {
  for (const child of children) child.kill();
  rmSync(scratch, { recursive: true, force: true });
});

/** A connected, authenticated pair through `listener`. */
async function pair(listener: Listener, key: string | Uint8Array): Promise<[Connection, Connection]> {
  return Promise.all([Client(listener.address, { authkey: key }), listener.accept()]);
}

/** Prove `listener` still serves: a good client round-trips a message. */
async function stillServes(listener: Listener, key: string): Promise<void> {
  const [client, accepted] = await pair(listener, key);
  await client.send("still serving");
  expect(await accepted.recv()).toBe("still serving");
  client.close();
  accepted.close();
}

describe("connect errors", () => {
  test("a missing unix path → OSError ENOENT '[Errno 2] No such file or directory: <path>'", async () => {
    const path = join(scratch, "nobody-here");
    const error = await rejection(Client(path));
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).code).toBe("ENOENT");
    expect(error.message).toBe(`[Errno 2] No such file or directory: '${path}' (is the Listener running?)`);
  });

  test("a TCP port nobody listens on → OSError ECONNREFUSED '[Errno 111] Connection refused: host:port'", async () => {
    const probe = new Listener(["127.0.0.1", 0]);
    const address = probe.address as [string, number];
    probe.close();
    const error = await rejection(Client(address));
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).code).toBe("ECONNREFUSED");
    expect(error.message).toBe(`[Errno 111] Connection refused: 127.0.0.1:${address[1]} (is the Listener running?)`);
  });

  test("argument mistakes reject (never throw synchronously) with TypeError / RangeError", async () => {
    const calls: Array<[() => Promise<unknown>, ErrorConstructor]> = [
      [() => Client(42 as unknown as Address), TypeError],
      [() => Client(""), TypeError],
      [() => Client(["127.0.0.1", 99999]), RangeError],
      [() => Client("/tmp/x", { authkey: 5 as unknown as string }), TypeError],
      [() => Client("/tmp/x", { family: "AF_INET" }), TypeError],
      [() => Client("/tmp/x", { tls: true }), TypeError],
      [() => Client("/tmp/x", { handshakeTimeout: 0 }), RangeError],
      [() => Client("/tmp/x", { serializer: "nope" as "json" }), TypeError],
    ];
    for (const [call, type] of calls) {
      let promise: Promise<unknown> | undefined;
      try {
        promise = call();
      } catch (error) {
        throw new Error(`threw synchronously: ${error}`);
      }
      expect(await rejection(promise)).toBeInstanceOf(type);
    }
  });
});

describe("authkey over real sockets", () => {
  test("the right key, string on one side and bytes on the other: messages flow both ways", async () => {
    using listener = new Listener(["127.0.0.1", 0], { authkey: "sesame" });
    const [client, accepted] = await pair(listener, utf8("sesame"));
    await client.send({ to: "server" });
    expect(await accepted.recv()).toEqual({ to: "server" });
    await accepted.send({ to: "client" });
    expect(await client.recv()).toEqual({ to: "client" });
    client.close();
    accepted.close();
  });

  test("a wrong key: AuthenticationError on both sides, and the listener keeps serving", async () => {
    using listener = new Listener(undefined, { authkey: "right" });
    const [clientError, serverError] = await Promise.all([
      rejection(Client(listener.address, { authkey: "wrong" })),
      rejection(listener.accept()),
    ]);
    expect(clientError).toBeInstanceOf(AuthenticationError);
    expect(clientError.message).toBe("digest sent was rejected (the peer's authkey is different)");
    expect(serverError).toBeInstanceOf(AuthenticationError);
    expect(serverError.message).toBe("digest received was wrong (the peer's authkey is different)");
    await stillServes(listener, "right");
  });

  test("a stalled peer is dropped after handshakeTimeout; another client is accepted meanwhile", async () => {
    using listener = new Listener(undefined, { authkey: "k", handshakeTimeout: 0.3 });
    const staller = await Client(listener.address); // no key: it never answers the challenge
    const started = performance.now();
    await stillServes(listener, "k"); // not blocked behind the staller
    const error = await rejection(listener.accept());
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error.message).toBe("authkey handshake timed out after 0.3 s");
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    // The listener closed it: the staller sees the challenge, then EOF.
    expect(text((await staller.recvBytes()).subarray(0, 11))).toBe("#CHALLENGE#");
    await expect(staller.recvBytes()).rejects.toThrow();
    staller.close();
  });

  test("a peer that connects and closes at once makes one accept() reject; the next client is fine", async () => {
    using listener = new Listener(["127.0.0.1", 0], { authkey: "k" });
    (await Client(listener.address)).close();
    const error = await rejection(listener.accept());
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error.message).toStartWith("authkey handshake failed");
    await stillServes(listener, "k");
  });

  test("a handshake frame over 256 bytes fails the handshake (server side and client side)", async () => {
    using listener = new Listener(undefined, { authkey: "k" });
    const raw = await Client(listener.address);
    await raw.recvBytes(); // the challenge
    await raw.sendBytes(new Uint8Array(300));
    const error = await rejection(listener.accept());
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error.cause as Error).message).toBe("bad message length");
    raw.close();
    await stillServes(listener, "k");

    // A server whose challenge is too long for the client.
    using plain = new Listener();
    const [clientError] = await Promise.all([
      rejection(Client(plain.address, { authkey: "k" })),
      plain.accept().then((conn) => conn.sendBytes(new Uint8Array(257))),
    ]);
    expect(clientError).toBeInstanceOf(AuthenticationError);
    expect((clientError.cause as Error).message).toBe("bad message length");
  });

  test("OtherTest at socket level: a peer answering b'something bogus' → accept() rejects, the next client works", async () => {
    using listener = new Listener(undefined, { authkey: "k" });
    const raw = await Client(listener.address);
    await raw.recvBytes();
    await raw.sendBytes(utf8("something bogus"));
    expect(text(await raw.recvBytes())).toBe("#FAILURE#");
    const error = await rejection(listener.accept());
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error.message).toStartWith("unsupported message length");
    raw.close();
    await stillServes(listener, "k");
  });

  test("OtherTest, client side: a server sending a bare #CHALLENGE# → 'challenge too short'", async () => {
    using plain = new Listener();
    const [error] = await Promise.all([
      rejection(Client(plain.address, { authkey: "k" })),
      plain.accept().then((conn) => conn.sendBytes(utf8("#CHALLENGE#"))),
    ]);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error.message).toBe("challenge too short: 0 bytes");
  });

  test("a Client with a key against a Listener without one times out instead of hanging (CPython gh-123736)", async () => {
    using plain = new Listener();
    const [error, accepted] = await Promise.all([rejection(Client(plain.address, { authkey: "k", handshakeTimeout: 0.2 })), plain.accept()]);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error.message).toContain("timed out");
    accepted.close();
  });
});

// ---------------------------------------------------------------- TLS

describe("tls", () => {
  const dir = join(scratch, "tls");
  const made = makeCertificate(dir);
  if (!made) console.log("client.test: openssl is missing or failed; skipping the TLS tests");
  const tlsTest = made ? test : test.skip;
  const pem = (name: string) => readFileSync(join(dir, name), "utf8");

  tlsTest("a round trip over TLS with an authkey, including a message larger than one TLS write", async () => {
    using listener = new Listener(["127.0.0.1", 0], { tls: { key: pem("key.pem"), cert: pem("cert.pem") }, authkey: "k" });
    const [, port] = listener.address as [string, number];
    for (const host of ["localhost", "127.0.0.1"]) {
      const [client, accepted] = await Promise.all([
        Client([host, port], { tls: { ca: pem("cert.pem") }, authkey: "k" }),
        listener.accept(),
      ]);
      const big = new Uint8Array(3 << 20).map((_, i) => i % 251);
      await client.sendBytes(big);
      expect(await accepted.recvBytes()).toEqual(big);
      await accepted.send("secret reply");
      expect(await client.recv()).toBe("secret reply");
      client.close();
      accepted.close();
    }
  });

  tlsTest("an untrusted certificate → the Client rejects with OSError; the listener keeps serving", async () => {
    using listener = new Listener(["127.0.0.1", 0], { tls: { key: pem("key.pem"), cert: pem("cert.pem") } });
    const error = await rejection(Client(listener.address, { tls: true }));
    expect(error).toBeInstanceOf(OSError);
    expect(error.message).toStartWith("TLS handshake failed");
    const wrongName = await rejection(Client(listener.address, { tls: { ca: pem("cert.pem"), serverName: "elsewhere" } }));
    expect(wrongName.message).toStartWith("TLS handshake failed");
    const client = await Client(listener.address, { tls: { ca: pem("cert.pem") } });
    await client.send(1);
    // With TLS 1.3 the server finishes its side of the handshake before the client checks the
    // certificate, so each refusing client above may show up here as a connection that ends at once.
    for (let dead = 0; ; dead++) {
      const accepted = await listener.accept();
      const got = await accepted.recv().catch((error: Error) => error);
      accepted.close();
      if (got === 1) break;
      expect(got).toBeInstanceOf(Error);
      expect(dead).toBeLessThan(2);
    }
    client.close();
  });
});

/** A self-signed certificate for localhost and 127.0.0.1 in `dir`; false without openssl. */
function makeCertificate(dir: string): boolean {
  if (!Bun.which("openssl")) return false;
  mkdirSync(dir, { recursive: true });
  const args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1"];
  args.push("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1");
  args.push("-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"));
  return Bun.spawnSync(["openssl", ...args], { stderr: "pipe" }).exitCode === 0;
}

// ---------------------------------------------------------------- live CPython peers

// argv: mode ("listen" | "connect"), key (hex, "" for b""), address (JSON, connect only).
// listen: a unix Listener; prints its address, accepts, answers b"pong:" + the first message,
// sends b"x" * 100000, prints the next message. connect: sends a greeting, prints the reply.
// Prints "auth-error: …" (exit 3) on AuthenticationError and "eof" on EOFError.
const PY_PEER = `
import json, sys
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener
mode, key = sys.argv[1], bytes.fromhex(sys.argv[2])
out = lambda *a: print(*a, flush=True)
try:
    if mode == "listen":
        with Listener(authkey=key) as listener:
            out(json.dumps(listener.address))
            conn = listener.accept()
            conn.send_bytes(b"pong:" + conn.recv_bytes())
            conn.send_bytes(b"x" * 100000)
            out("got:", conn.recv_bytes().decode())
    else:
        address = json.loads(sys.argv[3])
        conn = Client(tuple(address) if isinstance(address, list) else address, authkey=key)
        conn.send_bytes(b"hello from python")
        out("got:", conn.recv_bytes().decode())
except AuthenticationError as e:
    out("auth-error:", e)
    sys.exit(3)
except EOFError:
    out("eof")
`;

/** A Python peer, with its stdout read line by line. */
function python(interpreter: string, args: string[]) {
  const child = Bun.spawn([interpreter, "-c", PY_PEER, ...args], { stdout: "pipe", stderr: "pipe" });
  children.push(child);
  return {
    child,
    line: lineReader(child.stdout),
    async finish(): Promise<number> {
      const code = await child.exited;
      if (code !== 0 && code !== 3) console.log(await new Response(child.stderr).text());
      return code;
    },
  };
}

const hex = (s: string) => Buffer.from(s).toString("hex");

describe("live CPython peers (bytes messages)", () => {
  const interpreters = pyenvPythons();
  if (interpreters.length === 0) {
    console.log("client.test: no CPython 3.11+ under ~/.pyenv/versions; skipping the live CPython peers");
  }
  for (const interpreter of interpreters) {
    const version = interpreter.split("/").at(-3)!;
    const [major, minor] = version.split(".").map(Number) as [number, number];

    test(`CPython ${version} Listener ↔ mpconn Client (unix): right key, then a wrong key`, async () => {
      const py = python(interpreter, ["listen", hex("py-key")]);
      const address = JSON.parse(await py.line()) as string;
      const conn = await Client(address, { authkey: "py-key" });
      await conn.sendBytes(utf8("ping"));
      expect(text(await conn.recvBytes())).toBe("pong:ping");
      expect(await conn.recvBytes()).toEqual(new Uint8Array(100000).fill(0x78));
      await conn.sendBytes(utf8("from bun"));
      expect(await py.line()).toBe("got: from bun");
      expect(await py.finish()).toBe(0);
      conn.close();

      const wrong = python(interpreter, ["listen", hex("py-key")]);
      const error = await rejection(Client(JSON.parse(await wrong.line()) as string, { authkey: "not-it" }));
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(await wrong.line()).toBe("auth-error: digest received was wrong");
      expect(await wrong.finish()).toBe(3);
    });

    test(`mpconn Listener (TCP) ↔ CPython ${version} Client: right key, then a wrong key`, async () => {
      using listener = new Listener(["127.0.0.1", 0], { authkey: "bun-key" });
      const py = python(interpreter, ["connect", hex("bun-key"), JSON.stringify(listener.address)]);
      const conn = await listener.accept();
      expect(text(await conn.recvBytes())).toBe("hello from python");
      await conn.sendBytes(utf8("hello from bun"));
      expect(await py.line()).toBe("got: hello from bun");
      expect(await py.finish()).toBe(0);
      conn.close();

      const wrong = python(interpreter, ["connect", hex("nope"), JSON.stringify(listener.address)]);
      const error = await rejection(listener.accept());
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(error.message).toBe("digest received was wrong (the peer's authkey is different)");
      expect(await wrong.line()).toBe("auth-error: digest sent was rejected");
      expect(await wrong.finish()).toBe(3);
    });

    test(`an empty authkey with CPython ${version} (3.11/3.12 Listeners skip auth for b'')`, async () => {
      // mpconn Listener + Python Client: every Python Client authenticates when authkey is not None.
      using listener = new Listener(undefined, { authkey: "" });
      const py = python(interpreter, ["connect", "", JSON.stringify(listener.address)]);
      const conn = await listener.accept();
      expect(text(await conn.recvBytes())).toBe("hello from python");
      await conn.sendBytes(utf8("empty key ok"));
      expect(await py.line()).toBe("got: empty key ok");
      expect(await py.finish()).toBe(0);
      conn.close();

      const server = python(interpreter, ["listen", ""]);
      const address = JSON.parse(await server.line()) as string;
      if (major === 3 && minor >= 13) {
        const client = await Client(address, { authkey: "" });
        await client.sendBytes(utf8("x"));
        expect(text(await client.recvBytes())).toBe("pong:x");
        await client.recvBytes();
        await client.sendBytes(utf8("done"));
        expect(await server.line()).toBe("got: done");
        client.close();
      } else {
        // The Python Listener never sends a challenge: the mpconn Client gives up after handshakeTimeout.
        const error = await rejection(Client(address, { authkey: "", handshakeTimeout: 0.5 }));
        expect(error).toBeInstanceOf(AuthenticationError);
        expect(error.message).toContain("timed out");
        expect(await server.line()).toBe("eof");
      }
      expect(await server.finish()).toBe(0);
    });
  }
});
