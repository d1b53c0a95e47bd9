// The receiving half of the lane: follows the peer's notices, and copies each message out of
// the peer's region when the user asks for it — into the user's buffer (recvBytesInto) or a
// new one (recvBytes) — then tells the peer which pieces it may reuse (RELEASE).
//
// Nothing the peer sends is trusted. Every notice is checked against this side's own record of
// regions and pieces before any byte is read: a piece must lie inside a region this side mapped
// (sealed, of the size it checked itself), the pieces of a message must add up to its length,
// and the pieces not yet consumed can never cover more than their region. A notice that breaks
// a rule fails the lane (OSError, code EPROTO): the connection cannot read any more, and no
// read ever goes outside a mapping.
import { OSError } from "../errors.ts";
import { closeFd } from "../os/libc.ts";
import { messageBuffer } from "./buffers.ts";
import { DONE, FIRST, HELLO, LAST, OFF, OFFER, PIECE, RELEASE, RETIRE, encodeNotice, type Notice } from "./notices.ts";
import { Region } from "./region.ts";
import { PAGE } from "./ring.ts";

export interface ReceiverOptions {
  /** The largest region accepted from the peer (bytes). */
  maxRegion: number;
  /** Fetch the descriptor an OFFER's ticket names. */
  take(ticket: Uint8Array): Promise<number>;
  /** Write a RELEASE notice at the next frame boundary, ahead of any queued message. */
  control(frame: Uint8Array): void;
}

/** How many regions of the peer may be mapped at once (an honest sender has one or two). */
const MAX_REGIONS = 16;

interface IncomingRegion {
  readonly id: number;
  readonly size: number;
  region: Region | null;
  failure: OSError | null;
  /** Reads waiting for the region to be mapped. */
  waiters: Array<() => void>;
  retired: boolean;
  /** Pieces announced in this region and not consumed yet, and their bytes. */
  pieces: number;
  bytes: number;
}

interface Piece {
  region: IncomingRegion;
  offset: number;
  length: number;
}

type Done = (error: Error | null) => void;

/** A message announced by the peer. Its bytes stay in the peer's region until read or discarded. */
export class IncomingMessage {
  private pieces: Piece[] = [];
  /** Bytes announced so far. */
  private arrived = 0;
  /** Pieces consumed so far. */
  private next = 0;
  private target: Uint8Array | null = null;
  private at = 0;
  private discarding = false;
  private done: Done | null = null;
  private pumping = false;
  private error: Error | null = null;
  /** A read or a discard began: the message is consumed, it cannot be read again. */
  private started = false;

  /** @internal */
  constructor(
    private readonly receiver: LaneReceiver,
    readonly length: number,
  ) {}

  /** Bytes announced so far. */
  get announced(): number {
    return this.arrived;
  }

  /** Every piece has been announced (the message may still wait for a region to be mapped). */
  get complete(): boolean {
    return this.arrived === this.length;
  }

  /**
   * Copy the message into `target` at `offset` (the caller checked it fits), then call `done`,
   * possibly before returning. Pieces still to come are copied as they arrive.
   */
  readInto(target: Uint8Array, offset: number, done: Done): void {
    if (this.error) return done(this.error);
    if (this.started) return done(new OSError("shared-memory lane: this message was read already", "EINVAL"));
    if (offset < 0 || offset + this.length > target.byteLength) return done(new RangeError(`a ${this.length}-byte message does not fit at offset ${offset}`));
    this.started = true;
    this.target = target;
    this.at = offset;
    this.done = done;
    this.pump();
  }

  /** The message in a new buffer of its own (what recvBytes returns). */
  read(done: (error: Error | null, bytes: Uint8Array) => void): void {
    let bytes: Uint8Array;
    try {
      bytes = messageBuffer(this.length);
    } catch (error) {
      return done(new OSError(`shared-memory lane: cannot allocate ${this.length} bytes for a message`, "ENOMEM", { cause: error }), EMPTY);
    }
    // On failure the buffer (which may hold another message's leftover bytes) is not passed on.
    this.readInto(bytes, 0, (error) => (error ? done(error, EMPTY) : done(null, bytes)));
  }

  /** Let the peer reuse this message's pieces without reading them (now and as they arrive). */
  discard(): void {
    if (this.started) return;
    this.started = true;
    this.discarding = true;
    this.pump();
  }

