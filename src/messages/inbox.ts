// Frames → messages. Complete message bodies wait here until a receive takes them; receives
// are served one at a time, in call order, as in Python where a recv blocks the caller.
import type { FrameSink } from "../frames/decoder.ts";
import { EOFError, OSError } from "../errors.ts";

/** One pending receive: recv, recvBytes or recvBytesInto. */
export interface Receiver {
  /** Longest body this receive accepts (recvBytes' maxlength); Infinity otherwise. */
  maxlength: number;
  deliver(body: Uint8Array): void;
  fail(error: Error): void;
  /** Where this receive would have a body of `length` bytes written (recvBytesInto's buffer), if anywhere. */
  into?(length: number): Uint8Array | undefined;
}

/** Above this many unread bytes the socket stops reading until the application catches up. */
const PAUSE_AT = 16 << 20;
const RESUME_AT = 4 << 20;
/** What a queued message counts on top of its body, so that floods of empty frames pause too. */
const MESSAGE_OVERHEAD = 32;
/**
 * Bodies up to this size are handed out as copies of their own, larger ones as views of the
 * received chunk. A small message the application keeps then keeps only itself alive, not the
 * chunk it arrived in (Bun reads up to a few hundred KiB at a time: thousands of 64 B messages
 * share one). In JavaScriptCore a small copy also costs no more than a view (a view is
 * registered with its buffer; a copy of a few hundred bytes lives in the collector's own
 * storage): docs/internals.md, "Small messages".
 */
export const COPY_MAX = 256;

/** The body at [at, at + length) of `buffer`, as the application gets it. */
function bodyOf(buffer: Uint8Array, at: number, length: number): Uint8Array {
  // A body that is its whole buffer (assembled across chunks, or read from the lane) is its own.
  if (at === 0 && length === buffer.byteLength) return buffer;
  return length <= COPY_MAX ? buffer.slice(at, at + length) : buffer.subarray(at, at + length);
}

/**
 * Queued messages that lie in one received buffer: the codec's table of (offset, length)
 * pairs, kept as it is. The view a receive returns is made only when it is taken, so
 * queueing a message costs no allocation of its own.
 */
class Run {
  constructor(
    readonly buffer: Uint8Array,
    readonly base: number,
    readonly table: Uint32Array,
    /** Index in `table` of the next message's offset. */
    public next = 0,
  ) {}
}

export class Inbox implements FrameSink {
  private runs: Array<Run | null> = [];
  private head = 0;
  /** Messages queued. */
  private queued = 0;
  private unread = 0;
  private receivers: Receiver[] = [];
  private watchers = new Set<() => void>();
  /** What a receive gets once the queue is empty: null while the stream is open. */
  private end: Error | null = null;
  /** `end` is told to one receive (a message cut short, a socket error); the ones after it get EOFError. */
  private endOnce = false;
  /** The stream ended cleanly, or its cut was reported: receives get EOFError. */
  private eof = false;
  /** Nothing more is taken from the stream: a receive refused an over-long message, or the connection closed. */
  private stopped = false;
  /** A refusal the connection has not heard of yet (it hears once the chunk is decoded). */
  private refused = false;
  private paused = false;

  constructor(
    /** Pause (true) or resume (false) reading from the socket. */
    private readonly pause: (paused: boolean) => void,
    /** A receive refused an over-long message: the connection must stop being readable. */
    private readonly unreadable: () => void,
  ) {}

  /** Called when a receive took the last queued message (the shared-memory lane then reads its next one). */
  emptied: (() => void) | null = null;

  /** No message is queued. */
  get empty(): boolean {
    return this.queued === 0;
  }

  /** A receive is waiting for the next message. */
  get waiting(): boolean {
    return this.receivers.length > 0;
  }

  /** Whether a receive would complete without waiting (a message, EOF or an error). */
  get ready(): boolean {
    return this.queued > 0 || this.end !== null;
  }

  /** Whether the stream is at its end: nothing queued, and receives get EOFError. */
  get atEof(): boolean {
    return this.eof && this.queued === 0;
  }

  frame(body: Uint8Array): boolean {
    const table = Uint32Array.of(0, body.byteLength);
    return this.frames(body, 0, table, 1);
  }

  /** `count` messages at (base + offset, length) pairs of `table` in `buffer`; what is queued keeps a copy of its pairs. */
  frames(buffer: Uint8Array, base: number, table: Uint32Array, count: number): boolean {
    if (this.stopped) return false;
    let end = 2 * count;
    let next = 0;
    let owned = false;
    while (this.receivers.length > 0 && this.queued === 0 && next < end) {
      const at = base + table[next]!;
      const length = table[next + 1]!;
      const receiver = this.receivers.shift()!;
      next += 2;
      if (length > receiver.maxlength) {
        this.refuse(receiver);
        return false;
      }
      // A delivery runs the serializer, which may send and so grow the codec's memory, detaching
      // its table: keep the rest of it first (a chunk of one message copies nothing).
      if (!owned && next < end) {
        table = table.slice(next, end);
        end -= next;
        next = 0;
        owned = true;
      }
      receiver.deliver(bodyOf(buffer, at, length));
      // A delivery runs the serializer, which may have closed the connection.
      if (this.stopped) return false;
    }
    if (next === end) return true;
    // The table may be the codec's own (reused for the next chunk): keep a copy of the rest.
    const kept = owned && next === 0 ? table : table.slice(next, end);
    this.runs.push(new Run(buffer, base, kept));
    let bytes = 0;
    for (let i = 1; i < kept.length; i += 2) bytes += kept[i]! + MESSAGE_OVERHEAD;
    this.queued += kept.length >>> 1;
    this.unread += bytes;
    if (!this.paused && this.unread > PAUSE_AT) {
      this.paused = true;
      this.pause(true);
    }
    this.notify();
    return true;
  }

