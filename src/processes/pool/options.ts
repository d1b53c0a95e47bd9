// The pool's options and arguments: checks with the offending value in the message, and the
// default chunk size.
import { availableParallelism } from "node:os";
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { osError } from "../../os/libc.ts";

/** The worker module as a file: URL, from a path (relative to the working directory) or a URL. */
export function moduleUrl(module: unknown): URL {
  let url: URL;
  if (module instanceof URL) url = module;
  else if (typeof module === "string" && module.startsWith("file:")) url = new URL(module);
  else if (typeof module === "string" && module !== "") url = pathToFileURL(isAbsolute(module) ? module : resolve(module));
  else throw new TypeError(`module must be a path or a file: URL, not ${describe(module)}`);
  if (url.protocol !== "file:") throw new TypeError(`module must be a path or a file: URL, not ${url.href}`);
  const path = fileURLToPath(url);
  if (!existsSync(path)) throw osError("ENOENT", `'${path}'`);
  return url;
}

/** A whole number ≥ 1 (processes, maxTasksPerChild, chunksize); `fallback` when not given. */
export function positiveInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value)) throw new TypeError(`${name} must be a whole number, not ${describe(value)}`);
  if (value < 1) throw new RangeError(`${name} must be at least 1, not ${value}`);
  return value;
}

export function defaultProcesses(): number {
  return Math.max(1, availableParallelism());
}

/**
 * map/starmap without a chunksize: Python's rule, about 4 chunks per process, so that every
 * worker gets several (the last ones even out uneven tasks) while a chunk's message costs little
 * beside its items.
 */
export function mapChunksize(items: number, processes: number): number {
  return Math.max(1, Math.ceil(items / (processes * 4)));
}

export function taskName(name: unknown): string {
  if (typeof name !== "string" || name === "") throw new TypeError(`the task name must be a non-empty string, not ${describe(name)}`);
  return name;
}

export function signalOption(signal: unknown): AbortSignal | undefined {
  if (signal === undefined || signal === null) return undefined;
  if (!(signal instanceof AbortSignal)) throw new TypeError(`signal must be an AbortSignal, not ${describe(signal)}`);
  return signal;
}

/** A value as an error message shows it: "null", "Map", "number 5". */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "Array";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  if (typeof value === "string") return `string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}
