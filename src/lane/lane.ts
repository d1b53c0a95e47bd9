// The shared-memory lane of one connection: a state machine that takes the peer's notices in
// and gives notices out, and never touches the socket (docs/large-messages.md).
//
// What a connection does with it (the whole interface):
//   sending   — a message of `threshold` bytes or more: `send(body, emit?)` copies it at once
//               and returns an OutgoingMessage; write its `pull()`ed frames in the message's place
//               in the stream (or give `emit`, which writes them during the copy). `pressing` is
//               the high-water mark; `onReady` says when to look again (frames to pull, or room
//               freed).
//   receiving — a frame with the notice marker (-2): `take(body)`; a message it starts takes
//               its place in the inbox, and is later read with `readInto()` or `read()`.
//   control   — RELEASE frames come out through `io.control()`: write them at the next frame
//               boundary, ahead of queued messages (a queued message may be waiting for exactly
//               that release, on the other side).
//   descriptors — `io.give(fd)` makes a ticket for a region's descriptor, `io.take(ticket)`
//               fetches one; the connection decides how they travel (SCM_RIGHTS).
import { OSError } from "../errors.ts";
import { DONE, HELLO, OFF, RELEASE, decodeNotice, encodeNotice } from "./notices.ts";
import { LaneReceiver, type IncomingMessage } from "./receiver.ts";
import { LaneSender, type OutgoingMessage } from "./sender.ts";

export { IncomingMessage } from "./receiver.ts";
export { OutgoingMessage } from "./sender.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

export interface LaneOptions {
  /** Messages of at least this many bytes take the lane (default 128 KiB: docs/large-messages.md, "Threshold"). */
  threshold?: number;
  /** The first region's size in bytes (default 8 MiB). */
  initialSize?: number;
  /** Regions grow up to this size (default 512 MiB); bigger messages travel in pieces. */
  maxSize?: number;
  /** The largest region accepted from the peer (default 1 GiB). */
  maxRegion?: number;
  /**
   * The largest piece a message is cut into (default: maxSize / 2, so messages up to 256 MiB
   * travel whole). Pieces of 512 KiB let the receiver copy a message out while it is copied in
   * (docs/large-messages.md, "Pieces").
   */
  pieceSize?: number;
}

export const DEFAULTS: Required<Omit<LaneOptions, "pieceSize">> = {
  threshold: 128 * KiB,
  initialSize: 8 * MiB,
  maxSize: 512 * MiB,
  maxRegion: 1024 * MiB,
};

export interface LaneIO {
  /** Write a control notice at the next frame boundary, ahead of queued messages. */
  control(frame: Uint8Array): void;
  /** A ticket through which the peer can fetch `fd` (ownership passes to the callee). */
  give(fd: number): Uint8Array;
  /** Fetch the descriptor a ticket from the peer names. */
  take(ticket: Uint8Array): Promise<number>;
}

/** What a connection hands its large messages to. */
export interface LargeMessageTransport {
  carries(size: number): boolean;
  send(body: Uint8Array, emit?: (frame: Uint8Array) => void): OutgoingMessage;
  readonly pressing: boolean;
  /** The peer holds every region offered to it: sends may resolve (the sender may exit). */
  readonly confirmed: boolean;
  onReady: () => void;
  take(notice: Uint8Array): IncomingMessage | null;
  end(): void;
  close(reason?: OSError): void;
}

export class Lane implements LargeMessageTransport {
  readonly threshold: number;
  /**
   * The peer is known to speak the lane: only then does this end put a message into it. Until
   * then it only understands the peer's notices (the first of which is a HELLO).
   */
  active: boolean;
  private readonly sender: LaneSender;
  private readonly receiver: LaneReceiver;

