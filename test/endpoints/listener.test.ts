// Listener and Client over real sockets: CPython's _TestListener and _TestListenerClient
// (Lib/test/_test_multiprocessing.py), the address rules (docs/listener.md), the unix socket file policy (stale files,
// removal at exit and on signals, the private default directory) and a load test.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { AuthenticationError, Client, EOFError, Listener, OSError, type Address, type Connection } from "../../src/index.ts";
import { addressType, unixPathState } from "../../src/endpoints/address.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const bun = process.execPath;
const fixture = (name: string) => join(import.meta.dir, "..", "fixtures", name);
const scratch = mkdtempSync(join(tmpdir(), "mpconn-listener-test-"));
const unique = () => Math.random().toString(36).slice(2, 10);
/** Children a failed test may have left waiting in accept(). */
const children: Array<{ kill(): void }> = [];
afterAll(() => {
  for (const child of children) child.kill();
  rmSync(scratch, { recursive: true, force: true });
});

/** The families every family-parametrised test runs with: a factory for a fresh Listener each. */
const families: Array<[string, () => Listener]> = [
  ["AF_UNIX", () => new Listener()],
  ["AF_INET", () => new Listener(["127.0.0.1", 0])],
  ["abstract AF_UNIX", () => new Listener(`\0mpconn-test-${unique()}`)],
];

/** A connected pair through `listener`: [client end, accepted end]. */
async function connect(listener: Listener, options = {}): Promise<[Connection, Connection]> {
  const [client, accepted] = await Promise.all([Client(listener.address, options), listener.accept()]);
  return [client, accepted];
}

describe("addresses (Python's address_type and arbitrary_address)", () => {
  test("a string is AF_UNIX, [host, port] is AF_INET (AF_INET6 for an IPv6 host)", () => {
    expect(addressType("/tmp/x")).toBe("AF_UNIX");
    expect(addressType("\0abstract")).toBe("AF_UNIX");
    expect(addressType(["127.0.0.1", 0])).toBe("AF_INET");
    expect(addressType(["::1", 0])).toBe("AF_INET6");
  });

  test("bad address types, families and ports throw TypeError / RangeError", () => {
    for (const bad of [42, {}, ["h"], ["h", "1"], [1, 2]]) {
      expect(() => new Listener(bad as unknown as Address)).toThrow(TypeError);
    }
    expect(() => new Listener(["127.0.0.1", 70000])).toThrow(RangeError);
    expect(() => new Listener(["127.0.0.1", 1.5])).toThrow(RangeError);
    expect(() => new Listener(["127.0.0.1", 0], { family: "AF_UNIX" })).toThrow(TypeError);
    expect(() => new Listener(undefined, { family: "AF_BOGUS" as "AF_UNIX" })).toThrow(RangeError);
    expect(() => new Listener(undefined, { backlog: 1.5 })).toThrow(TypeError);
    expect(() => new Listener(undefined, { handshakeTimeout: -1 })).toThrow(RangeError);
    expect(() => new Listener(undefined, { authkey: 42 as unknown as string })).toThrow(TypeError);
    expect(() => new Listener(undefined, { tls: { cert: "x" } })).toThrow("tls is for TCP");
  });

  test("TestInvalidFamily: a Windows pipe name is not recognized on POSIX", () => {
    expect(() => new Listener("\\\\.\\test")).toThrow(RangeError);
    expect(() => new Listener("\\\\.\\test")).toThrow("Family AF_PIPE is not recognized.");
  });

  test("a unix path longer than sun_path → OSError('AF_UNIX path too long')", () => {
    const long = join(scratch, "x".repeat(120));
    expect(() => new Listener(long)).toThrow("AF_UNIX path too long");
    expect(() => new Listener(long)).toThrow(OSError);
  });

  test("the default address: listener-XXXX in a private 0700 directory", () => {
    using listener = new Listener();
    const path = listener.address as string;
    expect(path).toMatch(/\/mpconn-[^/]+\/listener-[a-z0-9_]{8}$/);
    expect(Buffer.byteLength(path)).toBeLessThanOrEqual(107);
    expect(statSync(dirname(path)).mode & 0o777).toBe(0o700);
    expect(lstatSync(path).isSocket()).toBe(true);
    using other = new Listener();
    expect(dirname(other.address as string)).toBe(dirname(path)); // one directory per process
    expect(other.address).not.toBe(path);
  });

  test("port 0 resolves to the real port; 'localhost' to 127.0.0.1; a TCP family alone picks the loopback", () => {
    using a = new Listener(["localhost", 0]);
    const [host, port] = a.address as [string, number];
    expect(host).toBe("127.0.0.1");
    expect(port).toBeGreaterThan(0);
    using b = new Listener(undefined, { family: "AF_INET" });
    expect((b.address as [string, number])[0]).toBe("127.0.0.1");
    expect((b.address as [string, number])[1]).toBeGreaterThan(0);
  });

  test("IPv6: ['::1', 0] listens and connects", async () => {
    let listener: Listener;
    try {
      listener = new Listener(["::1", 0]);
    } catch (error) {
      console.log(`listener.test: no IPv6 loopback here (${(error as Error).message}); skipping`);
      return;
    }
    using _ = listener;
    const [client, accepted] = await connect(listener);
    await client.send("over v6");
    expect(await accepted.recv()).toBe("over v6");
    expect(listener.lastAccepted).toEqual(["::1", expect.any(Number)]);
    client.close();
    accepted.close();
  });
});

