// Connections inside messages: the glue between Connection.send/recv, the structured codec's
// extension hooks and the descriptor sharer (docs/passing-connections.md).
//
// Sending: the codec asks `replace` about every object; a Connection becomes a Moved record
// (a ticket to fetch a duplicate of its descriptor, its access flags, and the bytes it had
// received but nobody had read). Only when the whole message encoded does the move happen:
// each moved connection stops reading and closes here, and its descriptor becomes fetchable
// once what was written on it has reached the OS. A message that fails to encode moves nothing.
//
// Receiving: `revive` returns a Connection at once (the codec is synchronous), and starts
// fetching its descriptor; recv() resolves only after every fetch of the message landed.
import { Connection } from "../../connection/connection.ts";
import { OSError } from "../../errors.ts";
import { unexpectedChallenge } from "../../endpoints/handshake.ts";
import type { Serializer } from "../../serializers/serializer.ts";
import { structured, type StructuredHooks } from "../../serializers/structured.ts";
import { close, dup, isUnixStream, supported } from "../../os/scm-rights.ts";
import { lstatSync } from "node:fs";
import { basename, dirname } from "node:path";
import { fetchDescriptor, REQUEST_SIZE, share, unshare, type Ticket } from "./sharer.ts";
import { frameHeader } from "../../frames/encoder.ts";
import { closeFd, socketpair } from "../../os/libc.ts";

/** What a connection becomes inside a message. */
interface Moved extends Ticket {
  mpconn: "Connection";
  version: 1;
  readable: boolean;
  writable: boolean;
  /** Received, unread bytes as they came off the wire: queued messages, then any partial frame. */
  unread: Uint8Array;
}

// ---- sending ----------------------------------------------------------------------------

interface Outgoing {
  conn: Connection<unknown>;
  moved: Moved;
  /** Resolves once the sender's copy is closed and its writes are out; then the fetch may go ahead. */
  flushed: (value: unknown) => void;
}

/** The message being encoded: its carrier, and the connections it moves (made by the first). */
let carrier: Connection<unknown> | null = null;
let outgoing: Outgoing[] | null = null;

const sendHooks: StructuredHooks = {
  replace(obj) {
    // The codec offers each object once per message (a second reference reuses the first).
    return obj instanceof Connection ? moveOut(obj as Connection<unknown>) : undefined;
  },
};

/** serializer.dumps(value), moving every Connection inside `value` to the peer of `from`. */
export function dumps<T>(serializer: Serializer<T>, value: T, from: Connection<T>): Uint8Array {
  if (serializer !== structured) return serializer.dumps(value);
  // Saved and restored: a getter read while encoding could itself send a message.
  const outerCarrier = carrier;
  const outerOutgoing = outgoing;
  carrier = from as Connection<unknown>;
  outgoing = null;
  let body: Uint8Array;
  let moving: Outgoing[] | null;
  try {
    body = structured.dumps(value, sendHooks);
  } catch (error) {
    for (const o of (outgoing as Outgoing[] | null) ?? []) unshare(o.moved);
    throw error;
  } finally {
    moving = outgoing as Outgoing[] | null; // (filled by replace, which TypeScript does not see)
    carrier = outerCarrier;
    outgoing = outerOutgoing;
  }
  if (moving) for (const o of moving) o.conn.moveOut().then(o.flushed, o.flushed);
  return body;
}

function moveOut(conn: Connection<unknown>): Moved {
  if (!supported) throw new OSError(`passing connections between processes is only supported on Linux (this is ${process.platform})`, "ENOTSUP");
  if (conn === carrier) throw new TypeError("a connection cannot be sent over itself");
  if (conn.closed) throw new OSError("cannot send a closed connection (handle is closed)", "EBADF");
  if (!isUnixStream(carrier!.fileno())) {
    throw new TypeError("connections can only be sent to a local process, over a unix-socket connection (this one is TCP)");
  }
  const { fd, messages, partial } = conn.unread();
  if (fd >= 0 && !isUnixStream(fd)) {
    throw new TypeError("only unix-socket connections (Pipe, spawn, a unix Listener or Client) can be sent to another process; this one is TCP");
  }
  let flushed!: (value: unknown) => void;
  const ready = new Promise((resolve) => (flushed = resolve));
  // The stream already ended here (Bun closed the socket): the receiver gets a socket whose
  // peer is gone, so it reads the unread messages, then the same end of file.
  const copy = fd >= 0 ? dup(fd) : endedSocket();
  const ticket = share(copy, ready);
  const moved: Moved = {
    mpconn: "Connection",
    version: 1,
    ...ticket,
    readable: conn.readable,
    writable: conn.writable,
    unread: frame(messages, partial),
  };
  (outgoing ??= []).push({ conn, moved, flushed });
  return moved;
}

/** Queued message bodies, framed again, followed by the raw bytes of a partial frame. */
function frame(messages: Uint8Array[], partial: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const body of messages) parts.push(frameHeader(body.byteLength), body);
  parts.push(...partial);
  let size = 0;
  for (const part of parts) size += part.byteLength;
  const bytes = new Uint8Array(size);
  size = 0;
  for (const part of parts) {
    bytes.set(part, size);
    size += part.byteLength;
  }
  return bytes;
}