  /** `peerKnown`: the peer speaks the lane already (false: wait for its HELLO). */
  constructor(io: LaneIO, options: LaneOptions = {}, peerKnown = true) {
    this.active = peerKnown;
    const o = { ...DEFAULTS };
    // An option given as undefined keeps its default, as everywhere else in mpconn.
    for (const key of Object.keys(DEFAULTS) as Array<keyof typeof DEFAULTS>) if (options[key] !== undefined) o[key] = options[key];
    if (!Number.isSafeInteger(o.threshold) || o.threshold < 1) throw new RangeError(`threshold must be a positive integer (got ${o.threshold})`);
    this.threshold = o.threshold;
    this.sender = new LaneSender({ initialSize: o.initialSize, maxSize: o.maxSize, pieceSize: options.pieceSize, give: (fd) => io.give(fd) });
    this.receiver = new LaneReceiver({ maxRegion: o.maxRegion, take: (ticket) => io.take(ticket), control: (frame) => io.control(frame) });
  }

  /** Whether a message of `size` bytes should take the lane now. */
  carries(size: number): boolean {
    return this.active && size >= this.threshold && this.sender.error === null;
  }

  /**
   * Copy `body` into the lane now; see OutgoingMessage. With `emit` (nothing is queued ahead of
   * the message), its notices are handed to it during the copy, each piece's as soon as the piece
   * is in (see LaneSender.send). Throws OSError when the lane cannot (then see `canFallBack`).
   */
  send(body: Uint8Array, emit?: (frame: Uint8Array) => void): OutgoingMessage {
    return this.sender.send(body, emit);
  }

  /** After send() failed: whether later messages may take the socket (nothing was left half-sent). */
  get canFallBack(): boolean {
    return this.sender.canFallBack;
  }

  /** Past the high-water mark: a send() should not resolve yet. */
  get pressing(): boolean {
    return this.sender.pressing;
  }

  /** The peer holds every region offered to it; until then a send() should not resolve. */
  get confirmed(): boolean {
    return this.sender.confirmed;
  }

  get onReady(): () => void {
    return this.sender.onReady;
  }
  set onReady(callback: () => void) {
    this.sender.onReady = callback;
  }

  /** A notice's body (the bytes after its 8-byte header) arrived. Throws OSError on a bad one. */
  take(body: Uint8Array): IncomingMessage | null {
    try {
      const notice = decodeNotice(body);
      if (notice.kind === HELLO) {
        this.active = true;
        this.onReady();
        return null;
      }
      if (notice.kind === OFF || notice.kind === DONE) {
        // OFF: the peer's connection is moving away; it takes no new message through the lane.
        if (notice.kind === OFF) this.active = false;
        this.onSignal(notice.kind === OFF ? "off" : "done");
        return null;
      }
      if (notice.kind !== RELEASE) return this.receiver.take(notice);
      this.sender.release(notice.count);
      return null;
    } catch (error) {
      // The peer broke the protocol: nothing of the lane can be trusted any more.
      this.close(error as OSError);
      throw error;
    }
  }

  /** The notice that tells the peer this end speaks the lane (written once, before any other). */
  static hello(): Uint8Array {
    return encodeNotice({ kind: HELLO });
  }

  /** Retiring the lane before a connection moves: "off" asks the peer to stop, "done" answers it. */
  static signal(signal: "off" | "done"): Uint8Array {
    return encodeNotice({ kind: signal === "off" ? OFF : DONE });
  }

  /** The peer sent OFF ("off") or DONE ("done"). */
  onSignal: (signal: "off" | "done") => void = () => {};

  /** Resolves once this end holds every region the peer offered so far. */
  held(): Promise<void> {
    return this.receiver.held();
  }

  /** Regions mapped on each side (tests, diagnostics). */
  get regions(): { sending: number; receiving: number } {
    return { sending: this.sender.regions, receiving: this.receiver.regionCount };
  }

  /** The peer's stream ended: a message cut short fails; whole ones can still be read until close(). */
  end(): void {
    this.receiver.end();
  }

  /** Unmap and close everything; reads in progress end with `reason`. Idempotent. */
  close(reason?: OSError): void {
    this.sender.close(reason);
    this.receiver.close(reason);
  }
}
