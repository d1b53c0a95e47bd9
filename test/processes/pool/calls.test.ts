// Pool calls: apply, map, starmap, imap, imapUnordered — results, order, chunks, inputs,
// serializers, large arrays.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { Pool } from "../../../src/index.ts";
import { rejection } from "../../fixtures/assert.ts";
import { fixturePath, scratch, tasksModule, type Tasks } from "../../fixtures/pool/helpers.ts";

// These tests start worker processes on a possibly busy machine (the preload's default reaches only the first file).
setDefaultTimeout(60_000);

const pool = new Pool<Tasks>(tasksModule, { processes: 2 });
afterAll(async () => {
  pool.close();
  await pool.join();
});

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
async function* asyncRange(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) {
    if (i % 7 === 0) await Bun.sleep(0);
    yield i;
  }
}
async function collect<T>(iterator: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of iterator) out.push(value);
  return out;
}

test("apply runs one task with its arguments, sync or async", async () => {
  expect(await pool.apply("square", [7])).toBe(49);
  expect(await pool.apply("add", [2, 3])).toBe(5);
  expect(await pool.apply("slowSquare", [9])).toBe(81);
  expect(typeof (await pool.apply("pid"))).toBe("number");
});

test("map: results in input order over 1,000 items at several chunk sizes", async () => {
  const items = range(1000);
  const expected = items.map((x) => x * x);
  for (const chunksize of [1, 3, 7, 64, 333, 1000, 5000]) {
    expect(await pool.map("square", items, { chunksize })).toEqual(expected);
  }
  expect(await pool.map("square", items)).toEqual(expected);
  expect(await pool.map("slowSquare", range(50), { chunksize: 4 })).toEqual(range(50).map((x) => x * x));
});

test("map takes any iterable, and async ones; an empty input gives []", async () => {
  expect(await pool.map("square", new Set([3, 1, 2]))).toEqual([9, 1, 4]);
  expect(await pool.map("square", asyncRange(30), { chunksize: 4 })).toEqual(range(30).map((x) => x * x));
  expect(await pool.map("square", [])).toEqual([]);
});

test("starmap: each item is the argument list", async () => {
  expect(await pool.starmap("add", [[1, 2], [3, 4]])).toEqual([3, 7]);
  const pairs = range(500).map((i): [number, number] => [i, 1000 * i]);
  expect(await pool.starmap("add", pairs, { chunksize: 9 })).toEqual(pairs.map(([a, b]) => a + b));
});

test("imap: results in input order, from sync and async iterables, at several chunk sizes", async () => {
  const expected = range(1000).map((x) => x * x);
  for (const chunksize of [undefined, 1, 5, 64, 2000]) {
    expect(await collect(pool.imap("square", range(1000), { chunksize }))).toEqual(expected);
    expect(await collect(pool.imap("square", asyncRange(1000), { chunksize }))).toEqual(expected);
  }
  expect(await collect(pool.imap("square", []))).toEqual([]);
});

test("imapUnordered: every result once, as they finish", async () => {
  const expected = range(1000).map((x) => x * x);
  for (const chunksize of [undefined, 1, 16]) {
    const got = await collect(pool.imapUnordered("square", range(1000), { chunksize }));
    expect(got.sort((a, b) => a - b)).toEqual(expected);
    const fromAsync = await collect(pool.imapUnordered("square", asyncRange(1000), { chunksize }));
    expect(fromAsync.sort((a, b) => a - b)).toEqual(expected);
  }
});

test("imapUnordered yields a fast result before a slow one that started first", async () => {
  const s = scratch();
  try {
    // The slow one waits for the release file, which the consumer creates only once the fast one arrived.
    const input = [{ dir: s.dir, tag: "slow", held: true }, { dir: s.dir, tag: "fast", held: false }];
    const iterator = pool.imapUnordered("gate", input, { chunksize: 1 });
    expect((await iterator.next()).value).toBe("fast");
    s.release();
    expect((await iterator.next()).value).toBe("slow");
    expect((await iterator.next()).done).toBe(true);
  } finally {
    s.cleanup();
  }
});

test("tasks spread over distinct worker processes", async () => {
  const four = new Pool<Tasks>(tasksModule, { processes: 4 });
  const s = scratch();
  try {
    // Each call waits until four have arrived: two on one worker would never finish.
    const pids = await four.starmap("barrier", [1, 2, 3, 4].map(() => [s.dir, 4] as [string, number]), { chunksize: 1 });
    expect(pids.length).toBe(4);
    expect(new Set(pids).size).toBe(4);
    expect(pids).not.toContain(process.pid);
  } finally {
    four.terminate();
    await four.join();
    s.cleanup();
  }
});

test("10,000 tiny tasks complete, as one map and as 10,000 apply calls at once", async () => {
  const items = range(10_000);
  expect(await pool.map("square", items)).toEqual(items.map((x) => x * x));
  const results = await Promise.all(items.map((x) => pool.apply("add", [x, 1])));
  expect(results).toEqual(items.map((x) => x + 1));
});