  /** @internal A piece of this message was announced. */
  add(piece: Piece): void {
    this.pieces.push(piece);
    this.arrived += piece.length;
    if (this.target || this.discarding) this.pump();
  }

  /** @internal The rest of this message will never come: its read ends with `error`, now or when it starts. */
  fail(error: Error): void {
    this.error = error;
    this.finish(error);
  }

  private readonly resume = (): void => {
    this.pumping = false;
    this.pump();
  };

  private pump(): void {
    if (this.pumping) return;
    const target = this.target;
    while (this.next < this.pieces.length) {
      const piece = this.pieces[this.next]!;
      const r = piece.region;
      if (r.failure) return this.finish(r.failure);
      if (!r.region) {
        this.pumping = true;
        r.waiters.push(this.resume);
        break;
      }
      if (target) target.set(r.region.bytes.subarray(piece.offset, piece.offset + piece.length), this.at);
      this.at += piece.length;
      this.pieces[this.next++] = undefined as unknown as Piece;
      this.receiver.consumed(piece);
    }
    this.receiver.report();
    if (!this.pumping && this.next === this.pieces.length && this.complete) this.finish(null);
  }

  private finish(error: Error | null): void {
    const done = this.done;
    this.done = null;
    this.target = null; // the buffer is the reader's now: holding it would keep it from the GC
    if (done) done(error);
  }
}

const EMPTY = new Uint8Array(0);


export class LaneReceiver {
  /** Region descriptors being fetched. */
  private readonly fetches = new Set<Promise<void>>();

  /** Resolves once every region offered so far is fetched (held, or failed). */
  held(): Promise<void> {
    return Promise.all([...this.fetches]).then(() => undefined);
  }

  private regions = new Map<number, IncomingRegion>();
  private lastRegionId = 0;
  /** The message whose pieces are still arriving. */
  private current: IncomingMessage | null = null;
  /** Every message announced and not finished (so a failure reaches the reads in progress). */
  private open = new Set<IncomingMessage>();
  private consumedCount = 0;
  private reportedCount = 0;
  private failure: OSError | null = null;

  constructor(private readonly options: ReceiverOptions) {}

  /** Why the receiver stopped (closed, or a peer that broke the rules), or null. */
  get error(): OSError | null {
    return this.failure;
  }

  /** Regions of the peer mapped here, or being mapped (tests). */
  get regionCount(): number {
    return this.regions.size;
  }

  /** Follow a notice from the peer; returns the message a FIRST piece starts. Throws on a bad one. */
  take(notice: Exclude<Notice, { kind: typeof RELEASE | typeof HELLO | typeof OFF | typeof DONE }>): IncomingMessage | null {
    if (this.failure) throw this.failure;
    try {
      if (notice.kind === PIECE) return this.piece(notice);
      if (notice.kind === OFFER) this.offer(notice.region, notice.size, notice.ticket);
      else this.retire(notice.region);
      return null;
    } catch (error) {
      this.close(error as OSError);
      throw error;
    }
  }

  /**
   * The stream ended (the peer closed or died): a message still missing pieces fails with
   * CPython's "got end of file during message"; messages that arrived whole stay readable.
   */
  end(): void {
    const message = this.current;
    this.current = null;
    if (!message) return;
    this.open.delete(message);
    message.fail(new OSError("got end of file during message", "MESSAGE_TRUNCATED"));
  }

  /** Unmap every region and end every read in progress with `reason`. Idempotent. */
  close(reason?: OSError): void {
    // What was consumed this turn is still the peer's to know (a lane retired in the middle of
    // a turn: its sends may wait for exactly that RELEASE).
    if (this.reporting) this.flushReport();
    if (!this.failure) this.failure = reason ?? new OSError("shared-memory lane is closed", "EBADF");
    for (const r of this.regions.values()) this.closeRegion(r, this.failure);
    this.regions.clear();
    const open = [...this.open];
    this.open.clear();
    this.current = null;
    for (const message of open) message.fail(this.failure);
  }

  /** @internal A piece was copied out (or skipped): its room may go back to the peer. */
  consumed(piece: Piece): void {
    const r = piece.region;
    r.pieces--;
    r.bytes -= piece.length;
    this.consumedCount++;
    if (r.retired && r.pieces === 0) {
      this.regions.delete(r.id);
      this.closeRegion(r, new OSError("shared-memory lane: region retired", "EBADF"));
    }
  }

