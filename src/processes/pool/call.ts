// A call whose result is one promise: apply (one chunk of one item) and map/starmap (all the
// input's chunks). It resolves when every item has a result, in input order, and rejects at
// the first error (Python's map does too); its other chunks are then dropped, or, on abort,
// the workers running them are killed and replaced.
import type { Chunk, ChunkOwner, Scheduler } from "./chunk.ts";

export class Call implements ChunkOwner {
  readonly promise: Promise<unknown[]>;
  /** Each chunk's results with its first index, in the order they came. */
  private readonly parts: Array<[start: number, values: unknown[]]> = [];
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
    this.parts.push([chunk.start, values]);
    this.remaining -= values.length;
    if (this.remaining === 0) this.finish();
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
    if (this.remaining === 0) this.resolve(this.results());
  }

  /** The results in input order: the parts sorted by first index, joined. */
  private results(): unknown[] {
    const parts = this.parts;
    if (parts.length === 1) return parts[0]![1];
    parts.sort((a, b) => a[0] - b[0]);
    return parts.flatMap((part) => part[1]);
  }
}
