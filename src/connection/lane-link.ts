// The shared-memory lane of one Connection (docs/large-messages.md, "The interface Connection
// uses"). Registered with the connection only when the lane may be used; the connection then
// hands it every body it sends (it keeps order with messages waiting for room in the lane), and
// puts it between the frame decoder and the inbox (it keeps the lane's messages in order with
// the socket's).
//
// Sending: a body the lane carries is copied into it at the call; its notices are written in
// the message's place. While a message waits for room, later messages wait behind it (small
// ones copied, as the caller may reuse its buffer). RELEASE notices go ahead of all that.
// Receiving: a lane message is read out of the region once the inbox is empty — into the buffer
// of a recvBytesInto already waiting, else a buffer of its own — and reaches the inbox as an
// ordinary body; socket messages that arrive meanwhile wait behind it.
// Retiring: before the connection moves to another process (see retire()).
import { OSError } from "../errors.ts";
import type { FrameSink } from "../frames/decoder.ts";
import { Lane, type IncomingMessage, type LaneIO, type LaneOptions, type OutgoingMessage } from "../lane/lane.ts";
import type { Inbox } from "../messages/inbox.ts";
import type { Outbox } from "../messages/outbox.ts";
import { shedSpill } from "../messages/spill.ts";
import { fetchDescriptor, REQUEST_SIZE, share } from "../processes/fdpass/sharer.ts";
import { supported } from "../os/shm.ts";

/** How an end learns that its peer speaks the lane (docs/large-messages.md, "Negotiation"). */
export type LaneStart =
  /** The peer is known to (Pipe: both ends made here; Listener/Client: the challenge's tag). */
  | "known"
  /** This end knows the peer does, and tells it with a HELLO first (parentConnection; fromFd that found the peer's marker). */
  | "hello"
  /** This end waits for the peer's HELLO before using the lane (spawn; fromFd that found no marker). */
  | "listen";

interface Send {
  message: OutgoingMessage | null;
  /** A lane signal to write in this place: OFF (this end retires) or DONE (the answer). */
  signal?: "off" | "done";
  /** A socket message waiting behind a lane message (a copy). */
  body: Uint8Array | null;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** Received items waiting behind a lane message being read: bodies, lane messages, the end. */
type Held = Uint8Array | IncomingMessage | (() => void);

const RESOLVED = Promise.resolve();
const noop = (): void => {};

/** Thrown where a connection with the lane is about to move: retry once `until` resolved (the lane retired). */
export class RetireFirst extends Error {
  constructor(readonly until: Promise<void>) {
    super("the shared-memory lane must be retired before this connection moves");
  }
}

/** Socket bodies waiting behind an unread lane message: the socket pauses above PAUSE_AT bytes, as the inbox's. */
const PAUSE_AT = 16 << 20;
const RESUME_AT = 4 << 20;
const HELD_OVERHEAD = 32;

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
  /** Writes a lane notice in order after what the outbox holds (lane.send's emit). */
  private readonly emit = (frame: Uint8Array): void => this.outbox().sendFramed(frame);
  private sends: Send[] = [];
  private settling: Send[] = [];
  private reading: IncomingMessage | null = null;
  private held: Held[] = [];
  private heldBytes = 0;
  private paused = false;
  /** False once the inbox takes nothing more (a refused message, an error): what waits is dropped. */
  private open = true;
  private failure: Error | null = null;
  /** Retiring (the connection is about to move): read every lane message out at once. */
  private eager = false;
  private retirement: { done: Promise<void>; resolve: () => void } | null = null;
  private peerDone = false;
  private ended = false;
  /** The peer is retiring: no RELEASE goes to it any more (its socket is about to move). */
  private peerLeaving = false;
  /** Retired: this end writes and reads no notice any more; the connection may move. */
  retired = false;
  /** The lane has carried a message: the spill memory its socket sends needed was let go. */
  private carried = false;

