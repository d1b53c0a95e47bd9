// The shared-memory lane of one Connection (docs/large-messages.md, "The interface Connection
// uses"). Registered with the connection only when the lane may be used; the connection then
// hands it every body it sends (it keeps order with messages waiting for room in the lane), and
// puts it between the frame decoder and the inbox (it keeps the lane's messages in order with
// the socket's).
//
// Sending: a body the lane carries is copied into it at the call; its notices are written in
// the message's place. While a message waits for room, later messages wait behind it (small
// ones copied, as the caller may reuse its buffer). RELEASE notices go ahead of all that.
// Receiving: a lane message is read out of the region as soon as it is announced — into the
// buffer of a recvBytesInto already waiting, else a buffer of its own — and reaches the inbox
// as an ordinary body; socket messages that arrive meanwhile wait behind it.
import { OSError } from "../errors.ts";
import type { FrameSink } from "../frames/decoder.ts";
import { Lane, type IncomingMessage, type LaneIO, type LaneOptions, type OutgoingMessage } from "../lane/lane.ts";
import type { Inbox } from "../messages/inbox.ts";
import type { Outbox } from "../messages/outbox.ts";
import { fetchDescriptor, REQUEST_SIZE, share } from "../processes/fdpass/sharer.ts";
import { supported } from "../os/shm.ts";

/** How an end learns that its peer speaks the lane (docs/large-messages.md, "Negotiation"). */
export type LaneStart =
  /** The peer is known to (both ends made here with the option: Pipe). */
  | "known"
  /** This end knows the peer does, and tells it with a HELLO first (parentConnection). */
  | "hello"
  /** This end waits for the peer's HELLO before using the lane (spawn). */
  | "listen";

interface Send {
  message: OutgoingMessage | null;
  /** A socket message waiting behind a lane message (a copy). */
  body: Uint8Array | null;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** Received items waiting behind a lane message being read: bodies, lane messages, the end. */
type Held = Uint8Array | IncomingMessage | (() => void);

const RESOLVED = Promise.resolve();

/** Whether this process can use the lane at all (Linux, a supported architecture). */
export const laneSupported = supported;

/** The `sharedMemory` option, checked: undefined gives `fallback`. */
export function sharedMemoryOption(value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new TypeError(`sharedMemory must be true or false, not ${typeof value === "string" ? JSON.stringify(value) : String(value)}`);
  return value;
}

export class LaneLink implements FrameSink {
  readonly lane: Lane;
  private sends: Send[] = [];
  private settling: Send[] = [];
  private reading: IncomingMessage | null = null;
  private held: Held[] = [];
  private failure: Error | null = null;

  constructor(
    private readonly inbox: Inbox,
    private readonly outbox: () => Outbox,
    start: LaneStart,
    options: LaneOptions = {},
  ) {
    const io: LaneIO = {
      control: (frame) => this.outbox().control(frame),
      give: giveDescriptor,
      take: takeDescriptor,
    };
    this.lane = new Lane(io, options, start !== "listen");
    this.lane.onReady = () => this.pump();
    if (start === "hello") this.outbox().sendFramed(Lane.hello());
  }

  // ---- sending ----

