// Messages → socket. The first frame sent after a quiet spell goes out at once (latency);
// frames that follow in the same tick are packed into one FrameBatch and leave in one
// write() on the next macrotask (throughput). Bytes the kernel does not take wait in a
// queue until `drain`; that queue is what send() promises measure for backpressure.
import { BATCH_BODY_MAX, FrameBatch, frameHeader, type Held } from "../frames/encoder.ts";
import { brokenPipe, writeAllBlocking } from "../os/libc.ts";
import { giveSpill, takeSpill } from "./spill.ts";

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
      if (this.spilled) giveSpill(this.source);
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
  /** Bytes the kernel refused, oldest first, from index `head` on. */
  private queue: Pending[] = [];
  private head = 0;
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
      this.writeLarge(body);
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
    for (let i = this.head; i < this.queue.length; i++) this.queue[i]!.done();
    this.queue = [];
    this.head = 0;
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
    for (let i = this.head; i < this.queue.length; i++) {
      const p = this.queue[i]!;
      const left = deadline - Date.now();
      if (fd < 0 || left <= 0) break;
      writeAllBlocking(fd, p.data.subarray(p.start, p.end), Math.min(left, EXIT_STALL_MS));
    }
    this.queue = [];
    this.head = 0;
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

  /**
   * A large message: written from the caller's buffer when nothing waits ahead of it; what the
   * kernel refuses (header and body together) is copied into warm spill memory, since the
   * caller may reuse its buffer as soon as send() returns.
   */
  private writeLarge(body: Uint8Array): void {
    if (this.error) return;
    const head = frameHeader(body.byteLength);
    const size = body.byteLength;
    let taken = 0;
    if (this.queue.length === 0) {
      taken = this.sink.write(head, 0, head.byteLength);
      if (taken === head.byteLength) {
        const more = this.sink.write(body, 0, size);
        if (more < 0) return this.fail(brokenPipe());
        if (more === size) return;
        taken += more;
      }
      if (taken < 0) return this.fail(brokenPipe());
    }
    const rest = head.byteLength + size - taken;
    const owned = takeSpill(rest);
    if (taken < head.byteLength) {
      owned.set(head.subarray(taken), 0);
      owned.set(body, head.byteLength - taken);
    } else {
      owned.set(taken === head.byteLength ? body : body.subarray(taken - head.byteLength), 0);
    }
    this.queue.push(new Pending(owned, 0, rest, true));
    this.queued += rest;
    unsent.add(this);
  }

  private writeQueue(): void {
    const queue = this.queue;
    let done = this.head;
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
    // Drop written entries in bulk, not one splice per drain: a long queue stays linear.
    if (done === queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (done > 1024 && done * 2 > queue.length) {
      this.queue = queue.slice(done);
      this.head = 0;
    } else this.head = done;
  }
}
