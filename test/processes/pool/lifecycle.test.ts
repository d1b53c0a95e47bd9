// A pool's life: close, join, terminate, using / await using, stats, maxTasksPerChild, and
// workers that go when their parent dies.
import { expect, setDefaultTimeout, test } from "bun:test";
import { availableParallelism } from "node:os";
import { OSError, Pool } from "../../../src/index.ts";
import { rejection } from "../../fixtures/assert.ts";
import { bun } from "../../fixtures/run.ts";
import { alive, fixturePath, scratch, tasksModule, waitFor, type Tasks } from "../../fixtures/pool/helpers.ts";

// These tests start worker processes on a possibly busy machine (the preload's default reaches only the first file).
setDefaultTimeout(60_000);

/** The pids of a pool's workers, from a barrier every worker must reach. */
async function workerPids(pool: Pool<Tasks>, processes: number): Promise<number[]> {
  const s = scratch();
  try {
    const pids = await pool.starmap("barrier", Array.from({ length: processes }, () => [s.dir, processes] as [string, number]), { chunksize: 1 });
    expect(new Set(pids).size).toBe(processes);
    return pids;
  } finally {
    s.cleanup();
  }
}

test("workers start at once; processes defaults to the machine's available parallelism; spawn options reach them", async () => {
  const pool = new Pool<Tasks>(tasksModule, { env: { ...process.env, POOL_TEST_VALUE: "from the parent" }, stdout: "ignore" });
  try {
    expect(pool.stats().processes).toBe(availableParallelism());
    expect(await pool.apply("env", ["POOL_TEST_VALUE"])).toBe("from the parent");
    expect(await pool.apply("env", ["MPCONN_POOL_SERIALIZER"])).toBeNull(); // the pool's own variable is not left to the user's code
  } finally {
    pool.close();
    await pool.join();
  }
});

test("close(): no new tasks; queued and running ones finish; join() resolves with no worker alive", async () => {
  const pool = new Pool<Tasks>(tasksModule, { processes: 2 });
  const pids = await workerPids(pool, 2);
  const s = scratch();
  try {
    const held = [pool.apply("hold", [s.dir, "a"]), pool.apply("hold", [s.dir, "b"])];
    const queued = pool.map("square", [1, 2, 3], { chunksize: 1 });
    await waitFor(() => s.started().size === 2, "both workers busy");
    pool.close();
    const late = await rejection(pool.apply("square", [1]));
    expect(late).toBeInstanceOf(OSError);
    expect(late.message).toBe("pool is closed");
    expect((late as OSError).code).toBe("POOL_CLOSED");
    expect(await rejection(pool.map("square", [1]))).toBeInstanceOf(OSError);
    expect(() => pool.imap("square", [1])).toThrow("pool is closed");
    expect(pool.stats()).toMatchObject({ processes: 2, busy: 2, queued: 3 });
    s.release();
    expect((await Promise.all(held)).sort()).toEqual([...pids].sort());
    expect(await queued).toEqual([1, 4, 9]);
    await pool.join();
    expect(pids.filter(alive)).toEqual([]);
    expect(pool.stats()).toMatchObject({ processes: 0, busy: 0, queued: 0, failed: 0, restarts: 0 });
  } finally {
    s.cleanup();
  }
});

