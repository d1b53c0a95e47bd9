// AbortSignal: a queued task is dropped, a running one has its worker killed and replaced;
// either way the call rejects with the signal's reason.
import { expect, setDefaultTimeout, test } from "bun:test";
import { Pool } from "../../../src/index.ts";
import { rejection } from "../../fixtures/assert.ts";
import { alive, scratch, tasksModule, waitFor, type Tasks } from "../../fixtures/pool/helpers.ts";

// These tests start worker processes on a possibly busy machine (the preload's default reaches only the first file).
setDefaultTimeout(60_000);

test("abort of a queued task: it never runs; the call rejects with the reason", async () => {
  const pool = new Pool<Tasks>(tasksModule, { processes: 1 });
  const s = scratch();
  try {
    const held = pool.apply("hold", [s.dir, "a"]);
    const controller = new AbortController();
    const queued = pool.apply("record", [s.dir, "queued"], { signal: controller.signal });
    await waitFor(() => s.started().size === 1, "the worker busy");
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 1 });
    const reason = new Error("not needed any more");
    controller.abort(reason);
    expect(await rejection(queued)).toBe(reason);
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 0, failed: 1 });
    s.release();
    const pid = await held;
    expect(await pool.apply("record", [s.dir, "after"])).toBe("after");
    expect(s.ran()).toEqual(["after"]);
    expect(await pool.apply("pid")).toBe(pid); // no worker was killed
    expect(pool.stats().restarts).toBe(0);
  } finally {
    pool.close();
    await pool.join();
    s.cleanup();
  }
});

test("abort of a running task: its worker is killed and replaced", async () => {
  const pool = new Pool<Tasks>(tasksModule, { processes: 1 });
  try {
    const before = await pool.apply("pid");
    const controller = new AbortController();
    const running = pool.apply("hang", [], { signal: controller.signal });
    await waitFor(() => pool.stats().busy === 1, "the task running");
    controller.abort(); // the default reason: a DOMException named AbortError
    const error = await rejection(running);
    expect(error.name).toBe("AbortError");
    expect(error).toBe(controller.signal.reason);
    const after = await pool.apply("pid");
    expect(after).not.toBe(before);
    expect(alive(before)).toBe(false);
    expect(pool.stats()).toMatchObject({ processes: 1, restarts: 1, failed: 1 });
  } finally {
    pool.close();
    await pool.join();
  }
});

test("a signal aborted before the call: it rejects at once and nothing runs", async () => {
  const pool = new Pool<Tasks>(tasksModule, { processes: 1 });
  const s = scratch();
  try {
    const signal = AbortSignal.abort("too late");
    expect(await pool.apply("record", [s.dir, "x"], { signal }).then(() => "resolved", (r: unknown) => r)).toBe("too late");
    expect(await pool.map("record", [s.dir], { signal }).then(() => "resolved", (r: unknown) => r)).toBe("too late");
    expect(await pool.apply("record", [s.dir, "y"])).toBe("y");
    expect(s.ran()).toEqual(["y"]);
  } finally {
    pool.close();
    await pool.join();
    s.cleanup();
  }
});

test("abort of a map: workers running its chunks are killed and replaced, its queued chunks never run", async () => {
  const pool = new Pool<Tasks>(tasksModule, { processes: 2 });
  const s = scratch();
  try {
    const controller = new AbortController();
    const items = ["a", "b", "c", "d", "e"].map((tag) => ({ dir: s.dir, tag, held: true }));
    const mapped = pool.map("gate", items, { chunksize: 1, signal: controller.signal });
    await waitFor(() => s.started().size === 2, "two chunks running");
    const victims = [...s.started().values()];
    expect(pool.stats()).toMatchObject({ busy: 2, queued: 3 });
    controller.abort(new RangeError("stop"));
    expect((await rejection(mapped)).message).toBe("stop");
    expect(pool.stats()).toMatchObject({ queued: 0, failed: 5 });
    await waitFor(() => pool.stats().restarts === 2, "both replaced");
    s.release();
    expect(await pool.map("square", [1, 2, 3, 4], { chunksize: 1 })).toEqual([1, 4, 9, 16]);
    expect(victims.filter(alive)).toEqual([]);
    expect([...s.started().keys()].sort()).toEqual(["a", "b"]);
  } finally {
    pool.close();
    await pool.join();
    s.cleanup();
  }
});

test("abort of an imap: it throws the reason; running chunks' workers are replaced", async () => {
  const pool = new Pool<Tasks>(tasksModule, { processes: 1 });
  const s = scratch();
  try {
    const controller = new AbortController();
    const input = ["a", "b", "c"].map((tag) => ({ dir: s.dir, tag, held: true }));
    const iterator = pool.imap("gate", input, { chunksize: 1, signal: controller.signal });
    const first = iterator.next();
    await waitFor(() => s.started().size === 1, "the first chunk running");
    controller.abort("enough");
    expect(await first.then(() => "resolved", (r: unknown) => r)).toBe("enough");
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    await waitFor(() => pool.stats().restarts === 1, "the replacement");
    expect(await pool.apply("square", [2])).toBe(4);
  } finally {
    pool.close();
    await pool.join();
    s.cleanup();
  }
});