describe("_TestListener", () => {
  for (const [family, make] of families) {
    test(`test_multiple_bind (${family}): a second Listener on a live address → OSError EADDRINUSE`, () => {
      using first = make();
      let error: unknown;
      try {
        new Listener(first.address);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(OSError);
      expect((error as OSError).code).toBe("EADDRINUSE");
      expect((error as OSError).message).toBe("[Errno 98] Address already in use");
    });
  }

  test("test_context: `using` closes the listener, the client and the accepted end", async () => {
    let outer: Listener;
    let ends: Connection[];
    {
      using listener = new Listener();
      outer = listener;
      using client = await Client(listener.address);
      using accepted = await listener.accept();
      ends = [client, accepted];
      await client.sendBytes(new TextEncoder().encode("hello"));
      expect(new TextDecoder().decode(await accepted.recvBytes())).toBe("hello");
    }
    expect(outer.closed).toBe(true);
    expect(ends.every((c) => c.closed)).toBe(true);
    await expect(outer.accept()).rejects.toThrow(OSError);
  });

  test("test_empty_authkey: an empty key still authenticates (CPython 3.13 semantics)", async () => {
    const listener = new Listener(undefined, { authkey: "" });
    const [client, accepted] = await connect(listener, { authkey: new Uint8Array(0) });
    await client.send("hi");
    expect(await accepted.recv()).toBe("hi");
    // The handshake really runs: a client without a key is sent the challenge, and dropped.
    const keyless = await Client(listener.address);
    const first = await keyless.recvBytes();
    expect(new TextDecoder().decode(first.subarray(0, 11))).toBe("#CHALLENGE#");
    keyless.close();
    await expect(listener.accept()).rejects.toBeInstanceOf(AuthenticationError);
    for (const c of [client, accepted]) c.close();
    listener.close();
    await expect(listener.accept()).rejects.toThrow("listener is closed");
  });

  test("test_abstract_socket: a '\\0name' address round-trips and leaves no file", async () => {
    const name = `\0mpconn-abstract-${unique()}`;
    using listener = new Listener(name);
    expect(listener.address).toBe(name);
    const [client, accepted] = await connect(listener);
    await client.send("abstract");
    expect(await accepted.recv()).toBe("abstract");
    await accepted.send("back");
    expect(await client.recv()).toBe("back");
    client.close();
    accepted.close();
  });
});

describe("_TestListenerClient", () => {
  for (const [family, make] of families) {
    test(`test_listener_client (${family}): a child process connects and sends 'hello'`, async () => {
      using listener = make();
      const child = Bun.spawn([bun, fixture("client-hello.ts"), JSON.stringify(listener.address)], { stderr: "inherit" });
      const conn = await listener.accept();
      expect(await conn.recv()).toBe("hello");
      expect(await child.exited).toBe(0);
      expect(listener.lastAccepted).toEqual(family === "AF_INET" ? ["127.0.0.1", expect.any(Number)] : "");
      conn.close();
    });

    test(`test_issue14725 (${family}): connect, send and close before accept() — the data still arrives`, async () => {
      using listener = make();
      const client = await Client(listener.address);
      await client.send("hello");
      client.close();
      const conn = await listener.accept();
      expect(await conn.recv()).toBe("hello");
      await expect(conn.recv()).rejects.toBeInstanceOf(EOFError);
      conn.close();
    });

    test(`test_issue16955 (${family}): after the accepted end sends, client.poll(1) is true`, async () => {
      using listener = make();
      const [client, accepted] = await connect(listener);
      await accepted.sendBytes(new TextEncoder().encode("hello"));
      expect(await client.poll(1)).toBe(true);
      client.close();
      accepted.close();
    });
  }

  test("a child with an authkey (test_listener_client over the handshake)", async () => {
    using listener = new Listener(undefined, { authkey: "child-key" });
    const child = Bun.spawn([bun, fixture("client-hello.ts"), JSON.stringify(listener.address), "child-key"], { stderr: "inherit" });
    const conn = await listener.accept();
    expect(await conn.recv()).toBe("hello");
    expect(await child.exited).toBe(0);
    conn.close();
  });
});

describe("accept and close", () => {
  test("lastAccepted is null before the first accept, then the peer ([host, port] for TCP)", async () => {
    using listener = new Listener(["127.0.0.1", 0]);
    expect(listener.lastAccepted).toBeNull();
    const [client, accepted] = await connect(listener);
    expect(listener.lastAccepted).toEqual(["127.0.0.1", expect.any(Number)]);
    expect((listener.lastAccepted as [string, number])[1]).not.toBe((listener.address as [string, number])[1]);
    client.close();
    accepted.close();
  });

  test("accept() after close rejects OSError('listener is closed'); close is idempotent", async () => {
    const listener = new Listener();
    listener.close();
    listener.close();
    await expect(listener.accept()).rejects.toThrow(new OSError("listener is closed"));
  });

  test("close() while accept() is pending rejects it; the socket file is removed", async () => {
    const listener = new Listener();
    const path = listener.address as string;
    expect(existsSync(path)).toBe(true);
    const pending = listener.accept();
    listener.close();
    await expect(pending).rejects.toThrow("listener is closed");
    expect(existsSync(path)).toBe(false);
  });

  test("accepted connections keep working after the listener closes; unaccepted ones are dropped", async () => {
    const listener = new Listener(["127.0.0.1", 0]);
    const [client, accepted] = await connect(listener);
    const waiting = await Client(listener.address); // connected, never accepted
    listener.close();
    await client.send("still here");
    expect(await accepted.recv()).toBe("still here");
    await accepted.send("and back");
    expect(await client.recv()).toBe("and back");
    await expect(waiting.recv()).rejects.toBeInstanceOf(EOFError);
    for (const c of [client, accepted, waiting]) c.close();
  });

  test("async iteration yields connections, skips clients that fail auth, and ends at close()", async () => {
    const listener = new Listener(undefined, { authkey: "iter" });
    const seen: unknown[] = [];
    const loop = (async () => {
      for await (const conn of listener) {
        seen.push(await conn.recv());
        conn.close();
        if (seen.length === 2) listener.close();
      }
    })();
    const good1 = await Client(listener.address, { authkey: "iter" });
    await good1.send("first");
    await expect(Client(listener.address, { authkey: "wrong" })).rejects.toBeInstanceOf(AuthenticationError);
    const good2 = await Client(listener.address, { authkey: "iter" });
    await good2.send("second");
    await loop;
    expect(seen).toEqual(["first", "second"]);
    good1.close();
    good2.close();
  });

  test("load: 200 concurrent clients × 50 round trips each, every reply checked", async () => {
    using listener = new Listener(undefined, { authkey: "load" });
    const clients = 200;
    const rounds = 50;
    // Server: echo every message back, with the connection's index added.
    const served = (async () => {
      for (let i = 0; i < clients; i++) {
        const conn = await listener.accept();
        (async () => {
          for await (const msg of conn as Connection<[number, number]>) await conn.send([...msg, 1]);
          conn.close();
        })();
      }
    })();
    const replies = await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        const conn = await Client<[number, number] | [number, number, number]>(listener.address, { authkey: "load" });
        let ok = 0;
        for (let r = 0; r < rounds; r++) {
          await conn.send([c, r]);
          const reply = await conn.recv();
          if (reply[0] === c && reply[1] === r && reply[2] === 1) ok++;
        }
        conn.close();
        return ok;
      }),
    );
    await served;
    expect(replies).toEqual(Array(clients).fill(rounds));
  });
});

