// Python's multiprocessing.connection.Connection over a Bun socket:
//   socket (transport.ts) → frames (frames.ts, wasm) → messages (inbox.ts) → objects (serializers)
// and back through outbox.ts. Every method that returns a promise reports errors by
// rejecting; synchronous members throw.
import { fstatSync } from "node:fs";
import { BufferTooShort, EOFError, OSError } from "../errors.ts";
import { FrameDecoder } from "../frames/decoder.ts";
import { Inbox, type Receiver } from "../messages/inbox.ts";
import { Outbox, RESOLVED } from "../messages/outbox.ts";
import { openDescriptor, type LinkedSocket, type SocketLink } from "../socket/transport.ts";
import { closeFd, isOpen, readable as fdReadable } from "../os/libc.ts";
import { resolveSerializer, type SerializerName } from "../serializers/index.ts";
import type { Serializer } from "../serializers/serializer.ts";
import { dumps, loads } from "../processes/fdpass/transfer.ts";

export interface ConnectionOptions<T = unknown> {
  /** How send()/recv() turn objects into bytes (default "structured"). */
  serializer?: SerializerName | Serializer<T>;
}

export interface FdConnectionOptions<T = unknown> extends ConnectionOptions<T> {
  readable?: boolean;
  writable?: boolean;
}

export type BytesLike = ArrayBufferView | ArrayBuffer;

const noop = (): void => {};
const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Connection<T = unknown> implements SocketLink, AsyncIterable<T>, Disposable, AsyncDisposable {
  private fd: number;
  private socket: LinkedSocket | null = null;
  private readonly serializer: Serializer<T>;
  private readonly decoder: FrameDecoder;
  private readonly inbox: Inbox;
  private outbox: Outbox | null = null;
  private isClosed = false;
  private canRead: boolean;
  private canWrite: boolean;
  private reachedEof = false;

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
    socket.data = conn;
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
    if (this.isClosed) throw new OSError("handle is closed");
    return this.fd;
  }

  // ---- sending ----------------------------------------------------------------------

  /** Serialize `obj` and send it as one message. */
  send(obj: T): Promise<void> {
    try {
      this.checkWritable();
      return this.sendFrame(dumps(this.serializer, obj, this));
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
        return Promise.resolve(loads(this.serializer, body, this));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    // loads() is a promise when the message brings connections; resolve() adopts it.
    return this.receive(Infinity, (body, resolve) => resolve(loads(this.serializer, body, this) as T));
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
    return this.receive(Infinity, (body, resolve, reject) => {
      if (offset + body.byteLength > target.byteLength) return reject(new BufferTooShort(body));
      target.set(body, offset);
      resolve(body.byteLength);
    });
  }

  private receive<R>(
    maxlength: number,
    take: (body: Uint8Array, resolve: (value: R) => void, reject: (error: Error) => void) => void,
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
        fail: (error) => {
          if (error instanceof EOFError && error.args.length === 0) this.reachedEof = true;
          reject(error);
        },
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

  /** @internal For wait(): whether a receive would not wait, and a way to hear when it would not. */
  get ready(): boolean {
    return this.inbox.ready;
  }
  /** @internal */
  watch(watcher: () => void): () => void {
    this.checkReadable();
    this.start();
    return this.inbox.watch(watcher);
  }
  /** @internal */
  settleForWait(): Promise<boolean> {
    this.start();
    return this.settle();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    while (true) {
      try {
        yield await this.recv();
      } catch (error) {
        if (this.reachedEof && error instanceof EOFError) return;
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
    this.inbox.cancel(new OSError("handle is closed"));
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

  // ---- the socket's side (SocketLink) -----------------------------------------------

  /** @internal */
  onData(chunk: Uint8Array): void {
    this.decoder.push(chunk);
  }

  /** @internal */
  onDrain(): void {
    this.outbox?.flush();
  }

  /** @internal */
  onClose(error?: Error): void {
    if (this.isClosed) return;
    const truncated = this.decoder.eof() === "truncated";
    let reason: Error | null = null;
    if (truncated) reason = new OSError("got end of file during message");
    else if (error) reason = new OSError(error.message, (error as { code?: string }).code, { cause: error });
    this.inbox.finish(reason);
    this.outbox?.fail(new OSError("[Errno 32] Broken pipe", "EPIPE"));
  }

  // ---- passing connections (src/processes/fdpass/transfer.ts) ----------------------------------

  /**
   * @internal What moving this connection takes along, without taking it: the descriptor
   * (-1 once the stream ended and Bun closed it), the queued messages, and the raw bytes of a
   * frame that had only partly arrived.
   */
  unread(): { fd: number; messages: Uint8Array[]; partial: Uint8Array[] } {
    return { fd: this.inbox.ended ? -1 : this.fd, messages: this.inbox.peek(), partial: this.decoder.pending() };
  }

  /** @internal This connection moved to another process: read nothing more, close; resolves once its writes are out. */
  moveOut(): Promise<void> {
    this.socket?.pause();
    return this.shut();
  }

  /** @internal A connection that arrived from another process: its descriptor, and the bytes that came with it (read first). */
  attach(fd: number, unread: Uint8Array): void {
    this.fd = fd;
    if (unread.byteLength > 0) this.decoder.push(unread);
  }

  /** JSON cannot carry a live connection: refuse, rather than send its fields. */
  toJSON(): never {
    throw new TypeError("a Connection can only be sent with the structured serializer");
  }

  // ---- helpers ----------------------------------------------------------------------

  /** Start using the descriptor: Bun takes it over and begins reading. */
  private start(): LinkedSocket {
    if (this.socket) return this.socket;
    if (!isOpen(this.fd)) throw new OSError(`[Errno 9] Bad file descriptor: ${this.fd}`, "EBADF");
    this.socket = openDescriptor(this.fd, this);
    return this.socket;
  }

  private openOutbox(): Outbox {
    const socket = this.start();
    this.outbox = new Outbox(socket, () => this.fd);
    return this.outbox;
  }

  private stopReading(): void {
    if (this.canWrite) this.canRead = false;
    else this.close();
  }

  private checkWritable(): void {
    if (this.isClosed) throw new OSError("handle is closed");
    if (!this.canWrite) throw new OSError("connection is read-only");
  }

  private checkReadable(): void {
    if (this.isClosed) throw new OSError("handle is closed");
    if (!this.canRead) throw new OSError("connection is write-only");
  }
}

function checkDescriptor(fd: number): void {
  if (typeof fd !== "number" || !Number.isInteger(fd)) throw new TypeError(`fd must be an integer, not ${typeof fd}`);
  if (fd < 0) throw new RangeError(`invalid handle: ${fd}`);
  let socket = false;
  try {
    socket = fstatSync(fd).isSocket();
  } catch {
    throw new OSError(`[Errno 9] Bad file descriptor: ${fd}`, "EBADF");
  }
  if (!socket) throw new OSError(`fd ${fd} is not a socket (mpconn connections need a stream socket)`, "ENOTSOCK");
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
