// What goes wrong in a pool: a task that throws, an unknown task, a worker that dies, a module
// that cannot load, values that cannot be sent.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { Pipe, Pool, ProcessError, RemoteError, WorkerExitedError } from "../../../src/index.ts";
import { START_FAILURE_LIMIT } from "../../../src/processes/pool/dispatcher.ts";
import { rejection } from "../../fixtures/assert.ts";
import { fixturePath, scratch, tasksModule, waitFor, type Tasks } from "../../fixtures/pool/helpers.ts";

// These tests start worker processes on a possibly busy machine (the preload's default reaches only the first file).
setDefaultTimeout(60_000);

const pool = new Pool<Tasks>(tasksModule, { processes: 1 });
afterAll(async () => {
  pool.close();
  await pool.join();
});

test("a task that throws rejects with RemoteError (name, message, the worker's stack); the worker serves on", async () => {
  const before = await pool.apply("pid");
  const error = await rejection(pool.apply("fail", ["no such thing"]));
  expect(error).toBeInstanceOf(RemoteError);
  expect(error).toBeInstanceOf(ProcessError);
  expect(error.name).toBe("RangeError");
  expect(error.message).toBe("no such thing");
  const remote = error as RemoteError;
  expect(remote.remoteStack).toContain("RangeError: no such thing");
  expect(remote.remoteStack).toContain("at fail (");
  expect(remote.remoteStack).toContain("tasks.ts");
  expect(await pool.apply("pid")).toBe(before);
  expect(pool.stats().restarts).toBe(0);
});

test("a rejected promise and a thrown non-Error are RemoteErrors too", async () => {
  const later = await rejection(pool.apply("failLater", ["async"]));
  expect(later).toBeInstanceOf(RemoteError);
  expect([later.name, later.message]).toEqual(["SyntaxError", "async"]);
  const thrown = await rejection(pool.apply("throwString", ["just text"]));
  expect(thrown).toBeInstanceOf(RemoteError);
  expect([thrown.name, thrown.message, (thrown as RemoteError).remoteStack]).toEqual(["Error", "just text", ""]);
});

test("map: the first task error rejects the whole call; the pool goes on", async () => {
  const before = pool.stats();
  const error = await rejection(pool.starmap("failAt", [0, 1, 2, 3, 4, 5].map((x) => [x, 3] as [number, number]), { chunksize: 2 }));
  // One worker: [0, 1] ran, [2, 3] failed at 3, [4, 5] never ran; every item is counted.
  await waitFor(() => pool.stats().busy === 0, "the pool idle");
  const after = pool.stats();
  expect([after.completed - before.completed, after.failed - before.failed]).toEqual([3, 3]);
  expect(error).toBeInstanceOf(RemoteError);
  expect(error.message).toBe("item 3 is bad");
  expect(await pool.map("square", [1, 2])).toEqual([1, 4]);
});

test("imap: a task error is thrown at that result, after the ones before it; then the iterator is done", async () => {
  for (const chunksize of [1, 2, 4, 100]) {
    const got: number[] = [];
    const iterator = pool.imap("failAt", [0, 1, 2, 3, 4, 5], { chunksize });
    let caught: unknown = null;
    try {
      for await (const value of iterator) got.push(value);
    } catch (error) {
      caught = error;
    }
    expect(got).toEqual([0, 1, 2]);
    expect(caught).toBeInstanceOf(RemoteError);
    expect((caught as Error).message).toBe("item 3 is bad");
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  }
  const unordered = pool.imapUnordered("failAt", [0, 1, 2, 3, 4, 5], { chunksize: 1 });
  const seen: number[] = [];
  const error = await rejection((async () => {
    for await (const value of unordered) seen.push(value);
  })());
  expect(error.message).toBe("item 3 is bad");
  expect(seen).not.toContain(3);
  expect(await unordered.next()).toEqual({ done: true, value: undefined });
  expect(await pool.apply("square", [3])).toBe(9);
});

test("an input that throws: map rejects with its error; imap throws it after the results before it", async () => {
  function* badInput(): Generator<number> {
    yield 1;
    yield 2;
    throw new Error("input broke");
  }
  const mapped = await rejection(pool.map("square", badInput()));
  expect(mapped.message).toBe("input broke");
  const got: number[] = [];
  const error = await rejection((async () => {
    for await (const value of pool.imap("square", badInput(), { chunksize: 1 })) got.push(value);
  })());
  expect(error.message).toBe("input broke");
  expect(error).not.toBeInstanceOf(RemoteError);
  expect(got).toEqual([1, 4]);
});

test("an unknown task name rejects with a TypeError naming the task and the module", async () => {
  for (const name of ["cube", "notATask"]) {
    const error = await rejection(pool.apply(name as "square", [1]));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toContain(`'${name}'`);
    expect(error.message).toContain("tasks.ts");
  }
  expect(await rejection(pool.map("cube" as "square", [1, 2]))).toBeInstanceOf(TypeError);
});

test("a worker that exits under its task: WorkerExitedError with the exit code; a replacement serves", async () => {
  const before = pool.stats().restarts;
  const error = await rejection(pool.apply("exit", [3]));
  expect(error).toBeInstanceOf(WorkerExitedError);
  expect(error).toBeInstanceOf(ProcessError);
  expect((error as WorkerExitedError).exitCode).toBe(3);
  expect((error as WorkerExitedError).signalCode).toBeNull();
  expect(error.message).toContain("exited with code 3");
  expect(await pool.apply("square", [5])).toBe(25);
  expect(pool.stats().restarts).toBe(before + 1);
});

