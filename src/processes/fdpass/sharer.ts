// The descriptor sharer: CPython's resource_sharer, for Bun (docs/internals.md, "Passing connections").
//
// A process that sends a connection keeps a duplicate of its descriptor here, under a random
// id and a 32-byte secret that travel inside the message. The receiving process fetches it:
//
//   fetcher → sharer   48 bytes: id (16) + secret (32)
//   sharer  → fetcher  1 byte: 1 plus the descriptor as SCM_RIGHTS, or 0 (no such share)
//
// Only the owner of the process can take a descriptor: the sharer's socket sits in a private
// 0700 directory, the peer's uid is checked with SO_PEERCRED, and the secret is compared in
// constant time. Each share is handed out once, then closed here.
//
// The sharer listens with Bun.listen, and replies with sendmsg on the accepted socket (Bun
// reads only the 48 request bytes there). The fetcher's socket is its own FFI socket, never
// read by Bun, so the descriptor is not dropped on arrival (docs/internals.md, "bun:ffi").
import { timingSafeEqual } from "node:crypto";
import type { Socket, SocketListener } from "bun";
import { defaultUnixPath, forgetAtExit, removeAtExit } from "../../endpoints/address.ts";
import { OSError } from "../../errors.ts";
import { close, connectUnix, getuid, peerUid, recvDescriptor, sendAll, sendDescriptor } from "../../os/scm-rights.ts";

const ID_SIZE = 16;
const SECRET_SIZE = 32;
export const REQUEST_SIZE = ID_SIZE + SECRET_SIZE;

/** A fetch gives up after this long (the sender is gone or stuck). */
export const FETCH_TIMEOUT_MS = 20_000;
/** A pending share keeps its process alive this long, so a sender can exit after send(). */
const KEEP_ALIVE_MS = 10_000;

/** Where and how to fetch one shared descriptor: what travels in the message. */
export interface Ticket {
  /** The sharer's unix socket path. */
  address: string;
  /** id (16 bytes) + secret (32 bytes). */
  request: Uint8Array;
}

interface Share {
  fd: number;
  secret: Uint8Array;
  /** Resolves when the descriptor may be handed out (the sender's pending writes are out). */
  ready: Promise<unknown>;
  keepAlive: Timer;
}

interface Request {
  bytes: Uint8Array;
  filled: number;
}

const shares = new Map<string, Share>();
let server: SocketListener<Request> | null = null;
let address = "";
let uid = -1;

/** Keep `fd` (ownership passes here) until someone with the ticket fetches it. */
export function share(fd: number, ready: Promise<unknown>): Ticket {
  const at = listen();
  const request = crypto.getRandomValues(new Uint8Array(REQUEST_SIZE));
  const id = Buffer.from(request.subarray(0, ID_SIZE)).toString("hex");
  shares.set(id, { fd, secret: request.slice(ID_SIZE), ready, keepAlive: setTimeout(noop, KEEP_ALIVE_MS) });
  return { address: at, request };
}

/** Take back a share nobody fetched (a send that failed): its descriptor is closed. */
export function unshare(ticket: Ticket): void {
  const id = Buffer.from(ticket.request.subarray(0, ID_SIZE)).toString("hex");
  const found = shares.get(id);
  if (!found) return;
  shares.delete(id);
  clearTimeout(found.keepAlive);
  close(found.fd);
}

/** Shares waiting to be fetched (tests check that none leak). */
export function pendingShares(): number {
  return shares.size;
}

const noop = (): void => {};

function listen(): string {
  if (server) return address;
  uid = getuid();
  const path = defaultUnixPath();
  server = Bun.listen<Request>({
    unix: path,
    socket: {
      open(socket) {
        // Anyone who can reach the socket file is this user already (0700 directory); a
        // process of another user that still got here (root, a shared descriptor) is refused.
        if (peerUid(fdOf(socket)) !== uid) return void socket.end();
        socket.data = { bytes: new Uint8Array(REQUEST_SIZE), filled: 0 };
        socket.timeout(FETCH_TIMEOUT_MS / 1000); // a fetcher that never asks is dropped
      },
      timeout(socket) {
        socket.end();
      },
      data(socket, chunk) {
        const request = socket.data;
        if (!request || request.filled + chunk.byteLength > REQUEST_SIZE) return refuse(socket);
        request.bytes.set(chunk, request.filled);
        request.filled += chunk.byteLength;
        if (request.filled === REQUEST_SIZE) serve(socket, request.bytes);
      },
      error() {},
    },
  });
  server.unref();
  address = path;
  removeAtExit(path);
  return path;
}

