// Messages → socket. Frames sent in one tick are packed into one FrameBatch and leave in
// one write(); bytes the kernel does not take wait in a queue until `drain`. The queue is
// what send() promises measure for backpressure.
import { BATCH_BODY_MAX, FrameBatch, frameHeader } from "./frames.ts";
import { heap } from "./wasm.ts";
import { writeAllBlocking } from "./libc.ts";
import { OSError } from "./errors.ts";

/** Where bytes go: Bun's socket.write(buffer, offset, length) contract. */
export interface ByteSink {
  write(data: Uint8Array, byteOffset: number, byteLength: number): number;
}

/** send() resolves at once while fewer bytes than this wait to be written. */
export const HIGH_WATER_MARK = 4 << 20;

export const RESOLVED: Promise<void> = Promise.resolve();

/** Outboxes holding bytes a resolved send() promised to deliver; flushed at process exit. */
const unsent = new Set<Outbox>();
process.on("exit", () => {
  for (const outbox of unsent) outbox.flushBlocking();
});

export class Outbox {
  private readonly batch = new FrameBatch();
  /** Framed bytes waiting for the kernel, oldest first; the first may be partly written. */
  private queue: Uint8Array[] = [];
  private queued = 0;
  private scheduled = false;
  private waiters: Array<{ resolve(): void; reject(error: Error): void }> = [];
  private idle: (() => void) | null = null;
  /** The first write failure; every later send reports it. */
  error: Error | null = null;

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
      this.write(frameHeader(body.byteLength), false);
      this.write(body, true);
    }
    return this.backpressure();
  }

  /**
   * Reserve room for a body of at most `max` bytes written in place by an encoder: returns
   * its offset in heap.u8, or -1 (then use send()). Follow with commit(size).
   */
  reserve(max: number): number {
    if (this.error || max > BATCH_BODY_MAX) return -1;
    let at = this.batch.reserve(max);
    if (at < 0) {
      this.flushBatch();
      at = this.batch.reserve(max);
    }
    return at;
  }

  commit(size: number): Promise<void> {
    this.batch.commit(size);
    this.schedule();
    return this.backpressure();
  }

  /** Write everything the kernel will take now; called on drain and by the scheduled flush. */
  flush(): void {
    this.scheduled = false;
    this.flushBatch();
    if (this.queue.length > 0) this.writeQueue();
    if (this.pending === 0) {
      this.batch.release();
      unsent.delete(this);
      if (this.idle) this.idle();
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
      this.idle = resolve;
    });
  }

  /** The socket is gone: fail what waits, and every later send. */
  fail(error: Error): void {
    if (!this.error) this.error = error;
    this.queue = [];
    this.queued = 0;
    this.batch.release();
    unsent.delete(this);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(this.error);
    if (this.idle) this.idle();
  }

  /** Process exit: the event loop is gone, so block until the kernel has every byte. */
  flushBlocking(): void {
    if (this.error) return;
    this.flushBatch();
    const fd = this.fd();
    for (const bytes of this.queue) if (fd >= 0) writeAllBlocking(fd, bytes);
    this.queue = [];
    this.queued = 0;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    unsent.add(this);
    // A macrotask, not a microtask: `await send()` in a loop resolves through microtasks,
    // and batching must span those awaits to make small messages cheap.
    setImmediate(() => this.flush());
  }

  private backpressure(): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    if (this.pending < HIGH_WATER_MARK) return RESOLVED;
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private flushBatch(): void {
    if (this.batch.count === 0) return;
    const start = this.batch.seal();
    this.write(heap.u8, true, start, this.batch.bytes);
    this.batch.clear();
  }

  /** Write bytes behind whatever is queued; keep (a copy of, when `copy`) what the kernel refuses. */
  private write(bytes: Uint8Array, copy: boolean, offset = 0, length = bytes.byteLength): void {
    if (this.error) return;
    let taken = 0;
    if (this.queue.length === 0) {
      taken = this.sink.write(bytes, offset, length);
      if (taken < 0) return this.fail(new OSError("[Errno 32] Broken pipe", "EPIPE"));
      if (taken === length) return;
    }
    const rest = bytes.subarray(offset + taken, offset + length);
    this.queue.push(copy ? rest.slice() : rest);
    this.queued += rest.byteLength;
    unsent.add(this);
  }

  private writeQueue(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const taken = this.sink.write(head, 0, head.byteLength);
      if (taken < 0) return this.fail(new OSError("[Errno 32] Broken pipe", "EPIPE"));
      this.queued -= taken;
      if (taken < head.byteLength) {
        this.queue[0] = head.subarray(taken);
        return;
      }
      this.queue.shift();
    }
  }
}