  constructor(
    private readonly inbox: Inbox,
    private readonly outbox: () => Outbox,
    /** Pause (true) or resume (false) reading from the socket, for bodies waiting here. */
    private readonly pause: (paused: boolean) => void,
    start: LaneStart,
    /** Run once the lane is closed or retired (fromFd's marker goes then). */
    private readonly cleanup: () => void = noop,
    options: LaneOptions = {},
  ) {
    const io: LaneIO = {
      control: (frame) => {
        if (!this.peerLeaving) this.outbox().control(frame);
      },
      give: giveDescriptor,
      take: takeDescriptor,
    };
    this.lane = new Lane(io, options, start !== "listen");
    this.lane.onReady = () => this.pump();
    this.lane.onSignal = (signal) => (signal === "off" ? this.peerRetires() : this.peerFinished());
    // Not from inside the inbox's own call: the next read may hand it a message at once.
    inbox.emptied = () => queueMicrotask(this.resume);
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
      // Before the copy into the region: its pages and the spill's are not to count together.
      if (!this.carried) this.firstCarried();
      try {
        // Nothing waits ahead of it here: its notices go out during the copy, in order after
        // what the outbox holds, so the peer copies each piece out while the next goes in.
        message = lane.send(body, this.sends.length === 0 ? this.emit : undefined);
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

  /**
   * Large messages now take the lane, with memory of its own: the spill memory that held what
   * the kernel refused of earlier large socket sends (before the peer's HELLO, say) would only
   * sit beside the region for its quiet spell, so it goes now.
   */
  private firstCarried(): void {
    this.carried = true;
    shedSpill();
  }

  private pump(): void {
    if (this.failure) return;
    const outbox = this.outbox();
    while (this.sends.length > 0) {
      const send = this.sends[0]!;
      if (send.signal) {
        this.sends.shift();
        outbox.sendFramed(Lane.signal(send.signal));
        continue;
      }
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
    this.checkRetired();
  }

  // ---- retiring, before the connection moves to another process ----
  //
  // This end stops putting messages into the lane, writes OFF once its last lane message is out,
  // and reads every lane message the peer announced into ordinary bodies. The peer, on OFF, stops
  // too (new messages take the socket, RELEASEs stop) and answers DONE after its last notice.
  // Once DONE arrived and everything before it is in the inbox, no notice can follow: the
  // connection moves as a plain socket, its unread messages with it.

  /** Resolves once the lane is retired (or the peer is gone). */
  retire(): Promise<void> {
    if (this.retired) return RESOLVED;
    if (this.retirement) return this.retirement.done;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.retirement = { done: promise, resolve };
    this.lane.active = false;
    this.eager = true;
    this.sends.push({ message: null, body: null, signal: "off", resolve: noop, reject: noop });
    this.pump();
    this.drain(true);
    return promise;
  }

  private peerRetires(): void {
    this.peerLeaving = true;
    // DONE also says "I hold every region you offered": the peer may then let its sends resolve
    // and its process exit, although its RELEASEs (which would prove it) no longer come.
    void this.lane.held().then(() => {
      this.sends.push({ message: null, body: null, signal: "done", resolve: noop, reject: noop });
      this.pump();
    });
  }

  private peerFinished(): void {
    this.peerDone = true;
    queueMicrotask(() => this.checkRetired());
  }

  private checkRetired(): void {
    const r = this.retirement;
    if (!r || this.retired || !(this.peerDone || this.ended || this.failure)) return;
    if (this.reading !== null || this.held.length > 0 || this.sends.length > 0) return;
    this.retired = true;
    // Every message this end put into the lane is out, and the peer's DONE said it holds every
    // region they are in (or the peer is gone).
    for (const send of this.settling.splice(0)) send.resolve();
    this.lane.close(new OSError("the shared-memory lane was retired", "HANDLE_CLOSED"));
    this.cleanup();
    r.resolve();
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
    if (message) {
      this.held.push(message);
      this.drain(false);
    }
    return this.open;
  }

  private get holding(): boolean {
    return this.reading !== null || this.held.length > 0;
  }

  frame(body: Uint8Array): boolean {
    if (!this.holding) return this.inbox.frame(body);
    this.hold(body);
    return true;
  }

  frames(buffer: Uint8Array, base: number, table: Uint32Array, count: number): boolean {
    if (!this.holding) return this.inbox.frames(buffer, base, table, count);
    for (let i = 0; i < 2 * count; i += 2) {
      const at = base + table[i]!;
      this.hold(buffer.subarray(at, at + table[i + 1]!));
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
    this.ended = true;
    this.lane.end();
    this.after(() => this.inbox.finish(cut));
    this.checkRetired();
  }

  private after(action: () => void): void {
    if (this.holding) this.held.push(action);
    else action();
  }

  /** A socket body behind a lane message; the socket pauses while too many bytes wait so. */
  private hold(body: Uint8Array): void {
    this.held.push(body);
    this.heldBytes += body.byteLength + HELD_OVERHEAD;
    if (!this.paused && this.heldBytes > PAUSE_AT) {
      this.paused = true;
      this.pause(true);
    }
  }

  /**
   * Hand what waits to the inbox, in order. A lane message is read out of its region only once
   * the inbox is empty — so a receiver is served at once, but a burst is copied out as the
   * application takes it, into memory the previous results may have given back — and then
   * straight into a waiting recvBytesInto's buffer when there is one.
   */
  private drain(outsideDecoder: boolean): void {
    while (this.open && this.reading === null && this.held.length > 0) {
      const item = this.held[0]!;
      if (item instanceof Uint8Array) {
        this.held.shift();
        this.heldBytes -= item.byteLength + HELD_OVERHEAD;
        this.open = this.inbox.frame(item);
      } else if (typeof item === "function") {
        this.held.shift();
        item();
      } else {
        if (!this.eager && !this.inbox.empty) break; // the inbox's emptied hook comes back here
        if (!this.eager && !this.inbox.waiting && item !== this.graceOver) {
          this.grace(item);
          break;
        }
        this.graceOver = null;
        this.held.shift();
        this.read(item);
      }
    }
    if (!this.open) {
      this.held = [];
      this.heldBytes = 0;
    }
    if (this.paused && this.heldBytes < RESUME_AT) {
      this.paused = false;
      this.pause(false);
    }
    // Inside the decoder, it settles the inbox once the chunk is done.
    if (outsideDecoder) this.inbox.settle();
    this.checkRetired();
  }

  private read(message: IncomingMessage): void {
    // As on the socket: a body longer than the waiting receive's maxlength is refused unread.
    if (!this.inbox.begin(message.length)) {
      message.discard();
      this.open = false;
      return;
    }
    const target = this.inbox.destination(message.length);
    this.reading = message;
    const done = (error: Error | null, bytes: Uint8Array): void => {
      if (this.reading !== message) return;
      this.reading = null;
      if (error) {
        this.open = false;
        this.inbox.finish(error);
      } else this.open = this.inbox.frame(bytes);
      this.drain(true);
    };
    if (target) message.readInto(target, 0, (error) => done(error, target));
    else message.read(done);
  }

  private readonly resume = (): void => this.drain(true);

  /**
   * No receive waits for `message`: give the application one turn to ask for it before it is
   * read into a buffer of its own. A recvBytesInto loop asks for the next message a few
   * microtasks after the last one was handed over — often after the next message was announced
   * (its pieces come while this side copies the previous one) — and the message then goes
   * straight into its buffer instead of through a buffer of its own (a third copy).
   */
  private grace(message: IncomingMessage): void {
    if (this.graceFor === message) return;
    this.graceFor = message;
    setImmediate(() => {
      if (this.graceFor === message) this.graceFor = null;
      if (this.held[0] !== message) return;
      this.graceOver = message;
      this.drain(true);
    });
  }

  private graceFor: IncomingMessage | null = null;
  private graceOver: IncomingMessage | null = null;

  // ---- ending ----

  /** The socket is gone or failed: sends waiting for room fail with `error`. */
  fail(error: Error): void {
    if (!this.failure) this.failure = error;
    for (const send of this.sends.splice(0)) send.reject(this.failure);
    for (const send of this.settling.splice(0)) send.reject(this.failure);
    this.checkRetired();
  }

  /** Unmap and close everything of the lane (the connection closed). */
  close(): void {
    const closed = new OSError("handle is closed", "HANDLE_CLOSED");
    this.fail(closed);
    this.reading = null;
    this.held = [];
    this.heldBytes = 0;
    this.lane.close(closed);
    this.cleanup();
    // A move that waited for the retirement goes on, and finds the connection closed.
    if (this.retirement && !this.retired) {
      this.retired = true;
      this.retirement.resolve();
    }
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
