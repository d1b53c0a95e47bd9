// Connections inside messages: the reducer that lets a Connection travel (registered by
// ./index.ts, see src/connection/reduction.ts), between the serializer's hooks and the
// descriptor sharer (docs/passing-connections.md). It sees connections only through the
// Carrier, Leaving and Arriving interfaces: no import of the Connection class.
//
// Sending: replace() turns a Connection into a Moved record (a ticket to fetch a duplicate of
// its descriptor, its access flags, and the bytes it had received but nobody had read). Only
// when the whole message encoded (commit) does the move happen: each moved connection stops
// reading and closes, and its descriptor becomes fetchable once what was written on it has
// reached the OS. A message that fails to encode moves nothing (abort).
//
// Receiving: revive() returns a Connection at once (serializers are synchronous) and starts
// fetching its descriptor; finish() makes recv() wait until every fetch of the message landed.
import type { Arriving, Carrier, Decoding, Encoding, Leaving, Reducer } from "../../connection/reduction.ts";
import type { Connection } from "../../connection/connection.ts";
import { OSError } from "../../errors.ts";
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

export const connections: Reducer = {
  encoding: (carrier) => new Sending(carrier),
  decoding: (carrier) => new Receiving(carrier),
};

// ---- sending ----------------------------------------------------------------------------

/** The connections one message moves. */
class Sending implements Encoding {
  private moves: Array<{ leaving: Leaving; moved: Moved; flushed: (value: unknown) => void }> = [];
  constructor(private readonly carrier: Carrier) {}

  replace(obj: object): Moved | undefined {
    const leaving = this.carrier.leaving(obj);
    return leaving && this.move(leaving);
  }

  commit(): void {
    for (const m of this.moves) m.leaving.leave().then(m.flushed, m.flushed);
    this.moves = [];
  }

  abort(): void {
    for (const m of this.moves) unshare(m.moved);
    this.moves = [];
  }

  private move(leaving: Leaving): Moved {
    const conn = leaving.connection;
    if (!supported) throw new OSError(`passing connections between processes is only supported on Linux (this is ${process.platform})`, "ENOTSUP");
    if (conn === this.carrier.connection) throw new TypeError("a connection cannot be sent over itself");
    if (conn.closed) throw new OSError("cannot send a closed connection (handle is closed)", "HANDLE_CLOSED");
    if (!isUnixStream(this.carrier.connection.fileno())) {
      throw new TypeError("connections can only be sent to a local process, over a unix-socket connection (this one is TCP)");
    }
    const { fd, messages, partial } = leaving.unread();
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
    this.moves.push({ leaving, moved, flushed });
    return moved;
  }
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

/** The connections one message brings, each with the fetch of its descriptor. */
class Receiving implements Decoding {
  private arriving: Array<{ conn: Connection<unknown>; fetch: Promise<void> }> = [];
  constructor(private readonly carrier: Carrier) {}

  revive(value: unknown): Connection<unknown> | undefined {
    if (!isMoved(value)) return undefined;
    // Over TCP no sender can share a descriptor with us, so a connection record there is a
    // peer trying to make us contact a local socket it names: refuse it.
    if (!carrierIsUnix(this.carrier)) throw new TypeError("a connection record arrived over a connection that is not a unix socket; refused");
    const moved = checkMoved(value);
    if (!isSharerPath(moved.address)) {
      throw new TypeError(`a connection record names ${JSON.stringify(moved.address)}, which is not a descriptor sharer of this user; refused`);
    }
    // Handed out now (the serializer is synchronous); recv() resolves once the descriptor is in it.
    const arrival: Arriving = this.carrier.arriving(moved.readable, moved.writable);
    const fetch = fetchDescriptor(moved).then((fd) => {
      if (!isUnixStream(fd)) {
        close(fd);
        throw new OSError("the sending process handed over a descriptor that is not a unix stream socket", "EPROTO");
      }
      arrival.attach(fd, moved.unread);
    });
    fetch.catch(noop); // reported through recv()
    this.arriving.push({ conn: arrival.connection, fetch });
    return arrival.connection;
  }

  /** Resolves once each connection's descriptor has arrived; rejects, closing them all, if any cannot be had. */
  finish<T>(value: T): T | Promise<T> {
    const all = this.arriving;
    this.arriving = [];
    if (all.length === 0) return value;
    return Promise.allSettled(all.map((a) => a.fetch)).then((results) => {
      const failed = results.find((r) => r.status === "rejected");
      if (!failed) return value;
      for (const a of all) a.conn.close();
      throw failed.reason;
    });
  }

  /** A message that failed to decode: close what its connections fetch. */
  abort(): void {
    for (const a of this.arriving) a.fetch.finally(() => a.conn.close()).catch(noop);
    this.arriving = [];
  }
}

const noop = (): void => {};

/** Whether a stand-in is a connection record (checked in full by checkMoved). */
function isMoved(value: unknown): boolean {
  return typeof value === "object" && value !== null && (value as Partial<Moved>).mpconn === "Connection";
}

function checkMoved(value: unknown): Moved {
  const m = value as Moved;
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

function carrierIsUnix(carrier: Carrier): boolean {
  try {
    return isUnixStream(carrier.connection.fileno());
  } catch {
    return false;
  }
}

/** A socket whose peer is closed: what a connection is once its stream ended. */
function endedSocket(): number {
  const [ours, theirs] = socketpair();
  closeFd(theirs);
  return ours;
}
