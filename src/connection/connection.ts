// Python's multiprocessing.connection.Connection over a Bun socket:
//   socket (socket/transport.ts) → frames (frames/decoder.ts, wasm) → messages (messages/inbox.ts)
//   → objects (./reduction.ts, serializers/)
// and back through messages/outbox.ts and frames/encoder.ts (docs/internals.md walks it). Every
// method that returns a promise reports errors by rejecting; synchronous members throw.
import { fstatSync } from "node:fs";
import { BufferTooShort, EOFError, OSError } from "../errors.ts";
import { unexpectedChallenge } from "../endpoints/handshake.ts";
import { FrameDecoder } from "../frames/decoder.ts";
import { Inbox, type Receiver } from "../messages/inbox.ts";
import { Outbox, RESOLVED } from "../messages/outbox.ts";
import { openDescriptor, type LinkedSocket, type SocketLink } from "../socket/transport.ts";
import { brokenPipe, closeFd, isOpen, osError, readable as fdReadable } from "../os/libc.ts";
import { resolveSerializer, type SerializerName } from "../serializers/index.ts";
import { unsendable, type Serializer } from "../serializers/serializer.ts";
import { ObjectCodec, type Carrier, type Leaving } from "./reduction.ts";
import { waitable, type Readiness } from "./waitable.ts";

export interface ConnectionOptions<T = unknown> {
  /** How send()/recv() turn objects into bytes (default "structured"). */
  serializer?: SerializerName | Serializer<T>;
}

export interface FdConnectionOptions<T = unknown> extends ConnectionOptions<T> {
  readable?: boolean;
  writable?: boolean;
}

export type BytesLike = ArrayBufferView | ArrayBuffer;

/** What a reducer sees of `conn` when it travels inside a message (tests look through it too). */
export let leavingOf: (conn: Connection<unknown>) => Leaving;

const noop = (): void => {};
const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Connection<T = unknown> implements AsyncIterable<T>, Disposable, AsyncDisposable {
  private fd: number;
  private socket: LinkedSocket | null = null;
  private readonly serializer: Serializer<T>;
  private readonly objects: ObjectCodec<T>;
  private readonly decoder: FrameDecoder;
  private readonly inbox: Inbox;
  private outbox: Outbox | null = null;
  private isClosed = false;
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
      (paused) => (paused ? this.socket?.pause() : this.socket?.resume()),
      () => this.stopReading(),
    );
    this.decoder = new FrameDecoder(this.inbox);
    this.objects = new ObjectCodec(this.serializer, this.carrier());
  }

  /** Wrap an inherited or raw socket descriptor (e.g. a `Bun.spawn` stdio slot). An invalid fd throws. */
  static fromFd<T = unknown>(fd: number, options: FdConnectionOptions<T> = {}): Connection<T> {
    checkDescriptor(fd);
    return new Connection<T>(fd, options);
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
      return this.sendFrame(this.objects.dumps(obj));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Send `size` bytes of `buf` from byte `offset` as one message. */
  sendBytes(buf: BytesLike, offset = 0, size?: number): Promise<void> {
    try {
      this.checkWritable();
      return this.sendFrame(byteRange(buf, offset, size));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private sendFrame(body: Uint8Array): Promise<void> {
    const outbox = this.outbox ?? this.openOutbox();
    const sent = outbox.send(body);
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
    return this.receive(Infinity, (body, resolve) => resolve(this.loads(body)));
  }

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
    return this.receive(limit, (body, resolve) => resolve(body));
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
    // A large message that starts arriving while this receive waits is written in place.
    const into = (length: number): Uint8Array | undefined =>
      offset + length <= target.byteLength ? target.subarray(offset, offset + length) : undefined;
    return this.receive(
      Infinity,
      (body, resolve, reject) => {
        if (offset + body.byteLength > target.byteLength) return reject(new BufferTooShort(body));
        if (body.buffer !== target.buffer || body.byteOffset !== target.byteOffset + offset) target.set(body, offset);
        resolve(body.byteLength);
      },
      into,
    );
  }

  private receive<R>(
    maxlength: number,
    take: (body: Uint8Array, resolve: (value: R | PromiseLike<R>) => void, reject: (error: Error) => void) => void,
    into?: (length: number) => Uint8Array | undefined,
  ): Promise<R> {
    try {
      this.checkReadable();
      this.start();
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<R>((resolve, reject) => {
      const receiver: Receiver = {
        maxlength,
        deliver: (body) => {
          try {
            take(body, resolve, reject);
          } catch (error) {
            reject(error);
          }
        },
        fail: reject,
        into,
      };
      this.inbox.receive(receiver);
    });
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

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    while (true) {
      try {
        yield await this.recv();
      } catch (error) {
        if (error instanceof EOFError && this.inbox.atEof) return;
        throw error;
      }
    }
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
    else if (error) reason = socketError(error);
    this.inbox.finish(reason);
    this.outbox?.fail(brokenPipe());
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
  }

  private leaving(): Leaving {
    return {
      connection: this as Connection<unknown>,
      unread: () => ({ fd: this.inbox.ended ? -1 : this.fd, messages: this.inbox.peek(), partial: this.decoder.pending() }),
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
    return this.socket;
  }

  private openOutbox(): Outbox {
    const socket = this.start();
    this.outbox = new Outbox(socket, () => this.fd);
    return this.outbox;
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
