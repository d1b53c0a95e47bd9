// What the pool and its workers say to each other. One connection per worker:
//
//   worker → parent, first:  the hello, as JSON bytes (independent of the pool's serializer,
//                            so a worker can report a module that failed to load even when the
//                            serializer is the module's own): { tasks } or { error }.
//   parent → worker:         Task = [name, star, items, holes?], one chunk; the worker calls
//                            name(item) for each item, or name(...item) when star is 1.
//   worker → parent:         Outcome = [DONE, values, holes?] or [FAILED, values, error, holes?],
//                            where values are the results of the items before the one that failed.
//   after a Task or Outcome with holes: one bytes message per hole, the large typed arrays
//                            taken out of items or values (large-arrays.ts).
//
// A worker gets its next chunk only after it answered the last one.
import { RemoteError } from "./errors.ts";
import type { Hole } from "./large-arrays.ts";

/** The environment variable that tells a worker the pool's serializer: a name, or CUSTOM_SERIALIZER. */
export const SERIALIZER_ENV = "MPCONN_POOL_SERIALIZER";
/** A serializer object cannot cross to the worker: the worker takes its module's `serializer` export. */
export const CUSTOM_SERIALIZER = "module";

export type Task = [name: string, star: 0 | 1, items: unknown[], holes?: Hole[]];

export const DONE = 0;
export const FAILED = 1;
export type Outcome = [typeof DONE, unknown[], Hole[]?] | [typeof FAILED, unknown[], ErrorInfo, Hole[]?];

/** The holes of an outcome (large arrays sent after it), if any. */
export function outcomeHoles(outcome: Outcome): Hole[] | undefined {
  return outcome[0] === DONE ? outcome[2] : outcome[3];
}

/** An error as it crosses the process boundary. `unknownTask`: the name is not one of the module's functions. */
export interface ErrorInfo {
  name: string;
  message: string;
  stack: string;
  code?: string;
  unknownTask?: boolean;
}

export type Hello = { tasks: string[] } | { error: ErrorInfo };

/** Whatever a task threw, as an ErrorInfo (a thrown non-Error becomes an "Error" with its text). */
export function describeError(thrown: unknown): ErrorInfo {
  if (thrown instanceof Error || (typeof thrown === "object" && thrown !== null && "message" in thrown)) {
    const e = thrown as { name?: unknown; message?: unknown; stack?: unknown; code?: unknown };
    const info: ErrorInfo = {
      name: typeof e.name === "string" && e.name !== "" ? e.name : "Error",
      message: String(e.message ?? ""),
      stack: typeof e.stack === "string" ? e.stack : "",
    };
    if (typeof e.code === "string") info.code = e.code;
    return info;
  }
  return { name: "Error", message: String(thrown), stack: "" };
}

/** The caller's side of a task error: RemoteError, or the TypeError of an unknown task name. */
export function remoteError(info: ErrorInfo): Error {
  if (info.unknownTask) return new TypeError(info.message);
  return new RemoteError(info.name, info.message, info.stack, info.code);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeHello(hello: Hello): Uint8Array {
  return encoder.encode(JSON.stringify(hello));
}

export function decodeHello(bytes: Uint8Array): Hello {
  const hello = JSON.parse(decoder.decode(bytes)) as Partial<{ tasks: unknown; error: ErrorInfo }>;
  if (Array.isArray(hello.tasks)) return { tasks: hello.tasks.map(String) };
  if (hello.error && typeof hello.error.message === "string") return { error: hello.error };
  throw new Error("mpconn pool: the worker's first message is not a hello");
}