test("values keep their types through the default serializer", async () => {
  const value = { map: new Map([[1, "a"]]), set: new Set([2n]), date: new Date(0), u: undefined, nested: [null, -0, NaN] };
  expect(await pool.apply("echo", [value])).toEqual(value);
});

test("a 16 MiB Float64Array argument and result travel whole", async () => {
  const values = new Float64Array(2 * 1024 * 1024);
  for (let i = 0; i < values.length; i++) values[i] = i % 1000;
  const expectedSum = values.reduce((a, b) => a + b, 0);
  expect(await pool.apply("sum", [values])).toBe(expectedSum);
  const doubled = await pool.apply("double", [values]);
  expect(doubled).toBeInstanceOf(Float64Array);
  expect(doubled.length).toBe(values.length);
  expect(doubled[999]).toBe(1998);
  expect(doubled[values.length - 1]).toBe(2 * ((values.length - 1) % 1000));
});

test('serializer "json": arguments and results go as JSON', async () => {
  const jsonPool = new Pool<Tasks>(tasksModule, { processes: 1, serializer: "json" });
  try {
    expect(await jsonPool.apply("echo", [{ a: [1, "x"], b: undefined }])).toEqual({ a: [1, "x"] });
    expect(await jsonPool.map("square", [1, 2, 3])).toEqual([1, 4, 9]);
  } finally {
    jsonPool.close();
    await jsonPool.join();
  }
});

test('serializer "pickle": big integers come back as bigint', async () => {
  const picklePool = new Pool<Tasks>(tasksModule, { processes: 1, serializer: "pickle" });
  try {
    expect(await picklePool.apply("echo", [[1, 2n ** 70n, "s"]])).toEqual([1, 2n ** 70n, "s"]);
  } finally {
    picklePool.close();
    await picklePool.join();
  }
});

test("a Serializer object: the workers use the module's `serializer` export", async () => {
  const module = fixturePath("custom-serializer.ts");
  const { serializer } = (await import(module)) as typeof import("../../fixtures/pool/custom-serializer.ts");
  const custom = new Pool<typeof import("../../fixtures/pool/custom-serializer.ts")>(module, { processes: 1, serializer });
  try {
    expect(await custom.apply("describe", [[1, "two"]])).toBe('object:[1,"two"]');
    expect(await custom.map("describe", [1, "a"])).toEqual(["number:1", 'string:"a"']);
  } finally {
    custom.close();
    await custom.join();
  }
});

test("map reads a sync input before it returns: changing the array afterwards changes nothing", async () => {
  const items = [1, 2, 3];
  const mapped = pool.map("square", items, { chunksize: 1 });
  items.length = 0;
  items.push(10, 20);
  expect(await mapped).toEqual([1, 4, 9]);
});

test("large typed arrays (1 MiB and up) as arguments, map items and results: every kind, any alignment", async () => {
  const n = (1 << 20) / 8 + 3;
  const floats = Float64Array.from({ length: n }, (_, i) => i / 3);
  const bigints = BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * -3n);
  const bytes = Uint8Array.from({ length: 3 << 20 }, (_, i) => i & 0xff);
  const offsetView = new Float64Array(new ArrayBuffer(8 * n + 8), 8, n); // not at the start of its buffer
  offsetView.set(floats);
  const dataView = new DataView(bytes.buffer, 1, bytes.length - 1); // byte-aligned only
  for (const value of [floats, bigints, bytes, offsetView, dataView]) {
    const back = (await pool.apply("echo", [value])) as ArrayBufferView;
    expect(back.constructor).toBe(value.constructor);
    expect(back.byteLength).toBe(value.byteLength);
    expect(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(value.buffer, value.byteOffset, value.byteLength))).toBe(true);
  }
  expect(await pool.starmap("add", [[1, 2]])).toEqual([3]);
  const sums = await pool.map("sum", [floats, offsetView, new Float64Array(4).fill(1)], { chunksize: 2 });
  const expected = floats.reduce((a, b) => a + b, 0);
  expect(sums).toEqual([expected, expected, 4]);
  const pairs = await pool.starmap("echo", [[floats], [bytes]]);
  expect((pairs[0] as Float64Array)[n - 1]).toBe((n - 1) / 3);
  expect((pairs[1] as Uint8Array)[1000]).toBe(1000 & 0xff);
});

test("a large array beside an argument that cannot be encoded: TypeError, nothing sent, the pool goes on", async () => {
  const floats = new Float64Array(1 << 18).fill(2);
  const error = await rejection(pool.apply("echo", [floats, () => 1] as unknown as [unknown]));
  expect(error).toBeInstanceOf(TypeError);
  expect(await pool.apply("sum", [floats])).toBe(2 * (1 << 18));
  expect(await pool.apply("square", [5])).toBe(25);
});