function serve(socket: Socket<Request>, request: Uint8Array): void {
  socket.data = undefined as unknown as Request; // anything more is refused
  const id = Buffer.from(request.subarray(0, ID_SIZE)).toString("hex");
  const found = shares.get(id);
  if (!found || !timingSafeEqual(found.secret, request.subarray(ID_SIZE))) return refuse(socket);
  shares.delete(id);
  clearTimeout(found.keepAlive);
  const hand = (): void => {
    try {
      sendDescriptor(fdOf(socket), 1, found.fd);
    } catch {
      // The fetcher went away: its fetch failed, and the descriptor goes with it.
    } finally {
      close(found.fd);
      socket.end();
    }
  };
  found.ready.then(hand, hand);
}

/** The OS descriptor of a Bun socket (an undocumented getter; docs/internals.md, "Bun's sockets"). */
function fdOf(socket: Socket<Request>): number {
  return (socket as unknown as { fd: number }).fd;
}

function refuse(socket: Socket<Request>): void {
  try {
    sendDescriptor(fdOf(socket), 0, null);
  } catch {
    // gone already
  }
  socket.end();
}

/** Stop sharing: pending shares are closed and the socket file removed (tests; process exit does the same). */
export function stopSharing(): void {
  for (const found of shares.values()) {
    clearTimeout(found.keepAlive);
    close(found.fd);
  }
  shares.clear();
  if (!server) return;
  server.stop(true);
  forgetAtExit(address);
  server = null;
  address = "";
}

// ---- the fetching side ------------------------------------------------------------------

/**
 * Fetch the descriptor a ticket names from the sharer of the process that sent it. Async: it
 * waits for the answer without blocking the event loop, so a process can fetch from its own
 * sharer, and two processes can fetch from each other at the same time.
 */
export async function fetchDescriptor(ticket: Ticket, timeoutMs = FETCH_TIMEOUT_MS): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const where = `the sending process's descriptor sharer (${ticket.address})`;
  let delay = 0;
  const pause = async (): Promise<void> => {
    if (Date.now() > deadline) throw new OSError(`timed out fetching a connection from ${where}`, "ETIMEDOUT");
    await new Promise((resolve) => (delay === 0 ? setImmediate(resolve) : setTimeout(resolve, delay)));
    delay = Math.min(delay === 0 ? 1 : delay * 2, 16);
  };
  let socket: number | "again";
  try {
    while ((socket = connectUnix(ticket.address)) === "again") await pause();
  } catch (error) {
    const code = (error as OSError).code;
    if (code === "ENOENT" || code === "ECONNREFUSED") {
      throw new OSError(`cannot fetch a connection: ${where} is gone (did the sender exit?)`, code, { cause: error });
    }
    throw error;
  }
  try {
    // The address came from the peer: write nothing to a socket another user listens on.
    if (peerUid(socket) !== getuid()) {
      throw new OSError(`refused to fetch a connection from ${ticket.address}: it is not a socket of this user`, "EACCES");
    }
    sendAll(socket, ticket.request);
    delay = 0;
    while (true) {
      const got = recvDescriptor(socket);
      if (got === "again") {
        await pause();
        continue;
      }
      if (got === "eof") throw new OSError(`${where} closed without sending the descriptor`, "ECONNRESET");
      if (got.status === 1 && got.fd !== null) return got.fd;
      if (got.fd !== null) close(got.fd);
      if (got.status === 0) {
        throw new OSError(`${where} has no such connection: each one can be received once (already fetched, or never shared)`, "ENOENT");
      }
      throw new OSError(`${where} answered without a descriptor (status ${got.status})`, "EPROTO");
    }
  } finally {
    close(socket);
  }
}