describe("unix socket files", () => {
  /** Start the listen-and-wait fixture; resolves with the child and the two paths it printed. */
  async function startChild(mode: string, path: string, env: Record<string, string> = {}, wrapper: string[] = []) {
    const child = Bun.spawn([...wrapper, bun, fixture("listen-and-wait.ts"), mode, path], {
      stdout: "pipe",
      stderr: "inherit",
      env: { ...process.env, ...env },
    });
    children.push(child);
    const reader = child.stdout.getReader();
    let text = "";
    const more = async () => {
      const { value, done } = await reader.read();
      if (!done) text += new TextDecoder().decode(value);
      return !done;
    };
    while (!text.includes("\n") && (await more()));
    const [named, fresh] = JSON.parse(text.slice(0, text.indexOf("\n"))) as [string, string];
    const rest = async () => {
      while (await more());
      return text;
    };
    return { child, named, fresh, rest };
  }

  test("a stale socket file (its process was killed) is replaced; the new listener works", async () => {
    const path = join(scratch, `stale-${unique()}`);
    const { child } = await startChild("wait", path);
    child.kill("SIGKILL");
    await child.exited;
    expect(lstatSync(path).isSocket()).toBe(true); // SIGKILL left it behind
    using listener = new Listener(path);
    const [client, accepted] = await connect(listener);
    await client.send("fresh");
    expect(await accepted.recv()).toBe("fresh");
    client.close();
    accepted.close();
  });

  test("a file that is not a socket is never removed: EADDRINUSE", () => {
    const path = join(scratch, `regular-${unique()}`);
    writeFileSync(path, "keep me");
    expect(() => new Listener(path)).toThrow(expect.objectContaining({ code: "EADDRINUSE" }));
    expect(readFileSync(path, "utf8")).toBe("keep me");
    const dir = join(scratch, `dir-${unique()}`);
    mkdirSync(dir);
    expect(() => new Listener(dir)).toThrow(OSError);
    expect(statSync(dir).isDirectory()).toBe(true);
  });

  test("a live socket file is left alone: EADDRINUSE, and the first listener still works", async () => {
    const path = join(scratch, `live-${unique()}`);
    using first = new Listener(path);
    expect(() => new Listener(path)).toThrow(expect.objectContaining({ code: "EADDRINUSE" }));
    const [client, accepted] = await connect(first);
    await client.send(1);
    expect(await accepted.recv()).toBe(1);
    client.close();
    accepted.close();
  });

  test("unixPathState: missing, other, live (also when /proc/net/unix names it differently)", async () => {
    expect(unixPathState(join(scratch, "missing"))).toBe("missing");
    const file = join(scratch, `other-${unique()}`);
    writeFileSync(file, "");
    expect(unixPathState(file)).toBe("other");
    const dir = join(scratch, `real-${unique()}`);
    mkdirSync(dir);
    const link = join(scratch, `link-${unique()}`);
    symlinkSync(dir, link);
    const listener = new Listener(join(dir, "s"));
    expect(unixPathState(join(dir, "s"))).toBe("live");
    // Through the symlink /proc/net/unix has no match: connecting finds it live.
    expect(unixPathState(join(link, "s"))).toBe("live");
    expect(() => new Listener(join(link, "s"))).toThrow(expect.objectContaining({ code: "EADDRINUSE" }));
    listener.close();
    expect(existsSync(join(dir, "s"))).toBe(false);
  });

  test("normal exit removes the files and the private directory; an idle Listener does not keep the process alive", async () => {
    const path = join(scratch, `exit-${unique()}`);
    const { child, named, fresh } = await startChild("exit", path);
    expect(await child.exited).toBe(0);
    expect(named).toBe(path);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(dirname(fresh))).toBe(false);
  });

  test("a connection nobody accepted does not keep the process alive (as one in Python's backlog)", async () => {
    const path = join(scratch, `idle-${unique()}`);
    const { child, rest } = await startChild("idle", path);
    const client = await Client(path);
    expect(await child.exited).toBe(0);
    expect(await rest()).toContain("arrived");
    await expect(client.recv()).rejects.toBeInstanceOf(EOFError);
    client.close();
  });

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    test(`${signal} removes the files, then the process dies of the signal`, async () => {
      const path = join(scratch, `${signal}-${unique()}`);
      const { child, fresh } = await startChild("wait", path);
      expect(existsSync(path)).toBe(true);
      child.kill(signal);
      await child.exited;
      expect(child.signalCode).toBe(signal);
      expect(existsSync(path)).toBe(false);
      expect(existsSync(dirname(fresh))).toBe(false);
    });
  }

  test("the program's own SIGTERM handler keeps control (it exits with 7); the files still go at exit", async () => {
    const path = join(scratch, `handler-${unique()}`);
    const { child, rest } = await startChild("handler", path);
    child.kill("SIGTERM");
    expect(await child.exited).toBe(7);
    expect(await rest()).toContain("handled");
    expect(existsSync(path)).toBe(false);
  });

  test("a process started with SIGTERM ignored stays immune: no handler is installed for it", async () => {
    const python = Bun.which("python3");
    if (!python || !existsSync("/proc/self/status")) {
      console.log("listener.test: needs python3 and /proc to start a child with SIGTERM ignored; skipping");
      return;
    }
    const ignoreTerm = [python, "-c", "import os, signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])"];
    const path = join(scratch, `ignored-${unique()}`);
    const { child } = await startChild("wait", path, {}, ignoreTerm);
    const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
    const mask = (name: string) => BigInt("0x" + status.match(new RegExp(`^${name}:\\s*([0-9a-f]+)`, "m"))![1]);
    expect(mask("SigIgn") & (1n << 14n)).not.toBe(0n); // SIGTERM (15) still ignored
    expect(mask("SigCgt") & (1n << 1n)).not.toBe(0n); // SIGINT (2) caught, to remove the files
    (await Client(path)).close(); // lets the child's accept() return, so it exits normally
    expect(await child.exited).toBe(0);
    expect(existsSync(path)).toBe(false);
  });

  test("a $TMPDIR too long for sun_path: the default address falls back to /tmp", async () => {
    const long = join(scratch, "t".repeat(100));
    mkdirSync(long, { recursive: true });
    const { child, fresh } = await startChild("exit", join(scratch, `tmpdir-${unique()}`), { TMPDIR: long });
    expect(await child.exited).toBe(0);
    expect(fresh.startsWith("/tmp/mpconn-")).toBe(true);
    expect(Buffer.byteLength(fresh)).toBeLessThanOrEqual(107);
    rmSync(long, { recursive: true, force: true });
  });
});