test("a SIGKILLed worker with 50 tasks in flight on 4 processes fails only its own task", async () => {
  const four = new Pool<Tasks>(tasksModule, { processes: 4 });
  const s = scratch();
  try {
    const calls = Array.from({ length: 50 }, (_, i) => four.apply("hold", [s.dir, String(i)]).then((pid) => ({ pid }), (error: Error) => ({ error })));
    await waitFor(() => s.started().size === 4, "4 tasks running");
    expect(four.stats()).toMatchObject({ processes: 4, busy: 4, queued: 46 });
    const [victimTag, victimPid] = [...s.started()][0]!;
    process.kill(victimPid, "SIGKILL");
    const victim = await calls[Number(victimTag)]!;
    s.release();
    const outcomes = await Promise.all(calls);
    const failed = outcomes.flatMap((o, i) => ("error" in o ? [i] : []));
    expect(failed).toEqual([Number(victimTag)]);
    const error = (victim as { error: Error }).error;
    expect(error).toBeInstanceOf(WorkerExitedError);
    expect((error as WorkerExitedError).signalCode).toBe("SIGKILL");
    expect((error as WorkerExitedError).exitCode).toBeNull();
    expect((error as WorkerExitedError).pid).toBe(victimPid);
    expect(error.message).toContain("SIGKILL");
    expect(outcomes.every((o) => "error" in o || o.pid !== victimPid)).toBe(true);
    expect(four.stats()).toMatchObject({ processes: 4, busy: 0, queued: 0, completed: 49, failed: 1, restarts: 1 });
  } finally {
    four.terminate();
    await four.join();
    s.cleanup();
  }
});

test("a module that fails to load: its tasks reject with its error; the pool stops restarting workers", async () => {
  for (const processes of [1, 2]) {
    const broken = new Pool(fixturePath("broken.ts"), { processes });
    try {
      const error = await rejection(broken.apply("square", [2]));
      expect(error).toBeInstanceOf(RemoteError);
      expect([error.name, error.message]).toEqual(["SyntaxError", "tasks.ts is broken on purpose"]);
      expect((error as RemoteError).remoteStack).toContain("broken.ts");
      await waitFor(() => broken.stats().processes === 0, "every worker gone");
      expect(broken.stats().restarts).toBe(START_FAILURE_LIMIT - 1);
      const later = await rejection(broken.map("square", [1, 2, 3]));
      expect([later.name, later.message]).toEqual(["SyntaxError", "tasks.ts is broken on purpose"]);
      expect(broken.stats().restarts).toBe(START_FAILURE_LIMIT - 1);
    } finally {
      broken.close();
      await broken.join();
    }
  }
});

test("a module that exits while loading: WorkerExitedError, and no restart loop", async () => {
  const exits = new Pool(fixturePath("exits.ts"), { processes: 1 });
  try {
    const error = await rejection(exits.apply("square", [2]));
    expect(error).toBeInstanceOf(WorkerExitedError);
    expect((error as WorkerExitedError).exitCode).toBe(4);
    await waitFor(() => exits.stats().processes === 0, "every worker gone");
    expect(exits.stats().restarts).toBe(START_FAILURE_LIMIT - 1);
    expect(await rejection(exits.apply("square", [2]))).toBeInstanceOf(WorkerExitedError);
  } finally {
    exits.close();
    await exits.join();
  }
});

test("a Serializer object the module does not export: the load fails with a TypeError saying so", async () => {
  const custom = new Pool<Tasks>(tasksModule, { processes: 1, serializer: { dumps: (v) => new TextEncoder().encode(JSON.stringify(v)), loads: (b) => JSON.parse(new TextDecoder().decode(b)) } });
  try {
    const error = await rejection(custom.apply("square", [2]));
    expect(error.name).toBe("TypeError");
    expect(error.message).toContain("must export that same serializer as `serializer`");
  } finally {
    custom.terminate();
    await custom.join();
  }
});

test("arguments the serializer cannot encode: TypeError, nothing sent; results it cannot encode: RemoteError", async () => {
  const error = await rejection(pool.apply("echo", [() => 1]));
  expect(error).toBeInstanceOf(TypeError);
  expect(await pool.apply("square", [6])).toBe(36);
  const [a, b] = Pipe();
  const connection = await rejection(pool.map("echo", [1, { conn: a }]));
  expect(connection).toEqual(new TypeError("a Connection cannot be an argument of a pool task"));
  const got: unknown[] = [];
  const imapError = await rejection((async () => {
    for await (const value of pool.imap("echo", [1, 2, () => 3, 4], { chunksize: 1 })) got.push(value);
  })());
  expect(imapError).toBeInstanceOf(TypeError);
  expect(got).toEqual([1, 2]);
  a.close();
  b.close();
  expect(pool.stats().queued).toBe(0);
  const result = await rejection(pool.apply("unsendable"));
  expect(result).toBeInstanceOf(RemoteError);
  expect(result.name).toBe("TypeError");
  expect(result.message).toStartWith("could not send the result: ");
  expect(await pool.apply("square", [7])).toBe(49);
});
