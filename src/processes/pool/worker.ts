// The worker process of a Pool: `bun worker.ts <module URL>`, started by the pool with spawn().
// It loads the user's module, says hello (its exported functions, or why it could not load),
// then runs the chunks its parent sends, one at a time, until the connection closes: when
// the parent closes it (the pool retires this worker) or dies, the worker exits.
import { fileURLToPath } from "node:url";
import { EOFError, OSError } from "../../errors.ts";
import type { Connection } from "../../connection/connection.ts";
import { parentConnection } from "../spawn.ts";
import type { Serializer } from "../../serializers/serializer.ts";
import type { SerializerName } from "../../serializers/index.ts";
import { structured } from "../../serializers/structured.ts";
import { receiveParts, sendParts, takeLarge } from "./large-arrays.ts";
import { CUSTOM_SERIALIZER, DONE, FAILED, SERIALIZER_ENV, describeError, encodeHello, type ErrorInfo, type Outcome, type Task } from "./protocol.ts";

type Tasks = Record<string, unknown>;

const moduleUrl = process.argv[2] ?? "";
const serializerChoice = process.env[SERIALIZER_ENV] ?? "structured";
// The user's own child processes should not take this for a pool worker's environment.
delete process.env[SERIALIZER_ENV];

const modulePath = moduleUrl.startsWith("file:") ? fileURLToPath(moduleUrl) : moduleUrl;

let tasks: Tasks;
let serializer: SerializerName | Serializer;
try {
  tasks = (await import(moduleUrl)) as Tasks;
  serializer = chooseSerializer(tasks);
} catch (error) {
  const conn = parentConnection();
  await conn.sendBytes(encodeHello({ error: describeError(error) })).catch(() => {});
  conn.close();
  process.exit(1);
}

const conn = parentConnection({ serializer }) as Connection<Task | Outcome>;
const names = Object.keys(tasks).filter((name) => typeof tasks[name] === "function");
try {
  await conn.sendBytes(encodeHello({ tasks: names }));
} catch {
  process.exit(0); // the pool is gone already
}

const waiting: Task[] = [];
let running = false;
const largeArrays = serializerChoice === "structured";
void receive();

function chooseSerializer(module: Tasks): SerializerName | Serializer {
  if (serializerChoice !== CUSTOM_SERIALIZER) return serializerChoice as SerializerName;
  const own = module.serializer as Partial<Serializer> | undefined;
  if (typeof own?.dumps !== "function" || typeof own.loads !== "function") {
    throw new TypeError(
      `the pool's serializer is a custom object: ${modulePath} must export that same serializer as \`serializer\``,
    );
  }
  return own as Serializer;
}

/** Take tasks as they come (a task's large arrays right after it); EOF ends the process at once. */
async function receive(): Promise<void> {
  for (;;) {
    let task: Task;
    try {
      task = (await conn.recv()) as Task;
      if (task[3]) await receiveParts(conn as Connection<unknown>, task[2], task[3]);
    } catch (error) {
      // EOF: the pool closed this worker, or the parent died. Either way nobody waits for results.
      if (error instanceof EOFError || error instanceof OSError) process.exit(0);
      process.stderr.write(`mpconn pool worker ${process.pid}: ${String(error)}\n`);
      process.exit(70);
    }
    waiting.push(task);
    if (!running) void serve();
  }
}

async function serve(): Promise<void> {
  running = true;
  while (waiting.length > 0) answer(await run(waiting.shift()!));
  running = false;
}

/**
 * Run the chunk's items in order; stop at the first that throws (as Python's Pool). Synchronous
 * while the task returns plain values; from the first promise on, the rest waits for each.
 */
function run([name, star, items]: Task): Outcome | Promise<Outcome> {
  const task = tasks[name];
  if (typeof task !== "function") return [FAILED, [], unknownTask(name)];
  const fn = task as (...args: unknown[]) => unknown;
  const values: unknown[] = [];
  for (let i = 0; i < items.length; i++) {
    let value: unknown;
    try {
      value = star ? fn(...(items[i] as unknown[])) : fn(items[i]);
    } catch (error) {
      return [FAILED, values, describeError(error)];
    }
    if (isThenable(value)) return runAsync(fn, star, items, i, value, values);
    values.push(value);
  }
  return [DONE, values];
}

async function runAsync(fn: (...args: unknown[]) => unknown, star: 0 | 1, items: unknown[], from: number, pending: PromiseLike<unknown>, values: unknown[]): Promise<Outcome> {
  for (let i = from; i < items.length; i++) {
    try {
      values.push(await (i === from ? pending : star ? fn(...(items[i] as unknown[])) : fn(items[i])));
    } catch (error) {
      return [FAILED, values, describeError(error)];
    }
  }
  return [DONE, values];
}

function answer(outcome: Outcome): void {
  send(outcome).catch((error: unknown) => {
    if (error instanceof OSError) process.exit(0); // the pool is gone
    // The results could not be encoded (Python: MaybeEncodingError): the chunk fails with why.
    const info = describeError(error);
    info.message = `could not send the result: ${info.message}`;
    conn.send([FAILED, [], info]).catch(() => process.exit(0));
  });
}

/** An outcome, its large arrays beside it (encoded first, so that nothing is sent if it cannot be). */
function send(outcome: Outcome): Promise<unknown> {
  const large = largeArrays ? takeLarge(outcome[1], false) : null;
  if (!large) return conn.send(outcome);
  outcome[1] = large.items;
  outcome.push(large.holes as never);
  let bytes: Uint8Array;
  try {
    bytes = structured.dumps(outcome);
  } catch (error) {
    return Promise.reject(error);
  }
  return Promise.all([conn.sendBytes(bytes), sendParts(conn as Connection<unknown>, large.parts)]);
}

function unknownTask(name: string): ErrorInfo {
  const list = names.length > 0 ? names.map((n) => `'${n}'`).join(", ") : "none";
  return {
    name: "TypeError",
    message: `'${name}' is not a task of ${modulePath}: it exports no function of that name (its functions: ${list})`,
    stack: "",
    unknownTask: true,
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}
