// Listener: Python's multiprocessing.connection.Listener over Bun.listen. Bun accepts every
// connection as it arrives; with an authkey each one runs the handshake on its own (bounded by
// handshakeTimeout), and only what finished — a connection, or the AuthenticationError of a
// peer that failed — waits in `arrivals` for accept(), in arrival order.
import { unlinkSync } from "node:fs";
import type { SocketListener, TLSOptions } from "bun";
import {
  forgetAtExit,
  parseAddress,
  removeAtExit,
  toOSError,
  unixPathState,
  type Address,
  type Endpoint,
  type Family,
  type PeerAddress,
} from "./address.ts";
import { authenticate, checkTls, handshakeSeconds, laneHandshake, laneWanted } from "./client.ts";
import { Connection, useMarkedLane, type ConnectionOptions } from "../connection/connection.ts";
import { AuthenticationError, OSError } from "../errors.ts";
import { serverHandshake, toAuthkey, type Authkey } from "./handshake.ts";
import { resolveSerializer } from "../serializers/index.ts";
import type { Serializer } from "../serializers/serializer.ts";
import { socketHandlers, type LinkedSocket, type SocketLink } from "../socket/transport.ts";
import { waitable, type Readiness } from "../connection/waitable.ts";

export interface ListenerOptions<T = unknown> extends ConnectionOptions<T> {
  family?: Family;
  /** Accepted for Python compatibility; Bun accepts connections as they come, so it has no effect. */
  backlog?: number;
  /** Require CPython's HMAC handshake with this key (a string is UTF-8). An empty key still authenticates. */
  authkey?: Authkey | null;
  /** TCP only: Bun's TLS server options, at least `{ key, cert }`. */
  tls?: TLSOptions;
  /** Seconds a client may take over the authkey handshake before it is dropped (default 20). */
  handshakeTimeout?: number;
  /** Unix sockets, with an authkey: the shared-memory lane with clients that have it on too (docs/large-messages.md). */
  sharedMemory?: boolean;
}

type Arrival<T> = { peer: PeerAddress; conn: Connection<T>; socket: LinkedSocket } | { peer: PeerAddress; error: Error };

