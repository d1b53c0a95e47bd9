// Pool: Python's multiprocessing.Pool for Bun. The tasks are the named exports of a worker
// module, run in `processes` worker processes started with spawn(); this file checks the
// arguments and turns each call into chunks for the dispatcher.
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import type { SpawnOptions } from "../spawn.ts";
import { resolveSerializer } from "../../serializers/index.ts";
import { Call } from "./call.ts";
import { Chunk } from "./chunk.ts";
import { Dispatcher, type PoolStats } from "./dispatcher.ts";
import { IMap } from "./imap.ts";
import { TaskCodec } from "./task-codec.ts";
import { CUSTOM_SERIALIZER, SERIALIZER_ENV } from "./protocol.ts";
import { defaultProcesses, describe, mapChunksize, moduleUrl, positiveInteger, signalOption, taskName } from "./options.ts";

export type { PoolStats } from "./dispatcher.ts";

/**
 * The worker entry that ships with mpconn: loads the user's module and serves its exports. Beside
 * this file, with its extension (worker.ts in the sources, worker.js in the published dist/).
 */
const WORKER_ENTRY = fileURLToPath(new URL(`./worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export interface PoolOptions extends SpawnOptions {
  /** Worker processes (default: the machine's available parallelism). */
  processes?: number;
  /** Replace a worker after it ran this many tasks (default: never). */
  maxTasksPerChild?: number | null;
}

export interface MapOptions {
  /** Items per message to a worker (default: about 4 chunks per process). */
  chunksize?: number;
  signal?: AbortSignal;
}

export interface IMapOptions {
  /** Items per message to a worker (default: sized as it goes, so that a chunk takes about 2 ms). */
  chunksize?: number;
  signal?: AbortSignal;
}

/** The functions a worker module exports, by name. */
export type TaskName<T> = { [K in keyof T]: T[K] extends (...args: infer _A) => unknown ? K : never }[keyof T] & string;
/** The argument list of task `K`. */
export type TaskArgs<T, K extends keyof T> = T[K] extends (...args: infer A) => unknown ? A : never;
/** What task `K` resolves with. */
export type TaskResult<T, K extends keyof T> = T[K] extends (...args: infer _A) => infer R ? Awaited<R> : never;
/** Without a module type: any name, any arguments, unknown results. */
export type AnyTasks = Record<string, (...args: unknown[]) => unknown>;

/**
 * A pool of worker processes running the exported functions of one module.
 * `new Pool<typeof import("./tasks.ts")>(url)` types the task names, arguments and results.
 */
export class Pool<T extends object = AnyTasks> implements AsyncDisposable, Disposable {
  private readonly dispatcher: Dispatcher;

  /** Start the workers. `module`: path (relative to the working directory) or file: URL of the worker module. */
  constructor(module: string | URL, options: PoolOptions = {}) {
    if (typeof options !== "object" || options === null) throw new TypeError(`options must be an object, not ${describe(options)}`);
    const url = moduleUrl(module);
    const { processes, maxTasksPerChild, serializer, stdin = "ignore", env, ...spawnOptions } = options;
    const count = positiveInteger("processes", processes, defaultProcesses());
    const maxTasks = positiveInteger("maxTasksPerChild", maxTasksPerChild, Infinity);
    const codec = new TaskCodec(resolveSerializer(serializer)); // a bad serializer is a TypeError here, not in every worker
    const serializerEnv = typeof serializer === "object" ? CUSTOM_SERIALIZER : (serializer ?? "structured");
    const launch = {
      cmd: [process.execPath, WORKER_ENTRY, url.href],
      options: { ...spawnOptions, stdin, serializer, env: { ...(env ?? process.env), [SERIALIZER_ENV]: serializerEnv } },
      codec,
    };
    this.dispatcher = new Dispatcher(launch, count, maxTasks);
  }

  /** Run `name(...args)` in a worker (Python's apply and apply_async in one). */
  apply<K extends TaskName<T>>(name: K, args?: TaskArgs<T, K>, options: { signal?: AbortSignal } = {}): Promise<TaskResult<T, K>> {
    let call: Call;
    try {
      taskName(name);
      const list = args ?? [];
      if (!Array.isArray(list)) throw new TypeError(`args must be an array of arguments, not ${describe(list)}`);
      const signal = signalOption(options?.signal);
      this.checkOpen();
      if (signal?.aborted) return Promise.reject(signal.reason);
      call = new Call(this.dispatcher, 1, signal);
      const refused = this.dispatcher.submit(new Chunk(call, name, true, 0, [list]));
      if (refused) call.fail(refused, false);
    } catch (error) {
      return Promise.reject(error);
    }
    return call.promise.then(first) as Promise<TaskResult<T, K>>;
  }

  /** `name(item)` for each item; the results in input order. The first error rejects the call. */
  map<K extends TaskName<T>>(
    name: K,
    iterable: Iterable<TaskArgs<T, K>[0]> | AsyncIterable<TaskArgs<T, K>[0]>,
    options: MapOptions = {},
  ): Promise<Array<TaskResult<T, K>>> {
    return this.mapChunks(name, iterable, options, false) as Promise<Array<TaskResult<T, K>>>;
  }

  /** `name(...item)` for each item (an argument list); the results in input order. */
  starmap<K extends TaskName<T>>(
    name: K,
    iterable: Iterable<TaskArgs<T, K>> | AsyncIterable<TaskArgs<T, K>>,
    options: MapOptions = {},
  ): Promise<Array<TaskResult<T, K>>> {
    return this.mapChunks(name, iterable, options, true) as Promise<Array<TaskResult<T, K>>>;
  }

  /** The results of `name(item)`, in input order, as they come; the input is read lazily. */
  imap<K extends TaskName<T>>(
    name: K,
    iterable: Iterable<TaskArgs<T, K>[0]> | AsyncIterable<TaskArgs<T, K>[0]>,
    options: IMapOptions = {},
  ): AsyncIterableIterator<TaskResult<T, K>> {
    return this.iterate(name, iterable, options, true);
  }

  /** As imap, in the order the results arrive. */
  imapUnordered<K extends TaskName<T>>(
    name: K,
    iterable: Iterable<TaskArgs<T, K>[0]> | AsyncIterable<TaskArgs<T, K>[0]>,
    options: IMapOptions = {},
  ): AsyncIterableIterator<TaskResult<T, K>> {
    return this.iterate(name, iterable, options, false);
  }

  /** No new tasks; queued and running ones finish, then the workers exit. */
  close(): void {
    this.dispatcher.close();
  }

  /** Kill the workers now; pending tasks reject with OSError("pool is terminated"). */
  terminate(): void {
    this.dispatcher.terminate();
  }

  /** After close() or terminate(): resolves once every worker has exited. */
  join(): Promise<void> {
    return this.dispatcher.join();
  }

  /** Workers, busy workers, queued tasks, completed and failed tasks, replacement workers. */
  stats(): PoolStats {
    return this.dispatcher.stats();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.join();
  }

  [Symbol.dispose](): void {
    this.terminate();
  }

  private mapChunks(name: string, iterable: unknown, options: MapOptions, star: boolean): Promise<unknown[]> {
    try {
      taskName(name);
      if (typeof options !== "object" || options === null) throw new TypeError(`options must be an object, not ${describe(options)}`);
      const chunksize = positiveInteger("chunksize", options.chunksize, 0);
      const signal = signalOption(options.signal);
      this.checkOpen();
      if (signal?.aborted) return Promise.reject(signal.reason);
      const input = iterable as Partial<Iterable<unknown> & AsyncIterable<unknown>> | null;
      // A sync input is read and chunked before map() returns: later changes to it do not count.
      if (typeof input?.[Symbol.iterator] === "function") {
        const items = Array.isArray(input) ? input : Array.from(input as Iterable<unknown>);
        return this.submitAll(name, checkArgLists(items, star), chunksize, star, signal);
      }
      if (typeof input?.[Symbol.asyncIterator] === "function") {
        return this.mapAsync(name, input as AsyncIterable<unknown>, chunksize, star, signal);
      }
      throw new TypeError(`expected an iterable or async iterable, not ${describe(iterable)}`);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Read an async input whole, then submit it; the pool keeps its workers for it meanwhile (close() may come). */
  private async mapAsync(name: string, input: AsyncIterable<unknown>, chunksize: number, star: boolean, signal: AbortSignal | undefined): Promise<unknown[]> {
    let stopped: Error | null = null;
    const feeder = { stop: (error: Error) => void (stopped ??= error) };
    this.dispatcher.addFeeder(feeder);
    let result: Promise<unknown[]>;
    try {
      const items: unknown[] = [];
      for await (const item of input) {
        if (stopped) break;
        items.push(item);
      }
      if (stopped) throw stopped;
      if (signal?.aborted) throw signal.reason;
      result = this.submitAll(name, checkArgLists(items, star), chunksize, star, signal);
    } finally {
      this.dispatcher.removeFeeder(feeder);
    }
    return result;
  }

  /** One call of all the items' chunks. */
  private submitAll(name: string, items: unknown[], chunksize: number, star: boolean, signal: AbortSignal | undefined): Promise<unknown[]> {
    if (items.length === 0) return Promise.resolve([]);
    const size = chunksize || mapChunksize(items.length, this.dispatcher.processes);
    const call = new Call(this.dispatcher, items.length, signal);
    for (let start = 0; start < items.length; start += size) {
      const refused = this.dispatcher.submit(new Chunk(call, name, star, start, items.slice(start, start + size)));
      if (refused) {
        call.fail(refused, false);
        break;
      }
    }
    return call.promise;
  }

  private iterate<R>(name: string, iterable: unknown, options: IMapOptions, ordered: boolean): AsyncIterableIterator<R> {
    taskName(name);
    if (typeof options !== "object" || options === null) throw new TypeError(`options must be an object, not ${describe(options)}`);
    const chunksize = positiveInteger("chunksize", options.chunksize, 0) || "auto";
    const signal = signalOption(options.signal);
    this.checkOpen();
    return new IMap<R>(this.dispatcher, name, iterable as Iterable<unknown>, chunksize, ordered, signal);
  }

  private checkOpen(): void {
    const refused = this.dispatcher.refusal();
    if (refused) throw refused;
  }
}

const first = (values: unknown[]): unknown => values[0];

/** starmap's items must be argument lists. */
function checkArgLists(items: unknown[], star: boolean): unknown[] {
  if (star) {
    for (let i = 0; i < items.length; i++) {
      if (!Array.isArray(items[i])) throw new TypeError(`starmap: item ${i} must be an array of arguments, not ${describe(items[i])}`);
    }
  }
  return items;
}
