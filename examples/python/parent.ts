// A Bun parent with a Python worker:   bun examples/python/parent.ts
//
// Starts an mpconn Listener with an authkey, starts worker.py (plain CPython, using
// multiprocessing.connection.Client) with Bun.spawn, sends it a few tasks with the pickle
// serializer and prints the results. PYTHON=/path/to/python3 picks the interpreter.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Listener } from "mpconn";

const python = process.env.PYTHON ?? "python3";
const authkey = randomBytes(32).toString("hex"); // a fresh secret; the worker gets it through its environment

// No address: a unix socket in a private temporary directory, removed on exit.
using listener = new Listener(undefined, { authkey, serializer: "pickle" });
const worker = Bun.spawn([python, join(import.meta.dir, "worker.py"), String(listener.address)], {
  env: { ...process.env, MPCONN_AUTHKEY: authkey },
  stdout: "inherit",
  stderr: "inherit",
});

const conn = await listener.accept(); // the handshake has proved the worker knows the key

const tasks = [
  { id: 1, op: "square", x: 12 },
  { id: 2, op: "factorial", n: 30 },
  { id: 3, op: "sha256", data: new TextEncoder().encode("hello") },
  { id: 4, op: "stats", values: [3, 1, 4, 1, 5, 9, 2, 6] },
  { id: 5, op: "unique", items: ["b", "a", "b", "c"] },
  { id: 6, op: "no-such-op" },
];
for (const task of tasks) await conn.send(task); // pipelined: the worker answers in order
await conn.send(null); // Python's None: "no more work"

type Result = { id: number; ok: boolean; result?: unknown; error?: string };
const show = (v: unknown): string =>
  v instanceof Uint8Array ? Buffer.from(v).toString("hex")
  : typeof v === "bigint" ? `${v}n`
  : v instanceof Set ? `Set {${[...v].sort().join(", ")}}`
  : Bun.inspect(v, { compact: true }).replace(/\s+/g, " ");
for (const task of tasks) {
  const { id, ok, result, error } = (await conn.recv()) as Result;
  const label = task.op === "square" ? `square(${task.x})` : task.op === "factorial" ? `factorial(${task.n})` : task.op;
  console.log(`task ${id}: ${label} = ${ok ? show(result) : `error: ${error}`}`);
}

conn.close();
console.log(`worker exited with ${await worker.exited}`);
