// imap / imapUnordered: an async iterator of results that reads its input lazily. It reads a
// chunk at a time while the items read but not yet yielded stay within 4 chunks per process,
// so an endless input runs in bounded memory, also while the consumer pauses. A task error is
// thrown at that result (after the results before it, in input order for imap); the iterator
// then ends, as does one the consumer closes (break): its queued chunks are dropped and its
// input is closed.
import { Chunk, type ChunkOwner, type Feeder, type Scheduler } from "./chunk.ts";
import { describe } from "./options.ts";

/** Chunks per process that may be read ahead of the consumer. */
export const READ_AHEAD = 4;

/**
 * Without a chunksize, chunks are sized from the answers so far to take about this long in
 * their worker (ms): long enough that a chunk's round trip (40–90 µs on a busy 2-core machine)
 * costs a few percent, short enough that slow tasks still go one by one and results come early.
 */
export const CHUNK_TARGET_MS = 2;
/** The largest chunk the sizing picks; it also caps the read-ahead at 4 × 1024 items per process. */
export const MAX_AUTO_CHUNKSIZE = 1024;

interface Entry {
  start: number;
  values: unknown[];
  /** The item after `values` failed with this (thrown once the values are yielded). */
  error?: unknown;
}

type Source = Iterator<unknown> | AsyncIterator<unknown>;

