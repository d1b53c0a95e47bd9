// Messages → socket. The first frame sent after a quiet spell goes out at once (latency);
// frames that follow in the same tick are packed into one FrameBatch and leave in one
// write() on the next macrotask (throughput). Bytes the kernel does not take wait in a
// queue until `drain`; that queue is what send() promises measure for backpressure.
import { BATCH_BODY_MAX, FrameBatch, frameHeader, type Held } from "../frames/encoder.ts";
import { brokenPipe, writeAllBlocking } from "../os/libc.ts";

/** Where bytes go: Bun's socket.write(buffer, offset, length) contract. */
export interface ByteSink {
  write(data: Uint8Array, byteOffset: number, byteLength: number): number;
}

/** send() resolves at once while fewer bytes than this wait to be written. */
export const HIGH_WATER_MARK = 4 << 20;
/** At exit, how long to wait in all for peers that stopped reading, and for each one at most. */
const EXIT_BUDGET_MS = 30_000;
const EXIT_STALL_MS = 5_000;

export const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Buffers for the unsent tails of large messages. Fresh memory costs a page fault per 4 KiB
 * (on the machines measured, more than the copy itself), so tails reuse buffers; a bounded
 * amount is kept, and tails larger than that are one-off allocations.
 */
const spill = {
  free: [] as ArrayBuffer[],
  kept: 0,
  LIMIT: 32 << 20,
  take(size: number): Uint8Array {
    const i = this.free.findIndex((b) => b.byteLength >= size && b.byteLength <= size * 2);
    if (i >= 0) {
      const buffer = this.free.splice(i, 1)[0]!;
      this.kept -= buffer.byteLength;
      return new Uint8Array(buffer, 0, size);
    }
    return new Uint8Array(size <= this.LIMIT ? 2 ** Math.ceil(Math.log2(Math.max(size, 65536))) : size).subarray(0, size);
  },
  give(bytes: Uint8Array): void {
    const buffer = bytes.buffer as ArrayBuffer;
    if (this.kept + buffer.byteLength > this.LIMIT) return;
    this.kept += buffer.byteLength;
    this.free.push(buffer);
  },
};

/** Framed bytes waiting for the kernel: a kept batch, or JS-owned bytes. */
class Pending {
  constructor(
    readonly source: Held | Uint8Array,
    public start: number,
    readonly end: number,
    /** The bytes came from the spill pool and go back to it once written. */
    readonly spilled = false,
  ) {}
  get data(): Uint8Array {
    return this.source instanceof Uint8Array ? this.source : this.source.view();
  }
  /** The kernel took every byte, or the socket is gone. */
  done(): void {
    if (this.source instanceof Uint8Array) {
      if (this.spilled) spill.give(this.source);
    } else {
      this.source.release();
    }
  }
}

/** Outboxes holding bytes a resolved send() promised to deliver; flushed at process exit. */
const unsent = new Set<Outbox>();
process.on("exit", () => {
  const deadline = Date.now() + EXIT_BUDGET_MS;
  for (const outbox of unsent) outbox.flushBlocking(deadline);
});

export class Outbox {
  private readonly batch = new FrameBatch();
  private queue: Pending[] = [];
  private queued = 0;
  private scheduled = false;
  private waiters: Array<{ resolve(): void; reject(error: Error): void }> = [];
  private idle: Array<() => void> = [];
  /** The first write failure; every later send reports it. */
  error: Error | null = null;
  private readonly flushLater = (): void => this.flush();

  constructor(
    private readonly sink: ByteSink,
    private readonly fd: () => number,
  ) {}

  /** Bytes accepted but not yet taken by the kernel. */
  get pending(): number {
    return this.queued + this.batch.bytes;
  }

