// A chunk: consecutive items of one call, run by one worker in one message (Python's chunks).
// The queue of chunks waiting for a worker, and what calls and the pool need of each other.
import type { Encoded } from "./task-codec.ts";

/** Who receives a chunk's outcome: the call (apply, map, imap) it belongs to. */
export interface ChunkOwner {
  /** Every item ran; `values` are their results, in item order. */
  done(chunk: Chunk, values: unknown[]): void;
  /** The item after `values` failed with `error` (the items after it did not run), or the whole chunk did. */
  failed(chunk: Chunk, values: unknown[], error: Error): void;
}

export class Chunk {
  /** "queued" → "running" → "settled"; a cancelled chunk is settled without an outcome. */
  state: "queued" | "running" | "settled" = "queued";
  /** When it was handed to a worker (performance.now()), for imap's chunk sizing. */
  sentAt = 0;
  /** Its task message, made when it is queued (task-codec.ts). */
  encoded: Encoded | null = null;
  constructor(
    readonly owner: ChunkOwner,
    readonly name: string,
    /** true: each item is an argument list (starmap, apply). */
    readonly star: boolean,
    /** Index of the first item in the call's input. */
    public start: number,
    public items: unknown[],
  ) {}

  get size(): number {
    return this.items.length;
  }

  /** Take the first `n` items off as a chunk of their own (this one keeps the rest). */
  splitOff(n: number): Chunk {
    const head = new Chunk(this.owner, this.name, this.star, this.start, this.items.slice(0, n));
    this.items = this.items.slice(n);
    this.start += n;
    return head;
  }
}

/** First in, first out, with settled (cancelled) chunks skipped. Counts the items waiting. */
export class ChunkQueue {
  private chunks: Chunk[] = [];
  private head = 0;
  /** Items in the queued chunks that are still waiting. */
  items = 0;

  push(chunk: Chunk): void {
    this.chunks.push(chunk);
    this.items += chunk.size;
  }

  /** Put a chunk back at the front (the rest of one that was split). */
  unshift(chunk: Chunk): void {
    if (this.head > 0) this.chunks[--this.head] = chunk;
    else this.chunks.unshift(chunk);
    this.items += chunk.size;
  }

  /** The next chunk that still waits, or undefined. */
  shift(): Chunk | undefined {
    while (this.head < this.chunks.length) {
      const chunk = this.chunks[this.head]!;
      this.chunks[this.head++] = undefined as unknown as Chunk;
      if (this.head > 1024 && this.head * 2 > this.chunks.length) this.compact();
      if (chunk.state !== "queued") continue;
      this.items -= chunk.size;
      return chunk;
    }
    return undefined;
  }

  /** Settle and remove every waiting chunk that `which` selects; returns them. */
  remove(which: (chunk: Chunk) => boolean): Chunk[] {
    const removed: Chunk[] = [];
    for (let i = this.head; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      if (chunk.state !== "queued" || !which(chunk)) continue;
      chunk.state = "settled";
      this.items -= chunk.size;
      removed.push(chunk);
    }
    return removed;
  }

  get empty(): boolean {
    return this.items === 0;
  }

  private compact(): void {
    this.chunks = this.chunks.slice(this.head);
    this.head = 0;
  }
}

/** What calls need of the pool. */
export interface Scheduler {
  /** The `processes` option: imap reads at most 4 chunks per process ahead. */
  readonly processes: number;
  /** Queue a chunk; returns why it was refused (terminated, the module cannot load, its arguments cannot be encoded), else null. */
  submit(chunk: Chunk): Error | null;
  /**
   * Settle every unfinished chunk of `owner` without an outcome: queued ones never run; running
   * ones have their workers killed and replaced when `kill`, else their results are ignored.
   */
  cancel(owner: ChunkOwner, kill: boolean): void;
  /** The owner lost interest (imap closed by its consumer): its queued chunks never run, running ones finish unheard. */
  drop(owner: ChunkOwner): void;
  /** A call is still reading its input: the pool keeps its workers for it after close(). */
  addFeeder(feeder: Feeder): void;
  removeFeeder(feeder: Feeder): void;
}

/** A call reading its input. `stop`: the pool can take no more of it (terminated, broken). */
export interface Feeder {
  stop(error: Error): void;
}
