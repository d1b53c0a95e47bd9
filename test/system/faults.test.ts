// Faults: processes that die at the worst moment, connections closed under pending calls,
// socket files at exit, and sends that must survive process.exit(). Child scripts are written to
// a scratch directory; every wait is bounded, and the bounds are generous (a busy 2-core CI).
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Client, EOFError, OSError, spawn, wait, type Connection } from "../../src/index.ts";
import { rejection } from "../fixtures/assert.ts";
import { bun } from "../fixtures/run.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const scratch = mkdtempSync(join(tmpdir(), "mpconn-faults-"));
const INDEX = JSON.stringify(join(import.meta.dir, "..", "..", "src", "index.ts"));
const pids: number[] = [];
const children: Array<{ kill(signal?: number | NodeJS.Signals): void }> = [];
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  rmSync(scratch, { recursive: true, force: true });
});

/** Write a child script into the scratch directory; `mpconn` in it is replaced by the import path of src/index.ts. */
function script(name: string, code: string): string {
  const path = join(scratch, name);
  writeFileSync(path, code.replaceAll('"mpconn"', INDEX));
  return path;
}

/** Lines of a child's stdout, one at a time. */
function lines(stream: ReadableStream<Uint8Array>): () => Promise<string> {
  const reader = stream.getReader();
  let buffered = "";
  return async () => {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the child's output ended (${JSON.stringify(buffered)})`);
      buffered += new TextDecoder().decode(value);
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
}

/** `promise`, or a failure after `seconds`. */
async function within<R>(seconds: number, promise: Promise<R>): Promise<R> {
  let timer: Timer | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`nothing within ${seconds} s`)), seconds * 1000)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A peer's end: EOFError, or OSError ECONNRESET when it died with unread bytes of ours in its
 * buffer (the kernel then resets the connection; Python raises ConnectionResetError).
 */
function expectEndOfStream(error: Error): void {
  if (error instanceof EOFError) return;
  expect(error).toBeInstanceOf(OSError);
  expect((error as OSError).code).toBe("ECONNRESET");
}

// ---- processes that die ------------------------------------------------------------------------

// Writes a header for 1 MiB and 100 KB of the body on its socket (fd 3), says "ready", waits.
const HALF_SENDER = script(
  "half-sender.ts",
  `import { writeSync } from "node:fs";
const header = new Uint8Array([0, 0x10, 0, 0]);
const part = new Uint8Array(100_000).fill(0x5a);
writeSync(3, header);
for (let at = 0; at < part.byteLength; ) at += writeSync(3, part, at);
console.log("ready");
setInterval(() => {}, 1000);
`,
);

// Receives nothing; says "ready" and waits (its socket buffers fill up when we send).
const IDLE = script(
  "idle.ts",
  `import { parentConnection } from "mpconn";
const conn = parentConnection();
console.log("ready");
setInterval(() => {}, 1000);
`,
);

