// The sending half of the lane: copies each large message into its region (a ring, reused
// message after message) and says where with PIECE notices.
//
// A message is copied the moment send() is called (the caller may overwrite its buffer right
// after), straight into the ring when there is room. Room runs out in two ways:
//  - a message bigger than the region, or a burst of un-awaited sends bigger than it: the
//    region grows (a new, larger region is offered and the old one retired), up to maxSize;
//  - past maxSize: what does not fit is copied aside and placed when the receiver frees room.
// A message travels in pieces of at most `pieceSize` (by default maxSize / 2: whole messages up
// to 256 MiB), each announced by its own notice. When send() is given an `emit` callback (nothing
// is queued ahead of the message on the socket), the notices go out while the message is copied,
// so that with small pieces the receiver copies one out while the next is copied in
// (docs/large-messages.md, "Pieces").
//
// Pieces are freed in the order they were placed: RELEASE notices carry the count of pieces the
// receiver has consumed so far. Everything here (positions, counts) is this side's own state;
// a RELEASE that does not fit it fails the lane, and nothing in shared memory is ever read.
import { OSError } from "../errors.ts";
import { FIRST, LAST, OFFER, PIECE, RETIRE, encodeNotice } from "./notices.ts";
import { messageBuffer } from "./buffers.ts";
import { Region } from "./region.ts";
import { Ring, roundUp } from "./ring.ts";

export interface SenderOptions {
  /** Size of the first region (bytes, a multiple of 4096). */
  initialSize: number;
  /** No region grows past this (bytes). */
  maxSize: number;
  /** The largest piece (bytes, a multiple of 4096; at most maxSize / 2, the default). */
  pieceSize?: number;
  /** Hands a region's read-only descriptor to the peer; returns the ticket the OFFER carries. */
  give(fd: number): Uint8Array;
}

interface Placed {
  region: Region;
  ring: Ring;
  /** Pieces placed and not yet released. */
  live: number;
  retired: boolean;
}

/** One message on its way: the notices that announce it, in the order they must be written. */
export class OutgoingMessage {
  /** Notice frames ready to write; pull() takes them in order. */
  private frames: Uint8Array[] = [];
  private pulled = 0;
  /** Bytes already copied into a region. */
  placed = 0;
  /** The bytes not placed yet, copied aside at send() (null when everything was placed at once). */
  rest: Uint8Array | null = null;

  constructor(readonly length: number) {}

  /** The next notice frame to write, or undefined when there is none yet (see LaneSender.onReady). */
  pull(): Uint8Array | undefined {
    if (this.pulled === this.frames.length) return undefined;
    const frame = this.frames[this.pulled]!;
    this.frames[this.pulled++] = EMPTY;
    return frame;
  }

  /** Every byte is placed and every notice pulled: the message is out of the sender's hands. */
  get done(): boolean {
    return this.placed === this.length && this.pulled === this.frames.length;
  }

  /** @internal While send() places the message: where its notices go (see LaneSender.send). */
  emit: ((frame: Uint8Array) => void) | null = null;
  /** Notices for `emit` not handed over yet (see flush). */
  private held: Uint8Array[] = [];

  /** @internal */
  push(frame: Uint8Array): void {
    if (this.emit) this.held.push(frame);
    else this.frames.push(frame);
  }

  /** @internal Hand the notices held for `emit` over, in one frame (one write). */
  flush(): void {
    const held = this.held;
    if (this.emit === null || held.length === 0) return;
    this.held = [];
    this.emit(held.length === 1 ? held[0]! : Buffer.concat(held));
  }
}

/** A piece allocated by the plan, copied and announced next. */
interface Planned {
  target: Placed;
  offset: number;
  size: number;
}

const EMPTY = new Uint8Array(0);

const nextPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(n));

/**
 * A piece size that pipelines the two copies (`pieceSize`): small enough that each copy stays
 * below where glibc's memcpy switches to non-temporal stores, so the receiver copies it out of
 * the cache (docs/large-messages.md, "Pieces": not the default, which measured faster here).
 */
export const PIPELINE_PIECE = 512 * 1024;

/**
 * With emit, notices are handed over after the first piece (so the peer starts at once), then
 * once this many bytes more were copied: fewer writes, and fewer wake-ups of a peer that copies
 * faster than this side and so waits for every notice (docs/large-messages.md, "Pieces").
 */
export const NOTICE_BATCH = 2 * 1024 * 1024;

