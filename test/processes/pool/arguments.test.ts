// Argument mistakes: TypeError / RangeError naming the offending value; promise-returning
// methods reject, the constructor and imap throw. Nothing is lost: the pool works after.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { OSError, Pool } from "../../../src/index.ts";
import { rejection } from "../../fixtures/assert.ts";
import { relative } from "node:path";
import { fixturePath, tasksModule, type Tasks } from "../../fixtures/pool/helpers.ts";

// These tests start worker processes on a possibly busy machine (the preload's default reaches only the first file).
setDefaultTimeout(60_000);

const pool = new Pool<Tasks>(tasksModule, { processes: 1 });
afterAll(async () => {
  pool.close();
  await pool.join();
});
type Loose = Pool<Record<string, (...args: unknown[]) => unknown>>;
const loose = pool as unknown as Loose;

test("the constructor: module and options are checked before any worker starts", () => {
  expect(() => new Pool("/no/such/tasks.ts")).toThrow(OSError);
  expect(() => new Pool("/no/such/tasks.ts")).toThrow("[Errno 2] No such file or directory: '/no/such/tasks.ts'");
  try {
    new Pool("/no/such/tasks.ts");
  } catch (error) {
    expect((error as OSError).code).toBe("ENOENT");
  }
  expect(() => new Pool(42 as unknown as string)).toThrow(new TypeError("module must be a path or a file: URL, not number 42"));
  expect(() => new Pool(new URL("https://example.com/tasks.ts"))).toThrow(TypeError);
  expect(() => new Pool(tasksModule, { processes: 0 })).toThrow(new RangeError("processes must be at least 1, not 0"));
  expect(() => new Pool(tasksModule, { processes: 1.5 })).toThrow(new TypeError("processes must be a whole number, not number 1.5"));
  expect(() => new Pool(tasksModule, { processes: "2" as unknown as number })).toThrow(TypeError);
  expect(() => new Pool(tasksModule, { maxTasksPerChild: 0 })).toThrow(new RangeError("maxTasksPerChild must be at least 1, not 0"));
  expect(() => new Pool(tasksModule, { serializer: "yaml" as "json" })).toThrow(TypeError);
  expect(() => new Pool(tasksModule, null as unknown as {})).toThrow(TypeError);
});

test("a relative path is taken from the working directory", async () => {
  const path = relative(process.cwd(), fixturePath("tasks.ts"));
  expect(path.startsWith("/")).toBe(false);
  const relativePool = new Pool<Tasks>(path, { processes: 1, cwd: "/" });
  try {
    expect(await relativePool.apply("square", [3])).toBe(9);
  } finally {
    relativePool.close();
    await relativePool.join();
  }
});

test("apply: name, args and signal are checked; the call rejects", async () => {
  expect(await rejection(loose.apply(7 as unknown as string))).toEqual(new TypeError("the task name must be a non-empty string, not number 7"));
  expect(await rejection(loose.apply(""))).toBeInstanceOf(TypeError);
  expect(await rejection(loose.apply("square", 5 as unknown as unknown[]))).toEqual(new TypeError("args must be an array of arguments, not number 5"));
  expect(await rejection(loose.apply("square", [1], { signal: "no" as unknown as AbortSignal }))).toEqual(new TypeError('signal must be an AbortSignal, not string "no"'));
  expect(await pool.apply("square", [4])).toBe(16);
});

test("map / starmap: input, chunksize and argument lists are checked; the call rejects", async () => {
  expect(await rejection(loose.map("square", 5 as unknown as number[]))).toEqual(new TypeError("expected an iterable or async iterable, not number 5"));
  expect(await rejection(loose.map("square", [1], { chunksize: 0 }))).toEqual(new RangeError("chunksize must be at least 1, not 0"));
  expect(await rejection(loose.map("square", [1], { chunksize: 2.5 }))).toBeInstanceOf(TypeError);
  expect(await rejection(loose.starmap("add", [[1, 2], 3 as unknown as unknown[]]))).toEqual(new TypeError("starmap: item 1 must be an array of arguments, not number 3"));
  expect(pool.stats().queued).toBe(0);
  expect(await pool.map("square", [1, 2])).toEqual([1, 4]);
});

test("imap / imapUnordered: mistakes throw at the call", () => {
  expect(() => loose.imap("square", 5 as unknown as number[])).toThrow(new TypeError("expected an iterable or async iterable, not number 5"));
  expect(() => loose.imapUnordered("square", [1], { chunksize: -1 })).toThrow(RangeError);
  expect(() => loose.imap(null as unknown as string, [1])).toThrow(TypeError);
});