  begin(length: number): boolean {
    if (this.stopped) return false;
    // Python reads the header, then refuses an over-long body before reading it: do the
    // same, so that a peer cannot make a bounded receive buffer an unbounded amount.
    const next = this.receivers[0];
    if (next && this.queued === 0 && length > next.maxlength) {
      this.receivers.shift();
      this.refuse(next);
      return false;
    }
    return true;
  }

  /** The next message goes to the first waiting receive: it may name the buffer to write it in. */
  destination(length: number): Uint8Array | undefined {
    if (this.stopped || this.queued > 0) return undefined;
    return this.receivers[0]?.into?.(length);
  }

  invalid(length: number): void {
    const what = length < 0 ? `a negative length (${length})` : `a length past 2^53 (${length})`;
    // Not an end of file: the stream goes on but cannot be read, so every receive hears it.
    this.endWith(new OSError(`bad message length: the peer sent ${what}`, "BAD_MESSAGE_LENGTH"), false);
  }

  settle(): void {
    if (!this.refused) return;
    this.refused = false;
    this.unreadable();
  }

  /** The connection failed (a bug of ours): every receive hears `error`. */
  fault(error: Error): void {
    this.stopped = true;
    this.endWith(error, false);
  }

  /** The peer is gone: `cut` for a message cut short or a socket failure, null for a clean EOF. */
  finish(cut: Error | null): void {
    this.endWith(cut ?? new EOFError(), cut !== null);
  }

  /**
   * The next message, when one is queued, no receive waits ahead of it, and it fits
   * `maxlength`: the fast path of a receive, with no waiting receiver to allocate.
   */
  takeNow(maxlength: number): Uint8Array | undefined {
    if (this.receivers.length > 0 || this.queued === 0) return undefined;
    const run = this.runs[this.head]!;
    if (run.table[run.next + 1]! > maxlength) return undefined;
    return this.shift();
  }

  /** Serve a receive now, or queue it behind the earlier ones. */
  receive(receiver: Receiver): void {
    if (this.receivers.length > 0 || !this.ready) this.receivers.push(receiver);
    else this.serve(receiver);
    this.settle();
  }

  /** Call `watcher` once something can be received (used by poll and wait). */
  watch(watcher: () => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  /** Nothing more will be received (the connection closed, or stopped reading): pending receives fail with `error`. */
  cancel(error: Error): void {
    this.stopped = true;
    const receivers = this.receivers;
    this.receivers = [];
    for (const r of receivers) r.fail(error);
    this.runs = [];
    this.head = 0;
    this.queued = 0;
    this.notify();
  }

  // ---- for passing a connection to another process (src/processes/fdpass) ----

  /** The queued messages, oldest first, left in the queue. */
  peek(): Uint8Array[] {
    const bodies: Uint8Array[] = [];
    for (let r = this.head; r < this.runs.length; r++) {
      const run = this.runs[r]!;
      for (let i = run.next; i < run.table.length; i += 2) {
        const at = run.base + run.table[i]!;
        bodies.push(run.buffer.subarray(at, at + run.table[i + 1]!));
      }
    }
    return bodies;
  }

  /** Whether the stream has ended (EOF or an error): nothing more will arrive. */
  get ended(): boolean {
    return this.end !== null;
  }

  private endWith(error: Error, once: boolean): void {
    if (this.end) return;
    this.end = error;
    this.endOnce = once;
    this.eof = error instanceof EOFError;
    const receivers = this.receivers;
    this.receivers = [];
    for (const r of receivers) this.serve(r);
    this.notify();
  }

  private serve(receiver: Receiver): void {
    if (this.queued > 0) return this.hand(receiver, this.shift());
    if (!this.end) return void this.receivers.push(receiver);
    const error = this.end;
    if (this.endOnce) {
      // As a socket: the read that meets the cut reports it, and the stream is at EOF after it.
      this.end = new EOFError();
      this.endOnce = false;
      this.eof = true;
    }
    receiver.fail(error);
  }

  private shift(): Uint8Array {
    const run = this.runs[this.head]!;
    const i = run.next;
    const at = run.base + run.table[i]!;
    const length = run.table[i + 1]!;
    run.next = i + 2;
    if (run.next === run.table.length) {
      this.runs[this.head++] = null;
      if (this.head === this.runs.length) {
        this.runs = [];
        this.head = 0;
      } else if (this.head > 1024 && this.head * 2 > this.runs.length) {
        this.runs = this.runs.slice(this.head);
        this.head = 0;
      }
    }
    if (--this.queued === 0 && this.emptied !== null) this.emptied();
    this.unread -= length + MESSAGE_OVERHEAD;
    if (this.paused && this.unread < RESUME_AT) {
      this.paused = false;
      this.pause(false);
    }
    return bodyOf(run.buffer, at, length);
  }

  private hand(receiver: Receiver, body: Uint8Array): void {
    if (body.byteLength > receiver.maxlength) return this.refuse(receiver);
    receiver.deliver(body);
  }

  /**
   * CPython's "bad message length": the receive fails, nothing more is taken from the stream,
   * and the connection hears of it in settle() (after the chunk being decoded, if any).
   */
  private refuse(receiver: Receiver): void {
    this.stopped = true;
    this.refused = true;
    receiver.fail(new OSError("bad message length", "BAD_MESSAGE_LENGTH"));
  }

  private notify(): void {
    if (this.watchers.size === 0) return;
    for (const w of [...this.watchers]) w();
  }
}

