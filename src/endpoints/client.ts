// Client(): Python's multiprocessing.connection.Client — connect to a Listener (unix path or
// [host, port], optionally over TLS), run the authkey handshake when a key is given, and
// return the Connection.
import type { TLSOptions } from "bun";
import { parseAddress, toOSError, type Address, type Endpoint, type Family } from "./address.ts";
import { Connection, useLane, useMarkedLane, type ConnectionOptions } from "../connection/connection.ts";
import { laneSupported, sharedMemoryOption } from "../connection/lane-link.ts";
import { AuthenticationError, EOFError, OSError } from "../errors.ts";
import { clientHandshake, toAuthkey, type Authkey } from "./handshake.ts";
import { socketHandlers, type LinkedSocket, type SocketLink } from "../socket/transport.ts";
import { resolveSerializer } from "../serializers/index.ts";
import type { Serializer } from "../serializers/serializer.ts";

export interface ClientOptions<T = unknown> extends ConnectionOptions<T> {
  /** Only checked against the address, as in Python. */
  family?: Family;
  /** Run CPython's HMAC handshake with this key (a string is UTF-8). An empty key still authenticates. */
  authkey?: Authkey | null;
  /** Unix sockets, with an authkey: the shared-memory lane for large messages when the Listener has it on too (docs/large-messages.md). */
  sharedMemory?: boolean;
  /** TCP only: Bun's TLS options (`true` = system CAs), e.g. `{ ca }` for a self-signed server. */
  tls?: TLSOptions | boolean;
  /** Seconds the authkey handshake may take before it fails with AuthenticationError (default 20). */
  handshakeTimeout?: number;
}

/** Connect to a Listener at `address`. Every error, argument mistakes included, rejects. */
export async function Client<T = unknown>(address: Address, options: ClientOptions<T> = {}): Promise<Connection<T>> {
  const endpoint = parseAddress(address, options.family, false);
  const key = options.authkey === undefined || options.authkey === null ? null : toAuthkey(options.authkey);
  const seconds = handshakeSeconds(options.handshakeTimeout);
  const serializer = resolveSerializer(options.serializer);
  const tls = checkTls(options.tls, endpoint);
  const lane = laneWanted(options.sharedMemory, endpoint);
  const conn = await connect(endpoint, tls && withServerName(tls, address), serializer);
  if (key !== null) await authenticate(conn, () => clientHandshake(conn, key, lane ? laneHandshake(conn as Connection<unknown>) : {}), seconds);
  else if (lane) useMarkedLane(conn as Connection<unknown>);
  return conn;
}

/**
 * @internal Whether a Listener or Client end offers the lane: the option, on a unix socket, where
 * the lane works. With an authkey the ends agree inside the handshake; without one, through
 * markers the kernel lets each end find (src/connection/lane-markers.ts).
 */
export function laneWanted(option: unknown, endpoint: Endpoint): boolean {
  return sharedMemoryOption(option, false) && endpoint.family === "AF_UNIX" && laneSupported;
}

/** @internal The handshake option that gives `conn` the lane once the peer's challenge shows it has it on. */
export function laneHandshake(conn: Connection<unknown>): { lane: { peer: () => void } } {
  return { lane: { peer: () => void useLane(conn, "known") } };
}

/** @internal The default and the checks of the handshakeTimeout option (shared with Listener). */
export function handshakeSeconds(value: unknown): number {
  if (value === undefined || value === null) return 20;
  if (typeof value !== "number" || Number.isNaN(value)) throw new TypeError(`handshakeTimeout must be a number of seconds, not ${typeof value}`);
  if (value <= 0) throw new RangeError(`handshakeTimeout must be positive, not ${value}`);
  return value;
}

/** @internal TLS options are for TCP; a unix socket is protected by its file's permissions. */
export function checkTls<O>(tls: O | boolean | undefined, endpoint: Endpoint): O | true | undefined {
  if (tls === undefined || tls === false) return undefined;
  if (endpoint.family === "AF_UNIX") throw new TypeError("tls is for TCP addresses ([host, port]), not unix sockets");
  if (tls !== true && (typeof tls !== "object" || tls === null)) throw new TypeError("tls must be an object of Bun TLS options or true");
  return tls;
}

/**
 * @internal Run one side of the authkey handshake on a fresh connection, within `seconds`.
 * Any failure closes the connection and rejects with AuthenticationError (the cause attached),
 * so that a listener can drop the peer and a caller sees one kind of error.
 */
export async function authenticate(conn: Connection<unknown>, handshake: () => Promise<void>, seconds: number): Promise<void> {
  let timer: Timer | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    if (Number.isFinite(seconds)) {
      timer = setTimeout(() => reject(new AuthenticationError(`authkey handshake timed out after ${seconds} s`)), seconds * 1000);
      // The socket keeps the process alive while the handshake matters to someone; the timer need not.
      timer.unref();
    }
  });
  try {
    // race() subscribes to both, so the loser's later rejection is not unhandled.
    await Promise.race([handshake(), timedOut]);
  } catch (error) {
    conn.close();
    if (error instanceof AuthenticationError) throw error;
    const why = error instanceof EOFError ? "the peer closed the connection" : String((error as Error)?.message ?? error);
    const failed = new AuthenticationError(`authkey handshake failed: ${why}`);
    failed.cause = error;
    throw failed;
  } finally {
    clearTimeout(timer);
  }
}

/** Open a Bun socket to `endpoint` and wrap it; over TLS, only once the TLS handshake succeeded. */
function connect<T>(endpoint: Endpoint, tls: TLSOptions | boolean | undefined, serializer: Serializer<T>): Promise<Connection<T>> {
  return new Promise((resolve, reject) => {
    let conn: Connection<T> | null = null;
    const socket = {
      ...socketHandlers,
      open(s: LinkedSocket) {
        conn = Connection.adopt(s, { serializer });
        if (!tls) resolve(conn);
      },
      connectError(_s: LinkedSocket, error: Error) {
        reject(toOSError(error, endpoint));
      },
      // With a handshake handler, Bun calls open() at connect time and this once TLS is up.
      ...(tls && {
        handshake(_s: LinkedSocket, success: boolean, error: Error | null) {
          if (success) return resolve(conn!);
          conn?.close();
          reject(new OSError(`TLS handshake failed: ${error?.message ?? "certificate rejected"}`, (error as { code?: string } | null)?.code, { cause: error }));
        },
        close(s: LinkedSocket, error?: Error) {
          socketHandlers.close!(s, error);
          // Bun closes without calling handshake() when it rejects an untrusted certificate.
          reject(new OSError("TLS handshake failed: the connection closed before it completed (is the server's certificate trusted? see the tls.ca option)", error && (error as { code?: string }).code, { cause: error }));
        },
      }),
    };
    const target =
      endpoint.family === "AF_UNIX"
        ? { unix: endpoint.path }
        : { hostname: endpoint.host, port: endpoint.port, tls };
    Bun.connect<SocketLink>({ ...target, socket } as unknown as Parameters<typeof Bun.connect<SocketLink>>[0]).catch((error: unknown) =>
      reject(toOSError(error, endpoint)),
    );
  });
}

/** "localhost" is connected to as 127.0.0.1, but the server's certificate names "localhost". */
function withServerName(tls: TLSOptions | true, address: Address): TLSOptions | true {
  if (typeof address === "string" || address[0] !== "localhost") return tls;
  const options: TLSOptions = tls === true ? {} : tls;
  if (options.serverName !== undefined || options.servername !== undefined) return tls;
  return { ...options, serverName: "localhost" };
}