test("close() with an imap still reading: the pool keeps its workers until the input ends", async () => {
  const pool = new Pool<Tasks>(tasksModule, { processes: 2 });
  const iterator = pool.imap("square", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], { chunksize: 1 });
  pool.close();
  const got: number[] = [];
  for await (const value of iterator) got.push(value);
  expect(got).toEqual([1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
  await pool.join();
  expect(pool.stats().processes).toBe(0);
});

test("join() before close() or terminate() rejects: the pool is still running", async () => {
  const pool = new Pool<Tasks>(tasksModule, { processes: 1 });
  const error = await rejection(pool.join());
  expect(error).toBeInstanceOf(OSError);
  expect(error.message).toBe("pool is still running");
  expect((error as OSError).code).toBe("POOL_RUNNING");
  pool.terminate();
  await pool.join();
});

test("terminate(): workers are killed; queued and running tasks reject with OSError('pool is terminated')", async () => {
  const pool = new Pool<Tasks>(tasksModule, { processes: 2 });
  const pids = await workerPids(pool, 2);
  const s = scratch();
  try {
    const running = [pool.apply("hold", [s.dir, "a"]), pool.apply("hold", [s.dir, "b"])];
    const queued = pool.map("record", [s.dir, s.dir]);
    const iterator = pool.imap("square", (function* () {
      for (let i = 0; ; i++) yield i;
    })(), { chunksize: 2 });
    await waitFor(() => s.started().size === 2, "both workers busy");
    pool.terminate();
    for (const call of [...running, queued, iterator.next()]) {
      const error = await rejection(call);
      expect(error).toBeInstanceOf(OSError);
      expect(error.message).toBe("pool is terminated");
      expect((error as OSError).code).toBe("POOL_TERMINATED");
    }
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect((await rejection(pool.apply("square", [1]))).message).toBe("pool is closed");
    await pool.join();
    expect(pids.filter(alive)).toEqual([]);
    expect(s.ran()).toEqual([]);
    pool.terminate(); // again: nothing happens
    pool.close();
  } finally {
    s.cleanup();
  }
});

test("await using: close() and join() at the end of the block", async () => {
  let pids: number[];
  {
    await using pool = new Pool<Tasks>(tasksModule, { processes: 2 });
    pids = await workerPids(pool, 2);
    expect(await pool.map("square", [1, 2, 3])).toEqual([1, 4, 9]);
  }
  expect(pids.filter(alive)).toEqual([]);
});

test("using: terminate() at the end of the block", async () => {
  let pids: number[];
  let pool: Pool<Tasks>;
  let pending: Promise<Error>;
  {
    using p = new Pool<Tasks>(tasksModule, { processes: 1 });
    pool = p;
    pids = await workerPids(p, 1);
    pending = rejection(p.apply("hang"));
  }
  expect((await pending).message).toBe("pool is terminated");
  await pool.join();
  expect(pids.filter(alive)).toEqual([]);
});

test("stats(): workers, busy, queued, completed, failed, restarts", async () => {
  const pool = new Pool<Tasks>(tasksModule, { processes: 2 });
  const s = scratch();
  try {
    expect(pool.stats()).toEqual({ processes: 2, busy: 0, queued: 0, completed: 0, failed: 0, restarts: 0 });
    const held = [pool.apply("hold", [s.dir, "a"]), pool.apply("hold", [s.dir, "b"])];
    const queued = pool.map("square", [1, 2, 3, 4, 5], { chunksize: 2 });
    await waitFor(() => s.started().size === 2, "both workers busy");
    expect(pool.stats()).toEqual({ processes: 2, busy: 2, queued: 5, completed: 0, failed: 0, restarts: 0 });
    s.release();
    await Promise.all([...held, queued]);
    await rejection(pool.apply("fail", ["x"]));
    await rejection(pool.apply("exit", [1]));
    await waitFor(() => pool.stats().processes === 2, "the replacement");
    expect(pool.stats()).toEqual({ processes: 2, busy: 0, queued: 0, completed: 7, failed: 2, restarts: 1 });
  } finally {
    pool.close();
    await pool.join();
    s.cleanup();
  }
});

test("maxTasksPerChild: a worker is replaced after that many tasks (chunks are split to fit)", async () => {
  for (const chunksize of [1, 3]) {
    const pool = new Pool<Tasks>(tasksModule, { processes: 1, maxTasksPerChild: 2 });
    try {
      const pids = await pool.map("pid", [0, 1, 2, 3, 4, 5], { chunksize });
      const perWorker = new Map<number, number>();
      for (const pid of pids) perWorker.set(pid, (perWorker.get(pid) ?? 0) + 1);
      expect([...perWorker.values()]).toEqual([2, 2, 2]);
      await waitFor(() => pool.stats().restarts === 3, "the third replacement");
      expect(pool.stats()).toMatchObject({ processes: 1, completed: 6, restarts: 3 });
    } finally {
      pool.close();
      await pool.join();
    }
  }
});

test("workers exit when their parent dies, idle or in the middle of a task", async () => {
  const s = scratch();
  try {
    const parent = Bun.spawn([bun, fixturePath("pool-parent.ts"), s.dir], { stdout: "pipe", stderr: "inherit" });
    const reader = parent.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const pids = JSON.parse(text) as number[];
    expect(pids.length).toBe(2);
    expect(pids.every(alive)).toBe(true);
    parent.kill("SIGKILL");
    await parent.exited;
    await waitFor(() => !pids.some(alive), "the workers to exit");
  } finally {
    s.cleanup();
  }
});

test("a pool nobody closes lets the process end once its tasks are done; its workers exit with it", async () => {
  const s = scratch();
  try {
    const parent = Bun.spawn([bun, fixturePath("pool-forgotten.ts"), s.dir], { stdout: "pipe", stderr: "inherit" });
    const output = new Response(parent.stdout).text();
    // While the task nobody awaits runs, the process stays.
    await waitFor(() => s.started().has("last"), "the last task to start");
    expect(parent.exitCode).toBeNull();
    s.release();
    const ended = await Promise.race([parent.exited.then(() => true), Bun.sleep(30_000).then(() => false)]);
    if (!ended) parent.kill("SIGKILL");
    expect(ended).toBe(true);
    expect(parent.exitCode).toBe(0);
    const [first, last] = (await output).trim().split("\n").map((line) => JSON.parse(line));
    expect(first.squares).toEqual([1, 4, 9]);
    expect(last.last).toBe(s.started().get("last"));
    await waitFor(() => !(first.pids as number[]).some(alive), "the workers to exit");
  } finally {
    s.cleanup();
  }
});