  /** Send `body` through the lane, or behind a lane message; null: the socket takes it as usual. */
  send(body: Uint8Array): Promise<void> | null {
    const lane = this.lane;
    if (this.sends.length === 0 && !lane.carries(body.byteLength)) return null;
    if (this.failure) return Promise.reject(this.failure);
    let message: OutgoingMessage | null = null;
    if (lane.carries(body.byteLength)) {
      try {
        message = lane.send(body);
      } catch (error) {
        // memfd_create or mmap refused: the socket carries this message and the next ones.
        if (!lane.canFallBack) return Promise.reject(error);
      }
    }
    if (message === null && this.sends.length === 0) return null;
    return new Promise<void>((resolve, reject) => {
      this.sends.push({ message, body: message ? null : body.slice(), resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.failure) return;
    const outbox = this.outbox();
    while (this.sends.length > 0) {
      const send = this.sends[0]!;
      if (send.body) {
        this.sends.shift();
        outbox.send(send.body).then(send.resolve, send.reject);
        continue;
      }
      const message = send.message!;
      for (let frame = message.pull(); frame; frame = message.pull()) outbox.sendFramed(frame);
      if (!message.done) break; // waiting for room: onReady comes back here
      this.sends.shift();
      this.settling.push(send);
    }
    if (outbox.error) return this.fail(outbox.error);
    // A resolved send must survive this process exiting: not before the peer holds the region.
    if (!this.lane.pressing && this.lane.confirmed && this.settling.length > 0) for (const send of this.settling.splice(0)) send.resolve();
  }

  // ---- receiving (the frame decoder's sink, in front of the inbox) ----

  /** A notice's body arrived (the frame decoder's hook). */
  notice(body: Uint8Array): boolean {
    let message: IncomingMessage | null;
    try {
      message = this.lane.take(body);
    } catch (error) {
      this.inbox.fault(error as Error);
      return false;
    }
    if (message) this.arrive(message);
    return true;
  }

  private get holding(): boolean {
    return this.reading !== null || this.held.length > 0;
  }

  frame(body: Uint8Array): boolean {
    if (!this.holding) return this.inbox.frame(body);
    this.held.push(body);
    return true;
  }

  frames(buffer: Uint8Array, base: number, table: Uint32Array, count: number): boolean {
    if (!this.holding) return this.inbox.frames(buffer, base, table, count);
    for (let i = 0; i < 2 * count; i += 2) {
      const at = base + table[i]!;
      this.held.push(buffer.subarray(at, at + table[i + 1]!));
    }
    return true;
  }

  begin(length: number): boolean {
    // Behind a lane message the first receive is not this frame's: its maxlength is checked on delivery.
    return this.holding || this.inbox.begin(length);
  }

  destination(length: number): Uint8Array | undefined {
    return this.holding ? undefined : this.inbox.destination(length);
  }

  invalid(length: number): void {
    this.after(() => this.inbox.invalid(length));
  }

  settle(): void {
    this.inbox.settle();
  }

  /** The peer's stream ended (`cut`: how, as for the inbox): a lane message cut short fails. */
  finish(cut: Error | null): void {
    this.lane.end();
    this.after(() => this.inbox.finish(cut));
  }

  private after(action: () => void): void {
    if (this.holding) this.held.push(action);
    else action();
  }

  private arrive(message: IncomingMessage): void {
    if (this.holding) this.held.push(message);
    else this.read(message);
  }

  /** Read a lane message out of its region, then hand it to the inbox and go on with what waited. */
  private read(message: IncomingMessage): void {
    // As on the socket: a body longer than the waiting receive's maxlength is refused unread.
    if (!this.inbox.begin(message.length)) {
      message.discard();
      this.held = [];
      return;
    }
    const target = this.inbox.destination(message.length);
    this.reading = message;
    const done = (error: Error | null, bytes: Uint8Array): void => {
      if (this.reading !== message) return;
      this.reading = null;
      if (error) {
        this.held = [];
        this.inbox.finish(error);
        return;
      }
      let open = this.inbox.frame(bytes);
      while (open && this.reading === null && this.held.length > 0) {
        const item = this.held.shift()!;
        if (item instanceof Uint8Array) open = this.inbox.frame(item);
        else if (typeof item === "function") item();
        else this.read(item);
      }
      if (!open) this.held = [];
      this.inbox.settle();
    };
    if (target) message.readInto(target, 0, (error) => done(error, target));
    else message.read(done);
  }

  // ---- ending ----

  /** The socket is gone or failed: sends waiting for room fail with `error`. */
  fail(error: Error): void {
    if (!this.failure) this.failure = error;
    for (const send of this.sends.splice(0)) send.reject(this.failure);
    for (const send of this.settling.splice(0)) send.reject(this.failure);
  }

  /** Unmap and close everything of the lane (the connection closed). */
  close(): void {
    const closed = new OSError("handle is closed", "HANDLE_CLOSED");
    this.fail(closed);
    this.reading = null;
    this.held = [];
    this.lane.close(closed);
  }
}

// Region descriptors travel through the descriptor sharer (SCM_RIGHTS, checked uid, one-time
// secret): the ticket is its request (id + secret) followed by the sharer's socket path.

function giveDescriptor(fd: number): Uint8Array {
  const ticket = share(fd, RESOLVED);
  const path = new TextEncoder().encode(ticket.address);
  const bytes = new Uint8Array(REQUEST_SIZE + path.byteLength);
  bytes.set(ticket.request, 0);
  bytes.set(path, REQUEST_SIZE);
  return bytes;
}

function takeDescriptor(ticket: Uint8Array): Promise<number> {
  if (ticket.byteLength <= REQUEST_SIZE) return Promise.reject(new OSError("shared-memory lane: a region offer without a ticket", "EPROTO"));
  return fetchDescriptor({ request: ticket.slice(0, REQUEST_SIZE), address: new TextDecoder().decode(ticket.subarray(REQUEST_SIZE)) });
}
