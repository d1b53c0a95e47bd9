// Python's multiprocessing.connection.Connection over a Bun socket:
//   socket (socket/transport.ts) → frames (frames/decoder.ts, wasm) → messages (messages/inbox.ts)
//   → objects (./reduction.ts, serializers/)
// and back through messages/outbox.ts and frames/encoder.ts (docs/internals.md walks it). Every
// method that returns a promise reports errors by rejecting; synchronous members throw.
import { fstatSync } from "node:fs";
import { BufferTooShort, EOFError, OSError } from "../errors.ts";
import { unexpectedChallenge } from "../endpoints/handshake.ts";
import { FrameDecoder } from "../frames/decoder.ts";
import { messageBuffer } from "../lane/buffers.ts";
import { resultPool } from "../lane/pool.ts";
import { Inbox, type Receiver } from "../messages/inbox.ts";
import { Outbox, RESOLVED } from "../messages/outbox.ts";
import { openDescriptor, type LinkedSocket, type SocketLink } from "../socket/transport.ts";
import { brokenPipe, closeFd, isOpen, osError, readable as fdReadable } from "../os/libc.ts";
import { resolveSerializer, type SerializerName } from "../serializers/index.ts";
import { unsendable, type Serializer } from "../serializers/serializer.ts";
import { ObjectCodec, type Carrier, type Leaving } from "./reduction.ts";
import { waitable, type Readiness } from "./waitable.ts";
import { LaneLink, RetireFirst, laneSupported, sharedMemoryOption, type LaneStart } from "./lane-link.ts";
import { mark } from "./lane-markers.ts";
import { isUnixStream } from "../os/scm-rights.ts";

export interface ConnectionOptions<T = unknown> {
  /** How send()/recv() turn objects into bytes (default "structured"). */
  serializer?: SerializerName | Serializer<T>;
}

export interface FdConnectionOptions<T = unknown> extends ConnectionOptions<T> {
  readable?: boolean;
  writable?: boolean;
}

export type BytesLike = ArrayBufferView | ArrayBuffer;

type Take<R> = (body: Uint8Array, resolve: (value: R | PromiseLike<R>) => void, reject: (error: Error) => void) => void;

/** A receive waiting in the inbox: one object per receive, no closure per message. */
class Waiting<R> implements Receiver {
  resolve!: (value: R | PromiseLike<R>) => void;
  reject!: (error: Error) => void;
  constructor(
    readonly maxlength: number,
    private readonly take: Take<R>,
    readonly into: ((length: number) => Uint8Array | undefined) | undefined,
  ) {}
  deliver(body: Uint8Array): void {
    try {
      this.take(body, this.resolve, this.reject);
    } catch (error) {
      this.reject(error as Error);
    }
  }
  fail(error: Error): void {
    this.reject(error);
  }
}

const giveBody: Take<Uint8Array> = (body, resolve) => resolve(body);

/** What a reducer sees of `conn` when it travels inside a message (tests look through it too). */
export let leavingOf: (conn: Connection<unknown>) => Leaving;
/**
 * Give `conn` the shared-memory lane (Pipe, spawn, parentConnection: they know how the peer
 * learns of it; docs/large-messages.md, "Negotiation"). Nothing happens where the lane cannot
 * work (not Linux, a one-way connection, one already in use). Returns whether it did.
 */
export let useLane: (conn: Connection<unknown>, start: LaneStart) => boolean;
/** Give `conn` the lane if the other end of its unix socket has it on too (Listener/Client without an authkey). */
export let useMarkedLane: (conn: Connection<unknown>) => void;