/** A copy of what waits for room (fresh memory, on huge pages where it can: see freshBuffer). */
function copyAside(bytes: Uint8Array): Uint8Array {
  const copy = messageBuffer(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

export class LaneSender {
  private current: Placed | null = null;
  /** The region of every piece placed and not released, oldest first (from index `firstLive`). */
  private pieces: Placed[] = [];
  private firstLive = 0;
  private released = 0;
  private placedCount = 0;
  /** The first piece placed after the latest OFFER: once the peer released it, it holds that region. */
  private offeredAt = 0;
  private nextRegionId = 1;
  /** Messages with bytes still to place, oldest first. */
  private waiting: OutgoingMessage[] = [];
  private failure: OSError | null = null;
  /** The largest piece (options.pieceSize, at most maxRun). */
  private readonly pieceSize: number;
  /** The largest run of a message one region must hold at once (growth is sized for it). */
  private readonly maxRun: number;
  /** Called when a waiting message got notices to pull, or room was freed (see `pressing`). */
  onReady: () => void = () => {};

  constructor(private readonly options: SenderOptions) {
    if (options.initialSize % 4096 !== 0 || options.initialSize <= 0) throw new RangeError(`initialSize must be a positive multiple of 4096 (got ${options.initialSize})`);
    if (options.maxSize < options.initialSize) throw new RangeError(`maxSize (${options.maxSize}) is below initialSize (${options.initialSize})`);
    this.maxRun = Math.max(4096, Math.floor(options.maxSize / 2 / 4096) * 4096);
    const piece = options.pieceSize ?? this.maxRun;
    if (!Number.isSafeInteger(piece) || piece <= 0 || piece % 4096 !== 0) throw new RangeError(`pieceSize must be a positive multiple of 4096 (got ${piece})`);
    this.pieceSize = Math.min(piece, this.maxRun);
  }

  /**
   * Take `body` now: after this call the caller may change its buffer. Notices come out of the
   * returned message's pull(), in order; write them in the message's place in the stream.
   *
   * With `emit` (the caller has nothing queued ahead of this message), the notices of what is
   * placed now are handed to it instead, each as soon as it may be written: a piece's notice
   * right after its copy, so that the peer copies it out while this side copies the next.
   */
  send(body: Uint8Array, emit?: (frame: Uint8Array) => void): OutgoingMessage {
    if (this.failure) throw this.failure;
    if (body.byteLength === 0) throw new RangeError("the lane carries no empty messages");
    const out = new OutgoingMessage(body.byteLength);
    out.emit = emit ?? null;
    try {
      if (this.waiting.length === 0) this.place(out, body, 0);
    } catch (error) {
      // Out of memory or descriptors: place() fails before it announces anything.
      this.close(error as Error, out.placed === 0);
      throw this.failure!;
    } finally {
      out.emit = null;
    }
    if (out.placed < out.length) {
      out.rest = copyAside(body.subarray(out.placed));
      this.waiting.push(out);
    }
    return out;
  }

  /**
   * Whether the sender is past its high-water mark: messages wait for room, or more than half
   * of the region is in use. A send() promise should resolve once this is false.
   */
  get pressing(): boolean {
    if (this.waiting.length > 0) return true;
    const c = this.current;
    return c !== null && c.ring.used * 2 > c.ring.size;
  }

  /**
   * Whether the peer holds every region offered so far (it released a piece placed after the
   * latest offer, so it fetched and mapped that region). Until then the region's only owner is
   * this process: were it to exit, the offered descriptor would die with it, and with it every
   * message placed there. A send() promise should not resolve before this is true.
   */
  get confirmed(): boolean {
    return this.released >= this.offeredAt;
  }

  /** The peer consumed pieces up to `count` (cumulative). A count that does not fit fails the lane. */
  release(count: number): void {
    if (this.failure) {
      if (this.failure.code === "EPROTO") throw this.failure;
      return; // closed here: what the peer still frees is gone already
    }
    if (!Number.isSafeInteger(count) || count <= this.released || count > this.placedCount) {
      const error = new OSError(`shared-memory lane: the peer released ${count} pieces, but ${this.released} were released and ${this.placedCount} placed`, "EPROTO");
      this.close(error, false);
      throw error;
    }
    while (this.released < count) {
      const at = this.pieces[this.firstLive]!;
      this.pieces[this.firstLive++] = undefined as unknown as Placed;
      this.released++;
      at.ring.free();
      at.live--;
      if (at.retired && at.live === 0) at.region.close();
    }
    if (this.firstLive > 1024 && this.firstLive * 2 > this.pieces.length) {
      this.pieces = this.pieces.slice(this.firstLive);
      this.firstLive = 0;
    }
    try {
      while (this.waiting.length > 0) {
        const out = this.waiting[0]!;
        this.place(out, out.rest!, out.length - out.rest!.byteLength);
        if (out.placed < out.length) break;
        out.rest = null;
        this.waiting.shift();
      }
    } catch (error) {
      this.close(error as Error, false);
    }
    this.onReady();
  }

  /** Regions alive on this side (tests). */
  get regions(): number {
    const alive = new Set<Region>();
    for (let i = this.firstLive; i < this.pieces.length; i++) alive.add(this.pieces[i]!.region);
    if (this.current) alive.add(this.current.region);
    return alive.size;
  }

  /**
   * After a failure: true when no message was left half-announced, so later messages may take
   * the socket instead; false when the stream is broken.
   */
  canFallBack = true;

  /** Why the sender stopped (closed, out of resources, a peer that broke the protocol), or null. */
  get error(): OSError | null {
    return this.failure;
  }

  /** Unmap and close every region; waiting messages are dropped. Idempotent. */
  close(reason?: Error, canFallBack = false): void {
    if (!this.failure) {
      this.failure =
        reason instanceof OSError
          ? reason
          : new OSError(reason ? `shared-memory lane failed: ${reason.message}` : "shared-memory lane is closed", "EBADF", reason ? { cause: reason } : undefined);
      this.canFallBack = canFallBack && this.waiting.length === 0;
    }
    for (let i = this.firstLive; i < this.pieces.length; i++) this.pieces[i]!.region.close();
    this.current?.region.close();
    this.pieces = [];
    this.firstLive = 0;
    this.waiting = [];
    this.current = null;
  }

  /**
   * Copy as much of `src` (message bytes from `out.placed` on, at `src[srcAt]`) as there is room
   * for. Room is planned first and copied into second: whatever can fail (a region to create, a
   * descriptor to give) fails before the first notice of the message is out.
   */
  private place(out: OutgoingMessage, src: Uint8Array, srcStart: number): void {
    const steps: Array<Planned | Uint8Array> = [];
    for (let planned = out.placed; planned < out.length; ) {
      const size = Math.min(out.length - planned, this.pieceSize);
      const piece = this.allocate(size, out.length - planned, steps);
      if (!piece) break;
      steps.push(piece);
      piece.target.live++;
      this.pieces.push(piece.target);
      this.placedCount++;
      planned += size;
    }
    let unannounced = 0;
    for (const step of steps) {
      if (step instanceof Uint8Array) {
        out.push(step);
        continue;
      }
      const { target, offset, size } = step;
      const from = out.placed - srcStart;
      target.region.bytes.set(src.subarray(from, from + size), offset);
      const flags = (out.placed === 0 ? FIRST : 0) | (out.placed + size === out.length ? LAST : 0);
      out.push(encodeNotice({ kind: PIECE, region: target.region.id, flags, offset, length: size, total: flags & FIRST ? out.length : 0 }));
      out.placed += size;
      unannounced += size;
      if (flags & FIRST || unannounced >= NOTICE_BATCH) {
        out.flush();
        unannounced = 0;
      }
    }
    out.flush();
  }

  /**
   * Room for a piece of `size` bytes: in the current region, else in a new larger one, whose
   * notices go into `steps`; null when there is none now. `left`: the bytes of the message still
   * to place, which a new region is sized for.
   */
  private allocate(size: number, left: number, steps: Array<Planned | Uint8Array>): Planned | null {
    const c = this.current;
    if (c) {
      const offset = c.ring.allocate(size);
      if (offset >= 0) return { target: c, offset, size };
      if (c.ring.size >= this.options.maxSize) return null;
    }
    // Four times larger at least: a burst reaches its size in few steps, and each step is a
    // region of fresh pages (slow to touch the first time).
    const wanted = nextPow2(2 * roundUp(Math.min(left, this.maxRun)) + (c ? c.ring.used : 0));
    const next = this.grow(Math.min(this.options.maxSize, Math.max(this.options.initialSize, wanted, c ? 4 * c.ring.size : 0)), steps);
    const offset = next.ring.allocate(size);
    return offset >= 0 ? { target: next, offset, size } : null;
  }

  private grow(size: number, steps: Array<Planned | Uint8Array>): Placed {
    const old = this.current;
    if (this.nextRegionId > 0xffff) throw new OSError("shared-memory lane: out of region numbers", "ENOSPC");
    const region = Region.create(this.nextRegionId++, size);
    let ticket: Uint8Array;
    try {
      ticket = this.options.give(region.shareReadOnly());
    } catch (error) {
      region.close();
      throw error;
    }
    if (old) {
      old.retired = true;
      steps.push(encodeNotice({ kind: RETIRE, region: old.region.id }));
      if (old.live === 0) old.region.close();
    }
    steps.push(encodeNotice({ kind: OFFER, region: region.id, size, ticket }));
    this.offeredAt = this.placedCount + 1;
    this.current = { region, ring: new Ring(size), live: 0, retired: false };
    return this.current;
  }
}