  /**
   * @internal Tell the peer what was consumed since the last report: once the current turn is
   * over, so that the pieces consumed in one turn (a burst of notices read from the socket at
   * once) take one RELEASE, not one each.
   */
  report(): void {
    if (this.reporting || this.consumedCount === this.reportedCount || this.failure) return;
    this.reporting = true;
    queueMicrotask(this.flushReport);
  }

  private reporting = false;

  private readonly flushReport = (): void => {
    this.reporting = false;
    if (this.consumedCount === this.reportedCount || this.failure) return;
    this.reportedCount = this.consumedCount;
    this.options.control(encodeNotice({ kind: RELEASE, count: this.consumedCount }));
  };

  private piece(n: Extract<Notice, { kind: typeof PIECE }>): IncomingMessage | null {
    const r = this.regions.get(n.region);
    if (!r || r.retired) throw protocol(`a piece in region ${n.region}, which is ${r ? "retired" : "unknown"}`);
    if (n.length < 1 || n.offset + n.length > r.size) throw protocol(`a piece of ${n.length} bytes at ${n.offset} in a region of ${r.size}`);
    if (r.pieces + 1 > r.size / PAGE || r.bytes + n.length > r.size) throw protocol(`more pieces outstanding than region ${r.id} can hold`);
    let started: IncomingMessage | null = null;
    let message = this.current;
    if (n.flags & FIRST) {
      if (message) throw protocol("a new message began inside another");
      if (n.total < n.length) throw protocol(`a message of ${n.total} bytes with a first piece of ${n.length}`);
      message = started = new IncomingMessage(this, n.total);
    } else {
      if (!message) throw protocol("a piece outside any message");
      if (n.total !== 0) throw protocol("a later piece carries a message length");
    }
    const arrived = message.announced + n.length;
    const last = arrived === message.length;
    if (arrived > message.length || last !== ((n.flags & LAST) !== 0)) throw protocol(`pieces that do not add up to the message's ${message.length} bytes`);
    r.pieces++;
    r.bytes += n.length;
    this.current = last ? null : message;
    if (started) this.open.add(started);
    message.add({ region: r, offset: n.offset, length: n.length });
    if (last && message.complete) this.open.delete(message);
    return started;
  }

  private offer(id: number, size: number, ticket: Uint8Array): void {
    if (id <= this.lastRegionId) throw protocol(`region ${id} offered after region ${this.lastRegionId}`);
    if (size < PAGE || size % PAGE !== 0 || size > this.options.maxRegion) throw protocol(`a region of ${size} bytes (limit ${this.options.maxRegion})`);
    if (this.regions.size >= MAX_REGIONS) throw protocol(`more than ${MAX_REGIONS} regions at once`);
    this.lastRegionId = id;
    const r: IncomingRegion = { id, size, region: null, failure: null, waiters: [], retired: false, pieces: 0, bytes: 0 };
    this.regions.set(id, r);
    const fetch = this.options.take(ticket).then(
      (fd) => {
        if (r.failure) return closeFd(fd); // closed meanwhile
        try {
          r.region = Region.adopt(id, fd, size);
        } catch (error) {
          r.failure = error as OSError;
        }
        this.wake(r);
      },
      (error: unknown) => {
        if (r.failure) return;
        r.failure = new OSError(`shared-memory lane: cannot receive region ${id}: ${(error as Error)?.message}`, (error as OSError)?.code, { cause: error });
        this.wake(r);
      },
    );
    this.fetches.add(fetch);
    void fetch.finally(() => this.fetches.delete(fetch));
  }

  private retire(id: number): void {
    const r = this.regions.get(id);
    if (!r || r.retired) throw protocol(`region ${id} retired, which is ${r ? "retired already" : "unknown"}`);
    r.retired = true;
    if (r.pieces === 0) {
      this.regions.delete(id);
      this.closeRegion(r, new OSError("shared-memory lane: region retired", "EBADF"));
    }
  }

  private wake(r: IncomingRegion): void {
    const waiters = r.waiters;
    r.waiters = [];
    for (const w of waiters) w();
  }

  private closeRegion(r: IncomingRegion, reason: OSError): void {
    if (!r.failure) r.failure = reason;
    r.region?.close();
    r.region = null;
    this.wake(r);
  }
}

function protocol(what: string): OSError {
  return new OSError(`shared-memory lane: the peer sent ${what}`, "EPROTO");
}
