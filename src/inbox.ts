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
  private messages: Uint8Array[] = [];
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
    return this.head < this.messages.length || this.end !== null;
  }

  frame(body: Uint8Array): void {
    if (this.receivers.length > 0 && this.head === this.messages.length) {
      this.hand(this.receivers.shift()!, body);
      return;
    }
    this.messages.push(body);
    this.unread += body.byteLength;
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
    if (next && this.head === this.messages.length && length > next.maxlength) {
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
    this.messages = [];
    this.head = 0;
    this.notify();
  }

  private serve(receiver: Receiver): void {
    if (this.head < this.messages.length) {
      const body = this.messages[this.head]!;
      this.messages[this.head++] = EMPTY;
      if (this.head === this.messages.length) {
        this.messages = [];
        this.head = 0;
      } else if (this.head > 1024 && this.head * 2 > this.messages.length) {
        this.messages = this.messages.slice(this.head);
        this.head = 0;
      }
      this.unread -= body.byteLength;
      if (this.paused && this.unread < RESUME_AT) {
        this.paused = false;
        this.pause(false);
      }
      this.hand(receiver, body);
    } else if (this.end) {
      receiver.fail(this.end);
    } else {
      this.receivers.push(receiver);
    }
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