  /** Queue one message body; the bytes are copied (or written) before this returns. */
  send(body: Uint8Array): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    if (body.byteLength <= BATCH_BODY_MAX) {
      if (!this.batch.add(body)) {
        this.flushBatch();
        this.batch.add(body);
      }
      this.schedule();
    } else {
      this.flushBatch();
      this.write(frameHeader(body.byteLength));
      this.write(body, true);
    }
    return this.backpressure();
  }


  /** Write everything the kernel will take now; called on drain and by the scheduled flush. */
  flush(): void {
    this.scheduled = false;
    if (this.queue.length > 0) this.writeQueue();
    this.flushBatch();
    if (this.pending === 0) {
      this.batch.release();
      unsent.delete(this);
      this.wake();
    }
    if (this.queued < HIGH_WATER_MARK && this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w.resolve();
    }
  }

  /** Resolves once every accepted byte has been handed to the kernel. */
  whenIdle(): Promise<void> {
    this.flush();
    if (this.pending === 0 || this.error) return RESOLVED;
    return new Promise((resolve) => {
      this.idle.push(resolve);
    });
  }

  /** The socket is gone: fail what waits, and every later send. */
  fail(error: Error): void {
    if (!this.error) this.error = error;
    for (const p of this.queue) p.done();
    this.queue = [];
    this.queued = 0;
    this.batch.release();
    unsent.delete(this);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(this.error);
    this.wake();
  }

  private wake(): void {
    const idle = this.idle;
    this.idle = [];
    for (const resolve of idle) resolve();
  }

  /**
   * Process exit: the event loop is gone, so block until the kernel has every byte, giving up
   * on a peer that takes nothing for EXIT_STALL_MS, and on everything at `deadline`.
   */
  flushBlocking(deadline: number): void {
    if (this.error) return;
    const fd = this.fd();
    if (this.batch.count > 0) {
      const framed = this.batch.seal().slice();
      this.queue.push(new Pending(framed, 0, framed.byteLength));
      this.batch.clear();
    }
    for (const p of this.queue) {
      const left = deadline - Date.now();
      if (fd < 0 || left <= 0) break;
      writeAllBlocking(fd, p.data.subarray(p.start, p.end), Math.min(left, EXIT_STALL_MS));
    }
    this.queue = [];
    this.queued = 0;
  }

  /**
   * The first send after a flush writes at once; later ones in the same tick wait for the
   * flush on the next macrotask. A macrotask, not a microtask: `await send()` in a loop
   * resumes through microtasks, and batching must span those awaits.
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    unsent.add(this);
    setImmediate(this.flushLater);
    if (this.queue.length === 0) this.flushBatch();
  }

  private backpressure(): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    if (this.pending < HIGH_WATER_MARK) return RESOLVED;
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Seal the batch and write it; what the kernel refuses waits in the queue. */
  private flushBatch(): void {
    const batch = this.batch;
    if (batch.count === 0 || this.error) return;
    const framed = batch.seal();
    const length = framed.byteLength;
    let taken = 0;
    if (this.queue.length === 0) {
      taken = this.sink.write(framed, 0, length);
      if (taken < 0) return this.fail(brokenPipe());
      if (taken === length) return batch.clear();
    }
    this.queue.push(new Pending(batch.keep(taken), 0, length - taken));
    this.queued += length - taken;
    unsent.add(this);
  }

  /** Write JS-owned bytes behind whatever is queued; keep (a copy of, when `copy`) what the kernel refuses. */
  private write(bytes: Uint8Array, copy = false): void {
    if (this.error) return;
    let taken = 0;
    if (this.queue.length === 0) {
      taken = this.sink.write(bytes, 0, bytes.byteLength);
      if (taken < 0) return this.fail(brokenPipe());
      if (taken === bytes.byteLength) return;
    }
    let rest = bytes.subarray(taken);
    if (copy) {
      const owned = spill.take(rest.byteLength);
      owned.set(rest);
      rest = owned;
    }
    this.queue.push(new Pending(rest, 0, rest.byteLength, copy));
    this.queued += rest.byteLength;
    unsent.add(this);
  }

  private writeQueue(): void {
    const queue = this.queue;
    let done = 0;
    while (done < queue.length) {
      const p = queue[done]!;
      const length = p.end - p.start;
      const taken = this.sink.write(p.data, p.start, length);
      if (taken < 0) return this.fail(brokenPipe());
      this.queued -= taken;
      if (taken < length) {
        p.start += taken;
        break;
      }
      p.done();
      done++;
    }
    if (done > 0) queue.splice(0, done);
  }
}
