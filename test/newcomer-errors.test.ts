// The mistakes of a first hour with mpconn, and what they say: each error names what happened and
// what to do, in Python's class and (where Python has them) Python's words.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthenticationError, Client, Connection, EOFError, Listener, OSError, Pipe, pickle } from "../src/index.ts";
import { rejection } from "./fixtures/assert.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const scratch = mkdtempSync(join(tmpdir(), "mpconn-newcomer-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("addresses", () => {
  test("Client to a unix path where nothing listens names the path", async () => {
    const path = join(scratch, "server.sock");
    const error = await rejection(Client(path));
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).code).toBe("ENOENT");
    expect(error.message).toBe(`[Errno 2] No such file or directory: '${path}' (is the Listener running?)`);
  });

  for (const [text, host, port] of [
    ["localhost:6000", "localhost", 6000],
    ["127.0.0.1:0", "127.0.0.1", 0],
    ["[::1]:6000", "::1", 6000],
  ] as const) {
    test(`a "${text}" string is a TypeError that suggests ["${host}", ${port}], from Client and Listener`, async () => {
      const suggestion = `for TCP pass ["${host}", ${port}]`;
      const fromClient = await rejection(Client(text));
      expect(fromClient).toBeInstanceOf(TypeError);
      expect(fromClient.message).toBe(`address "${text}" is a unix socket path (a string always is); ${suggestion}`);
      expect(() => new Listener(text)).toThrow(new TypeError(`address "${text}" is a unix socket path (a string always is); ${suggestion}`));
    });
  }

  test("unix paths that merely contain a colon are still paths", async () => {
    const path = join(scratch, "a:1");
    using listener = new Listener(path);
    expect(listener.address).toBe(path);
    const [client, server] = await Promise.all([Client(path), listener.accept()]);
    await client.send("through a:1");
    expect(await server.recv()).toBe("through a:1");
    client.close();
    server.close();
  });
});

describe("RangeErrors show the offending values", () => {
  test("a port out of range", async () => {
    const error = await rejection(Client(["127.0.0.1", 70000]));
    expect(error).toEqual(new RangeError("port must be an integer 0-65535, not 70000"));
  });

  test("sendBytes / recvBytes / recvBytesInto ranges", async () => {
    const [a, b] = Pipe();
    const ten = new Uint8Array(10);
    expect((await rejection(a.sendBytes(ten, 11))).message).toBe("buffer length < offset: 10 < 11");
    expect((await rejection(a.sendBytes(ten, 4, 7))).message).toBe("buffer length < offset + size: 10 < 4 + 7");
    expect((await rejection(a.sendBytes(ten, -2))).message).toBe("offset is negative: -2");
    expect((await rejection(a.sendBytes(ten, 0, -3))).message).toBe("size is negative: -3");
    expect((await rejection(b.recvBytes(-5))).message).toBe("negative maxlength: -5");
    expect((await rejection(b.recvBytesInto(ten, -1))).message).toBe("negative offset: -1");
    expect((await rejection(b.recvBytesInto(ten, 12))).message).toBe("offset too large: 12 > buffer length 10");
    for (const error of [await rejection(a.sendBytes(ten, 11)), await rejection(b.recvBytes(-5))]) expect(error).toBeInstanceOf(RangeError);
    // Nothing was sent by the refused calls.
    await a.sendBytes(new Uint8Array([7]));
    expect([...(await b.recvBytes())]).toEqual([7]);
    a.close();
    b.close();
  });

  test("a negative descriptor, a negative handshakeTimeout, negative pickle limits", async () => {
    expect(() => Connection.fromFd(-1)).toThrow(new RangeError("invalid handle: -1"));
    expect((await rejection(Client(join(scratch, "x"), { authkey: "k", handshakeTimeout: -1 }))).message).toBe(
      "handshakeTimeout must be positive, not -1",
    );
    expect(() => pickle.dumps([], { maxDepth: -1 })).toThrow(new RangeError("maxDepth must be a non-negative number, not -1"));
  });
});

describe("authkeys", () => {
  const KEY = "the listener's key";

  for (const serializer of ["structured", "json", "pickle"] as const) {
    test(`a Client without an authkey to a Listener that wants one (${serializer}): AuthenticationError naming the authkey on both sides`, async () => {
      using listener = new Listener(join(scratch, `keyed-${serializer}.sock`), { authkey: KEY, serializer });
      const accepted = rejection(listener.accept());
      const client = await Client(listener.address, { serializer });
      await client.send("hello");
      const error = await rejection(client.recv());
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(error.message).toBe(
        "received an authkey challenge: the Listener requires an authkey and this connection has none (pass Client(address, { authkey }))",
      );
      // The serializer's own complaint stays attached.
      expect(error.cause).toBeInstanceOf(Error);
      const refused = await accepted;
      expect(refused).toBeInstanceOf(AuthenticationError);
      // CPython's words for a reply that is no digest (which depends on the message's length), then ours.
      expect(refused.message).toMatch(/^(unsupported message length, missing digest prefix, or unsupported digest: message=b'|expected 'md5' of length 16 got 20)/);
      expect(refused.message).toEndWith(" (did the peer connect without the authkey?)");
      client.close();
    });
  }

  test("a wrong authkey says so on both sides, after CPython's words", async () => {
    using listener = new Listener(join(scratch, "wrong-key.sock"), { authkey: KEY });
    const [clientError, serverError] = await Promise.all([
      rejection(Client(listener.address, { authkey: "another key" })),
      rejection(listener.accept()),
    ]);
    expect(clientError).toBeInstanceOf(AuthenticationError);
    expect(clientError.message).toBe("digest sent was rejected (the peer's authkey is different)");
    expect(serverError).toBeInstanceOf(AuthenticationError);
    expect(serverError.message).toBe("digest received was wrong (the peer's authkey is different)");
  });

  test("an unauthenticated message that merely starts with '#' is still the serializer's error", async () => {
    const [a, b] = Pipe();
    await a.sendBytes(new TextEncoder().encode("#not a challenge"));
    const error = await rejection(b.recv());
    expect(error).not.toBeInstanceOf(AuthenticationError);
    a.close();
    b.close();
  });
});

describe("EOFError", () => {
  test("says the peer closed the connection, and is still Python's EOFError with no arguments", async () => {
    const [a, b] = Pipe();
    a.close();
    const error = await rejection(b.recv());
    expect(error).toBeInstanceOf(EOFError);
    expect(error.name).toBe("EOFError");
    expect(error.message).toBe("the peer closed the connection");
    expect(String(error)).toBe("EOFError: the peer closed the connection");
    expect((error as EOFError).args).toEqual([]);
    // Reading on after EOF keeps saying EOF.
    expect(await rejection(b.recvBytes())).toBeInstanceOf(EOFError);
    b.close();
  });

  test("an explicit message replaces the default and becomes the argument, as in Python", () => {
    const error = new EOFError("Ran out of input");
    expect(error.message).toBe("Ran out of input");
    expect(error.args).toEqual(["Ran out of input"]);
  });
});