describe("a peer that dies", () => {
  test("SIGKILL mid-message: the pending recv() fails at once with 'got end of file during message'", async () => {
    const { process: child, conn } = spawn([bun, HALF_SENDER], { stdout: "pipe" });
    children.push(child);
    const pending = rejection(conn.recv());
    expect(await within(20, lines(child.stdout as ReadableStream<Uint8Array>)())).toBe("ready");
    await Bun.sleep(50); // let the partial frame arrive (poll() would say false: no whole message)
    const killed = performance.now();
    child.kill("SIGKILL");
    const error = await within(10, pending);
    const seconds = (performance.now() - killed) / 1000;
    console.log(`faults.test: recv() failed ${(seconds * 1000).toFixed(0)} ms after SIGKILL`);
    expect(error).toBeInstanceOf(OSError);
    expect(error.message).toBe("got end of file during message");
    expect(seconds).toBeLessThan(5);
    conn.close();
  });

  test("SIGKILL while our awaited send waits on backpressure: the send rejects with OSError, no hang", async () => {
    const { process: child, conn } = spawn([bun, IDLE], { stdout: "pipe" });
    children.push(child);
    expect(await within(20, lines(child.stdout as ReadableStream<Uint8Array>)())).toBe("ready");
    const big = new Uint8Array(8 << 20);
    let stuck: Promise<void> | null = null;
    // Fill the outgoing queue until a send waits (the child never reads).
    for (let i = 0; i < 16 && stuck === null; i++) {
      const sent = conn.sendBytes(big);
      const settled = await Promise.race([sent.then(() => true), Bun.sleep(50).then(() => false)]);
      if (!settled) stuck = sent;
    }
    expect(stuck).not.toBeNull();
    child.kill("SIGKILL");
    const error = await within(10, rejection(stuck!));
    expect(error).toBeInstanceOf(OSError);
    // Later sends report it too; receiving sees the end of the stream: EOF, or ECONNRESET since
    // the child died with our unread bytes in its buffer (Python: ConnectionResetError).
    expect(await rejection(conn.send("after"))).toBeInstanceOf(OSError);
    expectEndOfStream(await rejection(conn.recv()));
    conn.close();
  });

  test("the parent dies (SIGKILL): the grandchild's parentConnection() sees EOF", async () => {
    const result = join(scratch, `grandchild-${Date.now()}.txt`);
    const grandchild = script(
      "grandchild.ts",
      `import { writeFileSync } from "node:fs";
import { parentConnection } from "mpconn";
const conn = parentConnection();
const first = await conn.recv(); // the middle process says hello first
try {
  await conn.recv();
  writeFileSync(process.argv[2], "a message?");
} catch (error) {
  const e = error as Error & { args?: unknown[] };
  writeFileSync(process.argv[2], \`\${first} then \${e.name} \${JSON.stringify(e.args ?? null)}\`);
}
process.exit(0);
`,
    );
    const middle = script(
      "middle.ts",
      `import { spawn } from "mpconn";
const { process: child, conn } = spawn([process.execPath, ${JSON.stringify(grandchild)}, process.argv[2]]);
await conn.send("hello");
console.log(child.pid);
setInterval(() => {}, 1000);
`,
    );
    const proc = Bun.spawn([bun, middle, result], { stdout: "pipe", stderr: "inherit" });
    children.push(proc);
    const grandchildPid = Number(await within(20, lines(proc.stdout)()));
    pids.push(grandchildPid);
    proc.kill("SIGKILL");
    await proc.exited;
    for (let i = 0; i < 200 && !existsSync(result); i++) await Bun.sleep(50);
    expect(readFileSync(result, "utf8")).toBe("hello then EOFError []");
  });
});

// ---- close() under pending calls ----------------------------------------------------------------

describe("close() while calls are pending", () => {
  test("pending receives of every kind reject 'handle is closed', with half a message buffered; poll and wait settle", async () => {
    const { process: child, conn } = spawn([bun, HALF_SENDER], { stdout: "pipe" });
    children.push(child);
    expect(await within(20, lines(child.stdout as ReadableStream<Uint8Array>)())).toBe("ready");
    await Bun.sleep(50); // half a frame is here
    const pending = [conn.recv(), conn.recvBytes(), conn.recvBytesInto(new Uint8Array(10)), conn.recvBytes(5)].map(rejection);
    const iteration = rejection((async () => {
      for await (const _ of conn) throw new Error("a message?");
    })());
    const polled = conn.poll(null);
    const waited = rejection(wait([conn as Connection]));
    await Bun.sleep(20);
    conn.close();
    for (const error of await within(5, Promise.all(pending))) {
      expect(error).toBeInstanceOf(OSError);
      expect(error.message).toBe("handle is closed");
    }
    const iterated = await within(5, iteration);
    expect(iterated).toBeInstanceOf(OSError);
    expect(iterated.message).toBe("handle is closed");
    expect(await within(5, polled)).toBe(false);
    const waitError = await within(5, waited);
    expect(waitError).toBeInstanceOf(OSError);
    expect(waitError.message).toBe("handle is closed");
    // And every later call says so at once.
    expect((await rejection(conn.recv())).message).toBe("handle is closed");
    expect((await rejection(conn.send(1))).message).toBe("handle is closed");
    child.kill("SIGKILL");
  });
});

// ---- socket files at exit, while busy ----------------------------------------------------------

// A Listener on argv[2] and one on a default address; accepts one client and echoes what it
// sends, printing "serving" once it accepted and "echoed N" after each echo. On the message
// "exit" it calls process.exit(0) at once (while the client is still connected).
const BUSY_LISTENER = script(
  "busy-listener.ts",
  `import { Listener } from "mpconn";
const named = new Listener(process.argv[2], { authkey: "k" });
const fresh = new Listener();
console.log(JSON.stringify([named.address, fresh.address]));
const conn = await named.accept();
console.log("serving");
for (let n = 1; ; n++) {
  const msg = await conn.recv();
  if (msg === "exit") process.exit(0);
  await conn.send(msg);
  console.log("echoed " + n);
}
`,
);