/** At most this many failed handshakes wait for accept(); a flood of bad peers can't grow memory. */
const MAX_QUEUED_FAILURES = 128;

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Listener<T = unknown> implements AsyncIterable<Connection<T>>, Disposable {
  private readonly endpoint: Endpoint;
  private readonly server: SocketListener<SocketLink>;
  private readonly boundAddress: Address;
  private readonly serializer: Serializer<T>;
  private readonly authkey: Uint8Array | null;
  private readonly handshakeTimeout: number;
  private readonly lane: boolean;
  private arrivals: Arrival<T>[] = [];
  private readonly handshaking = new Set<Connection<T>>();
  private waiters: Array<{ resolve(conn: Connection<T>): void; reject(error: Error): void }> = [];
  private readonly watchers = new Set<() => void>();
  private peer: PeerAddress | null = null;
  private isClosed = false;

  constructor(address?: Address | null, options: ListenerOptions<T> = {}) {
    if (typeof options !== "object" || options === null) throw new TypeError("options must be an object");
    const { family, backlog, authkey, tls } = options;
    if (backlog !== undefined && !Number.isInteger(backlog)) throw new TypeError(`backlog must be an integer, not ${backlog}`);
    this.serializer = resolveSerializer(options.serializer);
    this.authkey = authkey === undefined || authkey === null ? null : toAuthkey(authkey);
    this.handshakeTimeout = handshakeSeconds(options.handshakeTimeout);
    this.endpoint = parseAddress(address, family, true);
    this.lane = laneWanted(options.sharedMemory, this.endpoint);
    const socket = { ...socketHandlers, open: (s: LinkedSocket) => this.arrive(s) };
    const endpoint = this.endpoint;
    if (endpoint.family === "AF_UNIX") {
      checkTls(tls, endpoint);
      this.server = listenUnix(endpoint, socket);
      this.boundAddress = endpoint.path;
    } else {
      const options = { hostname: endpoint.host, port: endpoint.port, tls: checkTls(tls, endpoint), socket };
      try {
        const server = Bun.listen<SocketLink>(options as unknown as Bun.TCPSocketListenOptions<SocketLink>);
        this.server = server;
        this.boundAddress = boundTcpAddress(server, endpoint);
      } catch (error) {
        throw toOSError(error);
      }
    }
    // Like a Python Listener, this one keeps the process alive only while someone waits on it.
    this.server.unref();
  }

  /** Where clients connect: the unix path, or `[host, port]` with the real port when 0 was asked. */
  get address(): Address {
    return this.boundAddress;
  }

  /** The peer of the last accepted connection: `[host, port]`, "" for a unix peer; null before the first. */
  get lastAccepted(): PeerAddress | null {
    return this.peer;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * The next connection. Rejects with OSError once the listener is closed, and with
   * AuthenticationError for a client that failed the authkey handshake (the listener goes on).
   */
  accept(): Promise<Connection<T>> {
    if (this.isClosed) return Promise.reject(new OSError("listener is closed", "LISTENER_CLOSED"));
    const next = this.arrivals.shift();
    if (next) return new Promise((resolve, reject) => this.hand(next, { resolve, reject }));
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.updateRef();
    });
  }

  /** Accept connections until the listener is closed; clients that fail authentication are skipped. */
  async *[Symbol.asyncIterator](): AsyncIterator<Connection<T>> {
    while (!this.isClosed) {
      try {
        yield await this.accept();
      } catch (error) {
        if (error instanceof AuthenticationError) continue;
        if (this.isClosed) return;
        throw error;
      }
    }
  }

  /**
   * Stop listening and remove the socket file. Idempotent. Connections already accepted keep
   * working; ones nobody accepted yet are closed, and pending accept() calls reject.
   */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.server.stop(false); // false: accepted connections stay open; Bun also unlinks the unix path
    if (this.endpoint.family === "AF_UNIX") forgetAtExit(this.endpoint.path);
    for (const conn of this.handshaking) conn.close();
    this.handshaking.clear();
    for (const arrival of this.arrivals) if ("conn" in arrival) arrival.conn.close();
    this.arrivals = [];
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(new OSError("listener is closed", "LISTENER_CLOSED"));
    this.notify();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- for wait() -----------------------------------------------------------------------

  /** For wait(): a connection can be accepted without waiting. */
  [waitable](): Readiness {
    return {
      check: () => {
        if (this.isClosed) throw new OSError("listener is closed", "LISTENER_CLOSED");
      },
      ready: () => this.arrivals.length > 0,
      watch: (onChange) => {
        if (this.isClosed) throw new OSError("listener is closed", "LISTENER_CLOSED");
        this.watchers.add(onChange);
        this.updateRef();
        return () => {
          this.watchers.delete(onChange);
          this.updateRef();
        };
      },
      // Let Bun run the open() of connections that are already there.
      settle: immediate,
      describe: () => `Listener (${JSON.stringify(this.boundAddress)})`,
    };
  }

  // ---- arrivals -------------------------------------------------------------------------

  private arrive(socket: LinkedSocket): void {
    const conn = Connection.adopt<T>(socket, { serializer: this.serializer });
    if (this.isClosed) return conn.close();
    // Until accept() hands it out, a connection is like one in Python's backlog: it does not
    // keep the process alive.
    socket.unref();
    const peer: PeerAddress = this.endpoint.family === "AF_UNIX" ? "" : [socket.remoteAddress, socket.remotePort];
    const key = this.authkey;
    if (key === null) {
      if (this.lane) useMarkedLane(conn as Connection<unknown>);
      return this.enqueue({ peer, conn, socket });
    }
    this.handshaking.add(conn);
    authenticate(conn as Connection<unknown>, () => serverHandshake(conn, key, this.lane ? laneHandshake(conn as Connection<unknown>) : {}), this.handshakeTimeout).then(
      () => {
        if (!this.handshaking.delete(conn)) return; // the listener closed meanwhile (and closed conn)
        this.enqueue({ peer, conn, socket });
      },
      (error: Error) => {
        if (!this.handshaking.delete(conn)) return;
        const queuedFailures = this.arrivals.filter((a) => "error" in a).length;
        if (queuedFailures < MAX_QUEUED_FAILURES) this.enqueue({ peer, error });
      },
    );
  }

  private enqueue(arrival: Arrival<T>): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.hand(arrival, waiter);
      this.updateRef();
      return;
    }
    this.arrivals.push(arrival);
    this.notify();
  }

  private hand(arrival: Arrival<T>, to: { resolve(conn: Connection<T>): void; reject(error: Error): void }): void {
    this.peer = arrival.peer;
    if ("conn" in arrival) {
      arrival.socket.ref();
      return to.resolve(arrival.conn);
    }
    to.reject(arrival.error);
  }

  private notify(): void {
    for (const watcher of [...this.watchers]) watcher();
  }

  private updateRef(): void {
    if (this.isClosed) return;
    if (this.waiters.length > 0 || this.watchers.size > 0) this.server.ref();
    else this.server.unref();
  }
}

/** The address the kernel gave (as Python's getsockname): the real port, and the IP a name resolved to. */
function boundTcpAddress(server: Bun.TCPSocketListener<SocketLink>, endpoint: { host: string }): Address {
  // getsockname(out) exists on Bun's listeners but not in its types.
  const name: { address?: unknown; port?: unknown } = {};
  (server as unknown as { getsockname?(out: object): void }).getsockname?.(name);
  if (typeof name.address === "string" && typeof name.port === "number") return [name.address, name.port];
  return [endpoint.host, server.port];
}

type UnixHandlers = Parameters<typeof Bun.listen<SocketLink>>[0]["socket"];

/**
 * Bind a unix socket. A file left at the path by a process that died is removed first, but only
 * a socket file nobody answers on ("stale"); a live socket or any other file gives EADDRINUSE.
 */
function listenUnix(endpoint: Extract<Endpoint, { family: "AF_UNIX" }>, socket: object): SocketListener<SocketLink> {
  const listen = () => Bun.listen<SocketLink>({ unix: endpoint.path, socket: socket as UnixHandlers });
  let server: SocketListener<SocketLink>;
  try {
    server = listen();
  } catch (error) {
    const stale = !endpoint.abstract && (error as { code?: string }).code === "EADDRINUSE" && unixPathState(endpoint.path) === "stale";
    if (!stale) throw toOSError(error);
    try {
      unlinkSync(endpoint.path);
      server = listen();
    } catch (again) {
      throw toOSError(again);
    }
  }
  if (!endpoint.abstract) removeAtExit(endpoint.path);
  return server;
}