// ---- receiving --------------------------------------------------------------------------

type Arriving = Array<{ conn: Connection<unknown>; fetch: Promise<void> }>;

/** Connections the message being decoded brought (made by the first), each with its fetch. */
let incoming: Arriving | null = null;
/** The connection the message being decoded came over: only unix sockets may carry connections. */
let carrierOf: Connection<unknown> | null = null;

const receiveHooks: StructuredHooks = {
  revive(value) {
    // Over TCP no sender can share a descriptor with us, so a connection record there is a
    // peer trying to make us contact a local socket it names: refuse it.
    if (!carrierOf || !carrierIsUnix(carrierOf)) throw new TypeError("a connection record arrived over a connection that is not a unix socket; refused");
    const moved = checkMoved(value);
    if (!isSharerPath(moved.address)) {
      throw new TypeError(`a connection record names ${JSON.stringify(moved.address)}, which is not a descriptor sharer of this user; refused`);
    }
    // Handed out now (the codec is synchronous); recv() resolves once the descriptor is in it.
    const conn = new Connection<unknown>(-1, { readable: moved.readable, writable: moved.writable });
    const fetch = fetchDescriptor(moved).then((fd) => {
      if (!isUnixStream(fd)) {
        close(fd);
        throw new OSError("the sending process handed over a descriptor that is not a unix stream socket", "EPROTO");
      }
      conn.attach(fd, moved.unread);
    });
    fetch.catch(noop); // reported through recv()
    (incoming ??= []).push({ conn, fetch });
    return conn;
  },
};

const noop = (): void => {};

function checkMoved(value: unknown): Moved {
  const m = value as Moved | null;
  if (!m || typeof m !== "object" || m.mpconn !== "Connection") {
    throw new TypeError("the message holds an external value that is not a connection");
  }
  if (m.version !== 1) throw new TypeError(`the message holds a connection of format ${m.version}, which this version of mpconn cannot rebuild`);
  const ok =
    typeof m.address === "string" &&
    m.request instanceof Uint8Array &&
    m.request.byteLength === REQUEST_SIZE &&
    m.unread instanceof Uint8Array &&
    typeof m.readable === "boolean" &&
    typeof m.writable === "boolean" &&
    (m.readable || m.writable);
  if (!ok) throw new TypeError("the message holds a malformed connection record");
  return m;
}

/**
 * serializer.loads(body); when the message carries connections, a promise that resolves
 * once each one's descriptor has arrived (rejects, closing them all, if any cannot be had).
 * A Listener's authkey challenge that reached recv() fails as the AuthenticationError it is.
 */
export function loads<T>(serializer: Serializer<T>, body: Uint8Array, carrier: Connection<T>): T | Promise<T> {
  if (serializer !== structured) {
    try {
      return serializer.loads(body);
    } catch (error) {
      throw unexpectedChallenge(body, error) ?? error;
    }
  }
  const outer = incoming;
  const outerCarrier = carrierOf;
  incoming = null;
  carrierOf = carrier as Connection<unknown>;
  let value: T;
  let arriving: Arriving | null;
  try {
    value = structured.loads(body, receiveHooks) as T;
  } catch (error) {
    discard((incoming as Arriving | null) ?? []);
    throw unexpectedChallenge(body, error) ?? error;
  } finally {
    arriving = incoming as Arriving | null; // (filled by revive)
    incoming = outer;
    carrierOf = outerCarrier;
  }
  if (!arriving) return value;
  const all: Arriving = arriving;
  return Promise.allSettled(all.map((a) => a.fetch)).then((results) => {
    const failed = results.find((r) => r.status === "rejected");
    if (!failed) return value;
    for (const a of all) a.conn.close();
    throw failed.reason;
  });
}

/**
 * Whether `path` can be a sharer mpconn made: a `listener-XXXXXXXX` socket in a private (0700)
 * `mpconn-XXXXXX` directory owned by this user (src/endpoints/address.ts makes both). The path comes
 * from the peer, and recv() must contact nothing else (say $SSH_AUTH_SOCK), whoever sent it.
 */
function isSharerPath(path: string): boolean {
  if (!path.startsWith("/") || !/^listener-[a-z0-9_]{8}$/.test(basename(path))) return false;
  try {
    const dir = lstatSync(dirname(path));
    const uid = process.getuid?.() ?? -1;
    return (
      /^mpconn-[A-Za-z0-9_]{6}$/.test(basename(dirname(path))) &&
      dir.isDirectory() &&
      (dir.mode & 0o777) === 0o700 &&
      dir.uid === uid &&
      lstatSync(path).isSocket()
    );
  } catch {
    return false;
  }
}

function carrierIsUnix(carrier: Connection<unknown>): boolean {
  try {
    return isUnixStream(carrier.fileno());
  } catch {
    return false;
  }
}

/** A message that failed to decode: close what its connections fetch. */
function discard(arriving: Arriving): void {
  for (const a of arriving) a.fetch.finally(() => a.conn.close()).catch(noop);
}

/** A socket whose peer is closed: what a connection is once its stream ended. */
function endedSocket(): number {
  const [ours, theirs] = socketpair();
  closeFd(theirs);
  return ours;
}