const noop = (): void => {};
/** The method that refs or unrefs a connection's socket; not part of the public API. */
export const keepAlive: unique symbol = Symbol("mpconn.keepAlive");
/** pauseFor() callers. */
const INBOX = 1;
const LANE = 2;
const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Connection<T = unknown> implements AsyncIterable<T>, Disposable, AsyncDisposable {
  private fd: number;
  private socket: LinkedSocket | null = null;
  private readonly serializer: Serializer<T>;
  private readonly objects: ObjectCodec<T>;
  private decoder: FrameDecoder;
  private readonly inbox: Inbox;
  private outbox: Outbox | null = null;
  /** The shared-memory lane, when this connection has one (registered by useLane). */
  private lane: LaneLink | null = null;
  private isClosed = false;
  /** Sends wait behind this while a connection they carry retires its lane (see sendObject). */
  private behind: Promise<void> | null = null;
  /** Who asked to stop reading the socket: the inbox, the lane (bits). */
  private pausedBy = 0;
  /** The socket keeps the process alive (see [keepAlive]); applied when the socket opens. */
  private referenced = true;
  private canRead: boolean;
  private canWrite: boolean;

  /** Wrap a connected stream socket descriptor, as Python's `Connection(handle, readable, writable)`. */
  constructor(fd: number, options: FdConnectionOptions<T> = {}) {
    const { readable = true, writable = true } = options;
    if (!readable && !writable) throw new TypeError("at least one of `readable` and `writable` must be true");
    this.serializer = resolveSerializer(options.serializer);
    this.fd = fd;
    this.canRead = readable;
    this.canWrite = writable;
    this.inbox = new Inbox(
      (paused) => this.pauseFor(INBOX, paused),
      () => this.stopReading(),
    );
    this.decoder = new FrameDecoder(this.inbox, bodyBuffer);
    this.objects = new ObjectCodec(this.serializer, this.carrier());
  }

  /** Wrap an inherited or raw socket descriptor (e.g. a `Bun.spawn` stdio slot). An invalid fd throws. */
  static fromFd<T = unknown>(fd: number, options: FdConnectionOptions<T> & { sharedMemory?: boolean } = {}): Connection<T> {
    const lane = sharedMemoryOption(options.sharedMemory, false);
    checkDescriptor(fd);
    const conn = new Connection<T>(fd, options);
    // The peer's end shows it speaks the lane through a marker the kernel lets us find
    // (src/connection/lane-markers.ts); without one, nothing of the lane is ever written.
    if (lane) conn.useMarkedLane();
    return conn;
  }

  /** The lane, when the other end of this unix socket shows it has it on (src/connection/lane-markers.ts). */
  private useMarkedLane(): void {
    if (!laneSupported || !this.canRead || !this.canWrite || this.fd < 0 || !isUnixStream(this.fd)) return;
    const marker = mark(this.fd);
    if (marker) this.useLane(marker.peerSpeaksLane ? "hello" : "listen", () => marker.remove());
  }

  /**
   * Whether this connection's socket keeps the process alive (Bun's ref/unref; on by default, as
   * for any socket). The pool lets its idle workers' connections go (src/processes/pool/).
   */
  [keepAlive](on: boolean): void {
    this.referenced = on;
    if (on) this.socket?.ref();
    else this.socket?.unref();
  }

  /** @internal A connection over a socket Bun already opened (Listener, Client). */
  static adopt<T>(socket: LinkedSocket, options: ConnectionOptions<T> = {}): Connection<T> {
    const conn = new Connection<T>((socket as unknown as { fd?: number }).fd ?? -1, options);
    conn.socket = socket;
    socket.data = conn.link;
    return conn;
  }

  get closed(): boolean {
    return this.isClosed;
  }
  get readable(): boolean {
    return this.canRead;
  }
  get writable(): boolean {
    return this.canWrite;
  }

  /** The OS file descriptor. */
  fileno(): number {
    if (this.isClosed) throw new OSError("handle is closed", "HANDLE_CLOSED");
    return this.fd;
  }

  // ---- sending ----------------------------------------------------------------------

  /** Serialize `obj` and send it as one message. */
  send(obj: T): Promise<void> {
    try {
      this.checkWritable();
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.behind) return this.queueBehind(() => this.sendObject(obj));
    return this.sendObject(obj);
  }

  private sendObject(obj: T): Promise<void> {
    try {
      return this.sendFrame(this.objects.dumps(obj));
    } catch (error) {
      // A connection inside with the shared-memory lane: encode again once it is retired; the
      // sends made meanwhile wait behind this one, so the order stays the caller's.
      if (error instanceof RetireFirst) return this.queueBehind(() => this.sendObject(obj), error.until);
      return Promise.reject(error);
    }
  }

  /** Run `task` after `first` (by default, the sends already waiting), and make later sends wait for it. */
  private queueBehind(task: () => Promise<void>, first: Promise<void> | null = this.behind): Promise<void> {
    const run = (first ?? RESOLVED).then(task);
    const tail = run.then(noop, noop);
    this.behind = tail;
    void tail.then(() => {
      if (this.behind === tail) this.behind = null;
    });
    run.catch(noop);
    return run;
  }

  /** Send `size` bytes of `buf` from byte `offset` as one message. */
  sendBytes(buf: BytesLike, offset = 0, size?: number): Promise<void> {
    try {
      this.checkWritable();
      if (this.behind) {
        // Taken now, as every send's bytes are: the caller may reuse its buffer at once.
        const copy = byteRange(buf, offset, size).slice();
        return this.queueBehind(() => this.sendFrame(copy));
      }
      return this.sendFrame(byteRange(buf, offset, size));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private sendFrame(body: Uint8Array): Promise<void> {
    const outbox = this.outbox ?? this.openOutbox();
    const sent = this.lane?.send(body) ?? outbox.send(body);
    // A failure nobody awaits must not become an unhandled rejection; the caller who
    // awaits still sees it, and the next call reports it too.
    if (sent !== RESOLVED) sent.catch(noop);
    return sent;
  }

  // ---- receiving --------------------------------------------------------------------

  /** The next message, deserialized. EOFError once the peer closed and nothing is left. */
  recv(): Promise<T> {
    if (this.isClosed || !this.canRead) return this.receive(0, noop);
    const body = this.inbox.takeNow(Infinity);
    if (body !== undefined) {
      try {
        return Promise.resolve(this.loads(body));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    // loads() is a promise when the message brings connections; resolve() adopts it.
    return this.receive(Infinity, this.giveObject);
  }

  private readonly giveObject: Take<T> = (body, resolve) => resolve(this.loads(body));

  /** A Listener's authkey challenge where a message was expected fails as the AuthenticationError it is. */
  private loads(body: Uint8Array): T | Promise<T> {
    try {
      return this.objects.loads(body);
    } catch (error) {
      throw unexpectedChallenge(body, error) ?? error;
    }
  }

  /** The next message's bytes. Longer than `maxlength`: OSError("bad message length"), and the connection stops being readable. */
  recvBytes(maxlength?: number): Promise<Uint8Array> {
    if (this.isClosed || !this.canRead) return this.receive(0, noop);
    if (maxlength !== undefined && maxlength !== null) {
      if (typeof maxlength !== "number" || Number.isNaN(maxlength)) return Promise.reject(new TypeError("maxlength must be a number"));
      if (maxlength < 0) return Promise.reject(new RangeError(`negative maxlength: ${maxlength}`));
    }
    const limit = maxlength ?? Infinity;
    const body = this.inbox.takeNow(limit);
    if (body !== undefined) return Promise.resolve(body);
    return this.receive(limit, giveBody);
  }

  /** Copy the next message into `buf` at byte `offset`; returns its length. Too short: BufferTooShort (the message is consumed). */
  recvBytesInto(buf: BytesLike, offset = 0): Promise<number> {
    let target: Uint8Array;
    try {
      this.checkReadable();
      target = asBytes(buf);
      if (!Number.isInteger(offset)) throw new TypeError("offset must be an integer");
      if (offset < 0) throw new RangeError(`negative offset: ${offset}`);
      if (offset > target.byteLength) throw new RangeError(`offset too large: ${offset} > buffer length ${target.byteLength}`);
    } catch (error) {
      return Promise.reject(error);
    }
    // A large message that starts arriving while this receive waits is written in place, and
    // arrives as the very view handed out here (a small body is a copy of its own: asking for
    // its `buffer` would cost more than the copy).
    let placed: Uint8Array | undefined;
    const into = (length: number): Uint8Array | undefined =>
      (placed = offset + length <= target.byteLength ? target.subarray(offset, offset + length) : undefined);
    return this.receive(
      Infinity,
      (body, resolve, reject) => {
        if (offset + body.byteLength > target.byteLength) return reject(new BufferTooShort(body));
        if (body !== placed) target.set(body, offset);
        resolve(body.byteLength);
      },
      into,
    );
  }

  private receive<R>(
    maxlength: number,
    take: Take<R>,
    into?: (length: number) => Uint8Array | undefined,
  ): Promise<R> {
    try {
      this.checkReadable();
      this.start();
    } catch (error) {
      return Promise.reject(error);
    }
    const waiting = new Waiting<R>(maxlength, take, into);
    const promise = new Promise<R>((resolve, reject) => {
      waiting.resolve = resolve;
      waiting.reject = reject;
    });
    this.inbox.receive(waiting);
    return promise;
  }

  /**
   * Whether a message (or EOF) can be received without waiting. `timeout` in seconds;
   * omitted, 0 or negative: do not wait; null: wait forever.
   */
  async poll(timeout?: number | null): Promise<boolean> {
    if (timeout !== undefined && timeout !== null && typeof timeout !== "number") {
      throw new TypeError(`timeout must be a number or null, not ${typeof timeout}`);
    }
    this.checkReadable();
    this.start();
    if (this.inbox.ready) return true;
    if (timeout === undefined || Number.isNaN(timeout) || (timeout !== null && timeout <= 0)) return this.settle();
    return new Promise<boolean>((resolve) => {
      let timer: Timer | undefined;
      const stop = this.inbox.watch(() => {
        if (!this.inbox.ready && !this.isClosed) return;
        stop();
        clearTimeout(timer);
        resolve(this.inbox.ready);
      });
      if (timeout !== null) {
        timer = setTimeout(() => {
          stop();
          resolve(this.inbox.ready);
        }, timeout * 1000);
      }
    });
  }

  /**
   * poll(0): let the event loop deliver what is already on its way (our own batched
   * writes go out on the next macrotask; Bun reads a readable socket on the next loop
   * turn) before answering, so "sent, then polled" answers true as it does in Python.
   */
  private async settle(): Promise<boolean> {
    await immediate();
    for (let turns = 0; !this.inbox.ready && !this.isClosed && turns < 100; turns++) {
      if (!this.socket || !fdReadable(this.fd)) break;
      await immediate();
    }
    return this.inbox.ready;
  }

  /** For wait(): a message or EOF can be received without waiting. */
  [waitable](): Readiness {
    return {
      check: () => this.checkReadable(),
      ready: () => this.inbox.ready,
      watch: (onChange) => {
        this.checkReadable();
        this.start();
        return this.inbox.watch(onChange);
      },
      settle: () => {
        this.start();
        return this.settle();
      },
      describe: () => `Connection (fd ${this.isClosed ? "closed" : this.fd})`,
    };
  }

  /**
   * `for await`: each step is one receive. Not an async generator: a generator costs several
   * promises per message (its own next(), the await, the yield); a queued message here costs
   * one. Ends at a clean EOF; any other error is thrown.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    let finished = false;
    const end: IteratorReturnResult<undefined> = { value: undefined, done: true };
    const ended = (error: unknown): IteratorResult<T> => {
      finished = true;
      if (error instanceof EOFError && this.inbox.atEof) return end;
      throw error;
    };
    const step = (value: T): IteratorResult<T> => ({ value, done: false });
    return {
      next: (): Promise<IteratorResult<T>> => {
        if (finished) return Promise.resolve(end);
        if (!this.isClosed && this.canRead) {
          const body = this.inbox.takeNow(Infinity);
          if (body !== undefined) {
            try {
              const value = this.loads(body);
              if (!(value instanceof Promise)) return Promise.resolve(step(value));
              return value.then(step, ended);
            } catch (error) {
              finished = true;
              return Promise.reject(error);
            }
          }
        }
        return this.recv().then(step, ended);
      },
      return: (): Promise<IteratorResult<T>> => {
        finished = true;
        return Promise.resolve(end);
      },
    };
  }

  // ---- closing ----------------------------------------------------------------------

  /** Close this end. Idempotent; bytes already sent are still delivered. */
  close(): void {
    void this.shut();
  }

  /** close(); resolves once the descriptor is closed (after pending writes went out). */
  private shut(): Promise<void> {
    if (this.isClosed) return RESOLVED;
    this.isClosed = true;
    this.inbox.cancel(new OSError("handle is closed", "HANDLE_CLOSED"));
    this.decoder.dispose();
    this.lane?.close();
    const socket = this.socket;
    if (!socket) {
      if (this.fd >= 0) closeFd(this.fd);
      return RESOLVED;
    }
    const outbox = this.outbox;
    if (!outbox || outbox.pending === 0) {
      socket.end();
      return RESOLVED;
    }
    return outbox.whenIdle().then(() => {
      socket.end();
    });
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  // ---- the socket's side --------------------------------------------------------------

  /** What the socket reports to (kept off the public surface). */
  private readonly link: SocketLink = {
    onData: (chunk) => this.decoder.push(chunk),
    onDrain: () => this.outbox?.flush(),
    onClose: (error) => this.peerGone(error),
    onFault: (error) => this.fault(error),
  };

  private peerGone(error?: Error): void {
    if (this.isClosed) return;
    const truncated = this.decoder.eof() === "truncated";
    let reason: Error | null = null;
    if (truncated) reason = new OSError("got end of file during message", "MESSAGE_TRUNCATED");
    // With the lane, this end writes RELEASE notices while it reads: a peer that closed with one
    // of them still unread resets the socket. Between messages, that is the peer's clean close.
    else if (error && !(this.lane && socketError(error).code === "ECONNRESET")) reason = socketError(error);
    if (this.lane) this.lane.finish(reason);
    else this.inbox.finish(reason);
    this.outbox?.fail(brokenPipe());
    this.lane?.fail(brokenPipe());
  }

  /** A bug of ours surfaced in a socket callback: every read and write reports it from now on. */
  private fault(error: unknown): boolean {
    if (this.isClosed) return false;
    const failure = error instanceof Error ? error : new Error(String(error));
    this.decoder.dispose();
    this.socket?.pause();
    this.inbox.fault(failure);
    (this.outbox ?? this.openOutbox()).fail(failure);
    return true;
  }

  // ---- travelling inside messages (src/connection/reduction.ts) ----------------------

  /** What a reducer (src/processes/fdpass) may do with this connection and those in its messages. */
  private carrier(): Carrier {
    return {
      connection: this as Connection<unknown>,
      leaving: (obj) => (obj instanceof Connection ? obj.leaving() : undefined),
      arriving: (readable, writable) => {
        // It reads with the serializer of the connection it arrived on.
        const conn = new Connection<unknown>(-1, { readable, writable, serializer: this.serializer as Serializer<unknown> });
        return { connection: conn, attach: (fd, unread) => conn.attach(fd, unread) };
      },
    };
  }

  static {
    leavingOf = (conn) => conn.leaving();
    useLane = (conn, start) => conn.useLane(start);
    useMarkedLane = (conn) => conn.useMarkedLane();
  }

  private useLane(start: LaneStart, cleanup?: () => void): boolean {
    if (!laneSupported || this.lane || !this.canRead || !this.canWrite || this.isClosed) return false;
    // Nothing was decoded yet (the socket is read from the next turn on): swap the decoder for one that feeds the lane.
    this.decoder.dispose();
    let link!: LaneLink;
    this.decoder = new FrameDecoder({
      frame: (body) => link.frame(body),
      frames: (buffer, base, table, count) => link.frames(buffer, base, table, count),
      begin: (length) => link.begin(length),
      destination: (length) => link.destination(length),
      invalid: (length) => link.invalid(length),
      settle: () => link.settle(),
    }, bodyBuffer);
    this.decoder.notices = (body) => link.notice(body);
    link = new LaneLink(this.inbox, () => this.outbox ?? this.openOutbox(), (paused) => this.pauseFor(LANE, paused), start, cleanup);
    this.lane = link;
    return true;
  }

  private leaving(): Leaving {
    return {
      connection: this as Connection<unknown>,
      unread: () => {
        // The lane does not move: retire it first (the sending connection waits, then encodes again).
        if (this.lane && !this.lane.retired) throw new RetireFirst(this.lane.retire());
        return { fd: this.inbox.ended ? -1 : this.fd, messages: this.inbox.peek(), partial: this.decoder.pending() };
      },
      leave: () => {
        this.socket?.pause();
        return this.shut();
      },
    };
  }

  private attach(fd: number, unread: Uint8Array): void {
    this.fd = fd;
    if (unread.byteLength > 0) this.decoder.push(unread);
  }

  /** Met by a serializer that had no hook for it (a user's wrapper that drops them, or json/pickle). */
  get [unsendable](): string {
    return "a Connection can only be sent with the structured serializer, or one that passes the hooks it is given on to structured";
  }

  /** JSON cannot carry a live connection: refuse, rather than send its fields. */
  toJSON(): never {
    throw new TypeError(this[unsendable]);
  }

  // ---- helpers ----------------------------------------------------------------------

  /** Start using the descriptor: Bun takes it over and begins reading. */
  private start(): LinkedSocket {
    if (this.socket) return this.socket;
    if (!isOpen(this.fd)) throw osError("EBADF", String(this.fd));
    this.socket = openDescriptor(this.fd, this.link);
    if (!this.referenced) this.socket.unref();
    return this.socket;
  }

  private openOutbox(): Outbox {
    const socket = this.start();
    this.outbox = new Outbox(socket, () => this.fd);
    return this.outbox;
  }

  /** Reading pauses while the inbox or the lane asks it to. */
  private pauseFor(who: number, paused: boolean): void {
    const before = this.pausedBy;
    this.pausedBy = paused ? before | who : before & ~who;
    if (before === 0 && this.pausedBy !== 0) this.socket?.pause();
    else if (before !== 0 && this.pausedBy === 0) this.socket?.resume();
  }

  /** After "bad message length", as CPython: a duplex end becomes write-only, a read-only end closes. */
  private stopReading(): void {
    if (!this.canWrite) return this.close();
    this.canRead = false;
    // The peer may go on writing until the socket's buffers fill, as with a Python reader that stopped.
    this.socket?.pause();
    this.inbox.cancel(new OSError("connection is write-only", "WRITE_ONLY"));
  }

  private checkWritable(): void {
    if (this.isClosed) throw new OSError("handle is closed", "HANDLE_CLOSED");
    if (!this.canWrite) throw new OSError("connection is read-only", "READ_ONLY");
  }

  private checkReadable(): void {
    if (this.isClosed) throw new OSError("handle is closed", "HANDLE_CLOSED");
    if (!this.canRead) throw new OSError("connection is write-only", "WRITE_ONLY");
  }
}

function checkDescriptor(fd: number): void {
  if (typeof fd !== "number" || !Number.isInteger(fd)) throw new TypeError(`fd must be an integer, not ${typeof fd}`);
  if (fd < 0) throw new RangeError(`invalid handle: ${fd}`);
  let socket = false;
  try {
    socket = fstatSync(fd).isSocket();
  } catch {
    throw osError("EBADF", String(fd));
  }
  if (!socket) throw new OSError(`fd ${fd} is not a socket (mpconn connections need a stream socket)`, "ENOTSOCK");
}

/** A socket failure Bun reported, as Python words it; "EIO" when Bun gave no errno name. */
function socketError(error: Error): OSError {
  const code = (error as { code?: unknown }).code;
  return osError(typeof code === "string" ? code : "EIO", undefined, { cause: error, fallback: error.message });
}

/**
 * The buffer a body received across chunks is assembled in: the lane's message memory
 * (src/lane/buffers.ts), warm pooled slots from 1 MiB, so that a huge body reuses the slot of
 * the last one the user dropped instead of making fresh pages resident beside it. Without the
 * pool, a body over 64 MiB is an ordinary buffer (measured with huge-page-advised fresh memory
 * instead: a 256 MiB stream's receiver peaked at 3.6× the message, against 2.1× with this).
 */
function bodyBuffer(size: number): Uint8Array {
  return size > FRESH_FROM && resultPool() === null ? new Uint8Array(size) : messageBuffer(size);
}
const FRESH_FROM = 64 << 20;

/** A Uint8Array over the bytes of any ArrayBufferView or ArrayBuffer. */
export function asBytes(buf: BytesLike): Uint8Array {
  if (buf instanceof Uint8Array) return buf;
  if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf instanceof ArrayBuffer || (buf as unknown) instanceof SharedArrayBuffer) return new Uint8Array(buf as ArrayBuffer);
  throw new TypeError(`a bytes-like object is required, not '${buf === null ? "null" : typeof buf}'`);
}

/** Python's send_bytes slicing rules, in bytes, with its messages. */
function byteRange(buf: BytesLike, offset: number, size: number | undefined): Uint8Array {
  const bytes = asBytes(buf);
  const n = bytes.byteLength;
  if (!Number.isInteger(offset)) throw new TypeError("offset must be an integer");
  if (offset < 0) throw new RangeError(`offset is negative: ${offset}`);
  if (n < offset) throw new RangeError(`buffer length < offset: ${n} < ${offset}`);
  if (size === undefined || size === null) size = n - offset;
  else if (!Number.isInteger(size)) throw new TypeError("size must be an integer");
  else if (size < 0) throw new RangeError(`size is negative: ${size}`);
  else if (offset + size > n) throw new RangeError(`buffer length < offset + size: ${n} < ${offset} + ${size}`);
  return offset === 0 && size === n ? bytes : bytes.subarray(offset, offset + size);
}