export class IMap<R> implements AsyncIterableIterator<R>, ChunkOwner, Feeder {
  private readonly source: Source;
  /** Items per chunk: fixed, or (auto) resized after each answer. */
  private chunksize: number;
  private readonly auto: boolean;
  /** Items read from the input, and yielded to the consumer. */
  private read = 0;
  private yielded = 0;
  /** imap: finished chunks by first index; imapUnordered: finished chunks in completion order. */
  private readonly byStart = new Map<number, Entry>();
  private readonly arrived: Entry[] = [];
  private current: Entry | null = null;
  private offset = 0;
  /** imap: index of the next result to yield. */
  private cursor = 0;
  private inputDone = false;
  private pumping = false;
  /** Ends the results after every item read before it: an input error, or the pool refusing more. */
  private endError: { error: unknown } | null = null;
  /** Ends the results now (abort, terminate). */
  private fatal: { error: unknown } | null = null;
  private finished = false;
  private feeding = true;
  private readonly waiters: Array<{ resolve: (r: IteratorResult<R>) => void; reject: (e: unknown) => void }> = [];
  private readonly onAbort: (() => void) | null = null;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly name: string,
    input: Iterable<unknown> | AsyncIterable<unknown>,
    chunksize: number | "auto",
    private readonly ordered: boolean,
    private readonly signal?: AbortSignal,
  ) {
    this.source = openSource(input);
    this.auto = chunksize === "auto";
    this.chunksize = chunksize === "auto" ? 1 : chunksize;
    scheduler.addFeeder(this);
    if (signal) {
      this.onAbort = () => this.stop(signal.reason, true);
      signal.addEventListener("abort", this.onAbort, { once: true });
      if (signal.aborted) this.stop(signal.reason, true);
    }
    void this.pump();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<R>> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.wake();
    });
  }

  /** The consumer is done (break): drop what is queued, close the input. */
  async return(): Promise<IteratorResult<R>> {
    this.end(false);
    this.wake();
    return { done: true, value: undefined };
  }

  // ---- the pool's side (ChunkOwner, Feeder) -----------------------------------------------

  done(chunk: Chunk, values: unknown[]): void {
    if (this.auto) this.resize(chunk);
    this.arrive({ start: chunk.start, values });
  }

  failed(chunk: Chunk, values: unknown[], error: Error): void {
    this.arrive({ start: chunk.start, values, error });
  }

  /** The pool takes no more (terminated, broken), or the signal fired: throw `error` next. */
  stop(error: unknown, kill = false): void {
    if (this.finished) return;
    this.fatal = { error };
    this.scheduler.cancel(this, kill);
    this.wake();
  }

  // ---- reading the input ------------------------------------------------------------------

  /** Still reading, and room for one more chunk within the read-ahead bound. */
  private canRead(): boolean {
    const limit = READ_AHEAD * this.chunksize * this.scheduler.processes;
    return this.feeding && !this.fatal && this.read - this.yielded + this.chunksize <= limit;
  }

  /** Size the next chunks to take about CHUNK_TARGET_MS, from how long this one took (growing at most 16× at a time). */
  private resize(chunk: Chunk): void {
    const perItem = (performance.now() - chunk.sentAt) / chunk.size;
    const fit = perItem > 0 ? Math.floor(CHUNK_TARGET_MS / perItem) : MAX_AUTO_CHUNKSIZE;
    this.chunksize = Math.max(1, Math.min(fit, this.chunksize * 16, MAX_AUTO_CHUNKSIZE));
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.canRead()) {
        const items: unknown[] = [];
        let error: { error: unknown } | null = null;
        try {
          while (items.length < this.chunksize) {
            let step = this.source.next();
            if (step instanceof Promise) step = await step;
            if (step.done) {
              this.inputDone = true;
              break;
            }
            items.push(step.value);
          }
        } catch (thrown) {
          this.inputDone = true;
          error = { error: thrown };
        }
        if (this.finished || this.fatal) break;
        if (items.length > 0) {
          // A chunk the pool refuses (its items cannot be encoded, the pool is gone) ends the
          // results where it would have started.
          const refused = this.scheduler.submit(new Chunk(this, this.name, false, this.read, items));
          if (refused) error = { error: refused };
          else this.read += items.length;
        }
        if (error) this.endError = error;
        if (this.inputDone || error) this.stopFeeding();
      }
    } finally {
      this.pumping = false;
      this.deliver();
    }
  }

  private stopFeeding(): void {
    if (!this.feeding) return;
    this.feeding = false;
    this.scheduler.removeFeeder(this);
  }

  // ---- handing out results ----------------------------------------------------------------

  private arrive(entry: Entry): void {
    if (this.finished) return;
    if (this.ordered) this.byStart.set(entry.start, entry);
    else this.arrived.push(entry);
    this.wake();
  }

  /** Something changed: answer waiting next() calls, and read more if there is room. */
  private wake(): void {
    this.deliver();
    if (!this.pumping && this.canRead()) void this.pump();
  }

  private deliver(): void {
    while (this.waiters.length > 0) {
      const outcome = this.take();
      if (outcome === null) break;
      const waiter = this.waiters.shift()!;
      if ("error" in outcome) waiter.reject(outcome.error);
      else waiter.resolve(outcome);
    }
  }

  /** The next result, the error to throw, or null when it has not arrived yet. */
  private take(): IteratorResult<R> | { error: unknown } | null {
    if (this.finished) return { done: true, value: undefined };
    if (this.fatal) return this.endWith(this.fatal);
    for (;;) {
      const entry = this.current;
      if (entry && this.offset < entry.values.length) {
        this.yielded++;
        return { done: false, value: entry.values[this.offset++] as R };
      }
      if (entry && "error" in entry) return this.endWith({ error: entry.error });
      this.current = null;
      const next = this.ordered ? this.byStart.get(this.cursor) : this.arrived.shift();
      if (next) {
        if (this.ordered) {
          this.byStart.delete(this.cursor);
          this.cursor += next.values.length;
        }
        this.current = next;
        this.offset = 0;
        continue;
      }
      const allYielded = this.ordered ? this.cursor === this.read : this.yielded === this.read;
      if (allYielded && !this.feeding && !this.pumping) {
        return this.endError ? this.endWith(this.endError) : this.endWith(null);
      }
      return null;
    }
  }

  private endWith(outcome: { error: unknown } | null): IteratorResult<R> | { error: unknown } {
    this.end(outcome !== null);
    return outcome ?? { done: true, value: undefined };
  }

  /**
   * No more results: drop the queued chunks (counted as failed when the iterator ends with an
   * error; not when the consumer closed it), close the input, let the pool go.
   */
  private end(failed: boolean): void {
    if (this.finished) return;
    this.finished = true;
    if (this.onAbort) this.signal!.removeEventListener("abort", this.onAbort);
    if (failed) this.scheduler.cancel(this, false);
    else this.scheduler.drop(this);
    if (!this.inputDone) {
      this.inputDone = true;
      closeSource(this.source);
    }
    this.stopFeeding();
    this.byStart.clear();
    this.arrived.length = 0;
  }
}

function openSource(input: Iterable<unknown> | AsyncIterable<unknown>): Source {
  const maybe = input as Partial<AsyncIterable<unknown> & Iterable<unknown>> | null;
  if (typeof maybe?.[Symbol.asyncIterator] === "function") return maybe[Symbol.asyncIterator]!();
  if (typeof maybe?.[Symbol.iterator] === "function") return maybe[Symbol.iterator]!();
  throw new TypeError(`expected an iterable or async iterable, not ${describe(input)}`);
}

function closeSource(source: Source): void {
  try {
    const closing = source.return?.();
    if (closing instanceof Promise) closing.catch(() => {});
  } catch {
    // The input's own cleanup failed; the consumer has stopped listening, so there is no one to tell.
  }
}
