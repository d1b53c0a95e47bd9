// wait(): CPython's TestWait (test_wait, test_wait_timeout, test_neg_timeout, and a Bun
// Subprocess in place of test_wait_integer), Listeners as waitables, and the argument errors.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { join } from "node:path";
import { Client, EOFError, Listener, OSError, Pipe, spawn, wait, type Connection } from "../../src/index.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const bun = process.execPath;
const fixture = (name: string) => join(import.meta.dir, "..", "fixtures", name);

describe("TestWait", () => {
  test("test_wait: 4 child writers × 10 messages, wait() until every reader is at EOF", async () => {
    const children = Array.from({ length: 4 }, () => spawn<[number, number]>([bun, fixture("wait-writer.ts")]));
    let readers: Connection<[number, number]>[] = children.map((c) => c.conn);
    const messages: Array<[number, number]> = [];
    while (readers.length > 0) {
      for (const reader of await wait(readers)) {
        try {
          messages.push(await reader.recv());
        } catch (error) {
          expect(error).toBeInstanceOf(EOFError);
          reader.close();
          readers = readers.filter((r) => r !== reader);
        }
      }
    }
    expect(messages.length).toBe(40);
    for (const { process: child } of children) {
      expect(await child.exited).toBe(0);
      // Each child's messages arrive complete and in order.
      expect(messages.filter(([, pid]) => pid === child.pid).map(([i]) => i)).toEqual([...Array(10).keys()]);
    }
  });

  test("test_wait_timeout: nothing ready → [] after the timeout; then only the ready one", async () => {
    const [a, aPeer] = Pipe();
    const [b, bPeer] = Pipe();
    const started = performance.now();
    expect(await wait([a, b], 0.5)).toEqual([]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(400);
    await bPeer.send(null);
    expect(await wait([a, b], 20)).toEqual([b]);
    for (const c of [a, aPeer, b, bPeer]) c.close();
  });

  test("test_neg_timeout: a negative timeout looks once and returns [] at once", async () => {
    const [a, b] = Pipe();
    const started = performance.now();
    expect(await wait([a], -1)).toEqual([]);
    expect(performance.now() - started).toBeLessThan(1000);
    a.close();
    b.close();
  });

  test("test_wait_integer, with Bun subprocesses: an exited process is ready, a running one is not", async () => {
    const [a, aPeer] = Pipe();
    const quick = Bun.spawn([bun, "-e", "0"]);
    const slow = Bun.spawn([bun, "-e", "await Bun.sleep(20_000)"]);
    try {
      expect(await wait([slow, a, quick])).toEqual([quick]);
      await aPeer.send("x");
      expect(await wait([slow, a, quick], 20)).toEqual([a, quick]);
      expect(await wait([slow], 0)).toEqual([]);
      slow.kill();
      expect(await wait([slow, aPeer])).toEqual([slow]);
    } finally {
      slow.kill();
      a.close();
      aPeer.close();
    }
  });
});

describe("readiness", () => {
  test("the ready objects come back in the order given", async () => {
    const pairs = Array.from({ length: 3 }, () => Pipe());
    const [c1, c2, c3] = pairs.map(([end]) => end) as [Connection, Connection, Connection];
    await pairs[2]![1].send(3);
    await pairs[1]![1].send(2);
    expect(await wait([c3, c1, c2], 0)).toEqual([c3, c2]);
    for (const [x, y] of pairs) x.close(), y.close();
  });

  test("timeout 0 still sees a message already on its way (like poll(0) after a send)", async () => {
    const [a, b] = Pipe();
    await b.send("in flight");
    expect(await wait([a], 0)).toEqual([a]);
    expect(await a.recv()).toBe("in flight");
    a.close();
    b.close();
  });

  test("EOF is ready: recv then raises EOFError", async () => {
    const [a, b] = Pipe();
    b.close();
    expect(await wait([a], 20)).toEqual([a]);
    await expect(a.recv()).rejects.toBeInstanceOf(EOFError);
    a.close();
  });

  test("wait([], t) sleeps t and returns []", async () => {
    const started = performance.now();
    expect(await wait([], 0.1)).toEqual([]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(80);
  });

  test("a Listener is ready when a connection can be accepted (after the authkey handshake)", async () => {
    using listener = new Listener(undefined, { authkey: "k" });
    expect(await wait([listener], 0.05)).toEqual([]);
    const client = await Client(listener.address, { authkey: "k" });
    expect(await wait([listener], 20)).toEqual([listener]);
    const accepted = await listener.accept();
    expect(await wait([listener], 0)).toEqual([]);
    await client.send("hi");
    expect(await wait([listener, accepted], 20)).toEqual([accepted]);
    client.close();
    accepted.close();
  });
});

describe("errors", () => {
  test("a closed connection → OSError('handle is closed'); a closed listener → OSError", async () => {
    const [a, b] = Pipe();
    a.close();
    await expect(wait([a], 0)).rejects.toThrow(new OSError("handle is closed"));
    const listener = new Listener();
    listener.close();
    await expect(wait([listener], 0)).rejects.toThrow("listener is closed");
    b.close();
  });

  test("a connection closed while waiting → OSError('handle is closed')", async () => {
    const [a, b] = Pipe();
    const waiting = wait([a], 20);
    setTimeout(() => a.close(), 10);
    await expect(waiting).rejects.toThrow("handle is closed");
    b.close();
  });

  test("the same object twice → TypeError '… is already registered' (Python: KeyError)", async () => {
    const [a, b] = Pipe();
    await expect(wait([a, b, a], 0)).rejects.toThrow(TypeError);
    await expect(wait([a, a], 0)).rejects.toThrow("is already registered");
    a.close();
    b.close();
  });

  test("things that cannot be waited on → TypeError; a write-only end → OSError", async () => {
    for (const bad of [42, "x", {}, null]) {
      await expect(wait([bad as unknown as Connection], 0)).rejects.toThrow(TypeError);
    }
    await expect(wait(42 as unknown as Connection[], 0)).rejects.toThrow(TypeError);
    await expect(wait([], "1" as unknown as number)).rejects.toThrow(TypeError);
    const [reader, writer] = Pipe(false);
    await expect(wait([writer], 0)).rejects.toThrow("connection is write-only");
    reader.close();
    writer.close();
  });
});