describe("a Listener's unix socket files go when its process ends while serving a client", () => {
  for (const how of ["process.exit(0)", "SIGINT", "SIGTERM"] as const) {
    test(how, async () => {
      const path = join(scratch, `busy-${how.replace(/\W/g, "")}-${Date.now()}`);
      const child = Bun.spawn([bun, BUSY_LISTENER, path], { stdout: "pipe", stderr: "inherit" });
      children.push(child);
      const line = lines(child.stdout);
      const [named, fresh] = JSON.parse(await within(20, line())) as [string, string];
      expect(named).toBe(path);
      expect(existsSync(path) && existsSync(fresh)).toBe(true);
      const client = await Client(path, { authkey: "k" });
      expect(await within(10, line())).toBe("serving");
      for (let i = 0; i < 3; i++) {
        await client.send({ i });
        expect(await client.recv()).toEqual({ i });
        expect(await line()).toBe(`echoed ${i + 1}`);
      }
      // Traffic in flight when the end comes.
      client.send({ i: 99 });
      if (how === "process.exit(0)") client.send("exit");
      else child.kill(how);
      await within(10, child.exited);
      if (how === "process.exit(0)") expect(child.exitCode).toBe(0);
      else expect(child.signalCode).toBe(how);
      expect(existsSync(path)).toBe(false);
      expect(existsSync(fresh)).toBe(false);
      expect(existsSync(dirname(fresh))).toBe(false); // the private 0700 directory too
      // The client sees the end of the stream (possibly after the echo of {i: 99}).
      const rest: unknown[] = [];
      const end = await rejection(
        (async () => {
          for (;;) rest.push(await client.recv());
        })(),
      );
      expectEndOfStream(end);
      expect(rest.length).toBeLessThanOrEqual(1);
      client.close();
    });
  }
});

// ---- sends that must survive process.exit() ------------------------------------------------------

// Sends 1 MiB (stamped), then 1000 small messages, each awaited; then process.exit(0) at once
// (or close() first, then process.exit(0), with argv[2] === "close").
const EXITER = script(
  "exiter.ts",
  `import { parentConnection } from "mpconn";
const conn = parentConnection();
const big = new Uint8Array(1 << 20);
for (let i = 0; i < big.length; i += 4096) big[i] = (i >> 12) & 0xff;
await conn.sendBytes(big);
for (let i = 0; i < 1000; i++) await conn.send({ i, pad: "x".repeat(i % 50) });
if (process.argv[2] === "close") conn.close();
process.exit(0);
`,
);

describe("a resolved send is delivered although the sender exits right after", () => {
  for (const [mode, delay] of [
    ["process.exit()", 0],
    ["process.exit(), the receiver reading only 500 ms later", 500],
    ["close() then process.exit()", 300],
  ] as const) {
    test(mode, async () => {
      const { process: child, conn } = spawn([bun, EXITER, mode.startsWith("close") ? "close" : "exit"]);
      children.push(child);
      if (delay > 0) await Bun.sleep(delay);
      const big = await within(30, conn.recvBytes());
      expect(big.byteLength).toBe(1 << 20);
      for (let i = 0; i < big.length; i += 4096) if (big[i] !== ((i >> 12) & 0xff)) throw new Error(`byte ${i} of the 1 MiB message is wrong`);
      for (let i = 0; i < 1000; i++) expect(await conn.recv()).toEqual({ i, pad: "x".repeat(i % 50) });
      expect(await rejection(conn.recv())).toBeInstanceOf(EOFError);
      expect(await within(30, child.exited)).toBe(0);
      conn.close();
    });
  }
});

// Regression: the exit flush once waited 30 s for each peer that had stopped reading, one after
// another. Now each gives up after 5 s without progress, and all of them within 30 s.
const STALLED_EXITER = script(
  "stalled-exiter.ts",
  `import { Pipe } from "mpconn";
const ends = [Pipe(), Pipe(), Pipe()];
for (const [ours] of ends) await ours.sendBytes(new Uint8Array(1 << 20)); // nobody reads the other ends
console.log("sent");
process.exit(0);
`,
);

test("process.exit() with several peers that stopped reading ends in bounded time", async () => {
  const child = Bun.spawn([bun, STALLED_EXITER], { stdout: "pipe", stderr: "inherit" });
  children.push(child);
  expect(await within(20, lines(child.stdout)())).toBe("sent");
  const t0 = performance.now();
  expect(await within(60, child.exited)).toBe(0);
  // Three stalls of 5 s each, not three of 30 s: generous, as CI machines are busy.
  expect(performance.now() - t0).toBeLessThan(45_000);
}, 90_000);
