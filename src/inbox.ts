// Frames → messages. Complete message bodies wait here until a receive takes them; receives
// are served one at a time, in call order, as in Python where a recv blocks the caller.
import type { FrameSink } from "./frames.ts";
import { EOFError, OSError } from "./errors.ts";

/** One pending receive: recv, recvBytes or recvBytesInto. */
export interface Receiver {
  /** Longest body this receive accepts (recvBytes' maxlength); Infinity otherwise. */
  maxlength: number;
  deliver(body: Uint8Array): void;
  fail(error: Error): void;
}

/** Above this many unread bytes the socket stops reading until the application catches up. */
const PAUSE_AT = 16 << 20;
const RESUME_AT = 4 << 20;

export class Inbox implements FrameSink {
  // Queued messages as (buffer, start, end): the view a receive returns is made only when it
  // is taken, so views do not pile up (and age in the GC) while messages wait.
  private buffers: Uint8Array[] = [];
  private starts: number[] = [];
  private ends: number[] = [];
  private head = 0;
  private unread = 0;
  private receivers: Receiver[] = [];
  private watchers = new Set<() => void>();
  /** Why nothing more will arrive once the queue is empty (EOF or a stream error). */
  private end: Error | null = null;
  /** The stream broke in a way that makes further reads impossible (bad length). */
  private broken = false;
  private paused = false;

  constructor(
    /** Pause (true) or resume (false) reading from the socket. */
    private readonly pause: (paused: boolean) => void,
    /** A receive hit a protocol error: the connection must stop being readable. */
    private readonly unreadable: () => void,
  ) {}

  /** Whether a receive would complete without waiting (a message, EOF or an error). */
  get ready(): boolean {
    return this.head < this.buffers.length || this.end !== null;
  }

  frame(body: Uint8Array): void {
    this.frameAt(body, 0, body.byteLength);
  }

  /** A message whose body is bytes [start, end) of `buffer`. */
  frameAt(buffer: Uint8Array, start: number, end: number): void {
    if (this.receivers.length > 0 && this.head === this.buffers.length) {
      this.hand(this.receivers.shift()!, buffer.subarray(start, end));
      return;
    }
    this.buffers.push(buffer);
    this.starts.push(start);
    this.ends.push(end);
    this.unread += end - start;
    if (!this.paused && this.unread > PAUSE_AT) {
      this.paused = true;
      this.pause(true);
    }
    this.notify();
  }

  begin(length: number): void {
    // Python reads the header, then refuses an over-long body before reading it: do the
    // same, so that a peer cannot make a bounded receive buffer an unbounded amount.
    const next = this.receivers[0];
    if (next && this.head === this.buffers.length && length > next.maxlength) {
      this.receivers.shift();
      this.breakStream(next);
    }
  }

  invalid(length: number): void {
    this.finish(new OSError(`bad message length: the peer sent a negative length (${length})`));
    this.broken = true;
  }

  /** The peer is gone: `error` for a truncated message or socket failure, else a clean EOF. */
  finish(error: Error | null): void {
    if (this.end) return;
    this.end = error ?? new EOFError();
    const receivers = this.receivers;
    this.receivers = [];
    for (const r of receivers) this.serve(r);
    this.notify();
  }

  /**
   * The next message, when one is queued, no receive waits ahead of it, and it fits
   * `maxlength`: the fast path of a receive, with no waiting receiver to allocate.
   */
  takeNow(maxlength: number): Uint8Array | undefined {
    const head = this.head;
    if (this.receivers.length > 0 || head === this.buffers.length) return undefined;
    if (this.ends[head]! - this.starts[head]! > maxlength) return undefined;
    return this.shift();
  }

  /** Serve a receive now, or queue it behind the earlier ones. */
  receive(receiver: Receiver): void {
    if (this.receivers.length > 0 || !this.ready) this.receivers.push(receiver);
    else this.serve(receiver);
  }

  /** Call `watcher` once something can be received (used by poll and wait). */
  watch(watcher: () => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  /** The connection is closing: pending receives fail with `error`. */
  cancel(error: Error): void {
    const receivers = this.receivers;
    this.receivers = [];
    for (const r of receivers) r.fail(error);
    this.buffers = [];
    this.starts = [];
    this.ends = [];
    this.head = 0;
    this.notify();
  }

  // ---- for passing a connection to another process (src/fdpass) ----

  /** The queued messages, oldest first, left in the queue. */
  peek(): Uint8Array[] {
    const bodies: Uint8Array[] = [];
    for (let i = this.head; i < this.buffers.length; i++) bodies.push(this.buffers[i]!.subarray(this.starts[i]!, this.ends[i]!));
    return bodies;
  }

  /** Whether the stream has ended (EOF or an error): nothing more will arrive. */
  get ended(): boolean {
    return this.end !== null;
  }

  private serve(receiver: Receiver): void {
    if (this.head < this.buffers.length) {
      this.hand(receiver, this.shift());
    } else if (this.end) {
      receiver.fail(this.end);
    } else {
      this.receivers.push(receiver);
    }
  }

  private shift(): Uint8Array {
    const head = this.head++;
    const body = this.buffers[head]!.subarray(this.starts[head]!, this.ends[head]!);
    this.buffers[head] = EMPTY;
    if (this.head === this.buffers.length) {
      this.buffers = [];
      this.starts = [];
      this.ends = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.buffers.length) {
      this.buffers = this.buffers.slice(this.head);
      this.starts = this.starts.slice(this.head);
      this.ends = this.ends.slice(this.head);
      this.head = 0;
    }
    this.unread -= body.byteLength;
    if (this.paused && this.unread < RESUME_AT) {
      this.paused = false;
      this.pause(false);
    }
    return body;
  }

  private hand(receiver: Receiver, body: Uint8Array): void {
    if (body.byteLength > receiver.maxlength) return this.breakStream(receiver);
    receiver.deliver(body);
  }

  /** CPython's "bad message length": the receive fails and the connection stops reading. */
  private breakStream(receiver: Receiver): void {
    this.broken = true;
    receiver.fail(new OSError("bad message length"));
    this.unreadable();
  }

  private notify(): void {
    if (this.watchers.size === 0) return;
    for (const w of [...this.watchers]) w();
  }
}

const EMPTY = new Uint8Array(0);
