// A call whose result is one promise: apply (one chunk of one item) and map/starmap (all the
// input's chunks). It resolves when every item has a result, in input order, and rejects at
// the first error (Python's map does too); its other chunks are then dropped, or, on abort,
// the workers running them are killed and replaced.
import type { Chunk, ChunkOwner, Scheduler } from "./chunk.ts";

export class Call implements ChunkOwner {
  readonly promise: Promise<unknown[]>;
  /**
   * The results so far, in input order, from index 0 up to `next`. Each chunk's results join
   * them as they come (while the workers still run the others), so little is left to do after
   * the last answer; chunks that arrive ahead of a gap wait in `ahead`.
   */
  private results: unknown[] | null = null;
  private next = 0;
  private readonly ahead = new Map<number, unknown[]>();
  private remaining: number;
  private settled = false;
  private resolve!: (values: unknown[]) => void;
  private reject!: (reason: unknown) => void;
  private readonly onAbort: (() => void) | null = null;

  constructor(
    private readonly scheduler: Scheduler,
    size: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.remaining = size;
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (signal) {
      this.onAbort = () => this.fail(signal.reason, true);
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
  }

  done(chunk: Chunk, values: unknown[]): void {
    if (this.settled) return;
    this.remaining -= values.length;
    if (chunk.start !== this.next) this.ahead.set(chunk.start, values);
    else {
      this.append(values);
      for (let later = this.ahead.get(this.next); later; later = this.ahead.get(this.next)) {
        this.ahead.delete(this.next);
        this.append(later);
      }
    }
    if (this.remaining === 0) this.finish();
  }

  private append(values: unknown[]): void {
    this.next += values.length;
    // The first chunk's array is ours (decoded from the worker's answer): extend it.
    if (!this.results) this.results = values;
    else for (let i = 0; i < values.length; i++) this.results.push(values[i]);
  }

  failed(_chunk: Chunk, _values: unknown[], error: Error): void {
    this.fail(error, false);
  }

  /** Reject with `error`; the call's other chunks never run (`kill`: running ones are stopped too). */
  fail(error: unknown, kill: boolean): void {
    if (this.settled) return;
    this.finish();
    this.scheduler.cancel(this, kill);
    this.reject(error);
  }

  private finish(): void {
    this.settled = true;
    if (this.onAbort) this.signal!.removeEventListener("abort", this.onAbort);
    if (this.remaining === 0) this.resolve(this.results!);
  }
}
