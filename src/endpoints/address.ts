// Addresses as Python's multiprocessing.connection spells them: a string is a unix socket path
// (AF_UNIX; "\0name" is Linux's abstract namespace), a [host, port] tuple is TCP. Also the
// housekeeping of unix socket files: the private default directory, the stale-file probe, and
// removal at exit. See docs/listener.md for the policies.
import { lstatSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { OSError } from "../errors.ts";
import { closeFd, connectUnix, osError, signalIgnored } from "../os/libc.ts";

/** A unix socket path, or a TCP `[host, port]`. */
export type Address = string | readonly [host: string, port: number];
/** "AF_INET6" is accepted for clarity; a `[host, port]` with an IPv6 host works as "AF_INET" too. */
export type Family = "AF_UNIX" | "AF_INET" | "AF_INET6";
/** The peer of an accepted connection: `[host, port]` for TCP, "" for an (unnamed) unix peer. */
export type PeerAddress = string | [host: string, port: number];

/** An address checked and resolved, ready for Bun.listen / Bun.connect. */
export type Endpoint =
  | { family: "AF_UNIX"; path: string; abstract: boolean }
  | { family: "AF_INET" | "AF_INET6"; host: string; port: number };

const FAMILIES: readonly string[] = ["AF_UNIX", "AF_INET", "AF_INET6"];
/** sun_path is 108 bytes on Linux, NUL included. */
const MAX_UNIX_PATH = 107;

/** The family an address implies, as Python's address_type (IPv6 hosts give "AF_INET6"). */
export function addressType(address: unknown): Family {
  if (typeof address === "string") {
    if (address.startsWith("\\\\")) throw new RangeError("Family AF_PIPE is not recognized.");
    return "AF_UNIX";
  }
  if (Array.isArray(address) && address.length === 2 && typeof address[0] === "string" && typeof address[1] === "number") {
    return address[0].includes(":") ? "AF_INET6" : "AF_INET";
  }
  throw new TypeError(`address type of ${describe(address)} unrecognized (expected a unix path or [host, port])`);
}

/**
 * Check `address` (and `family`, if given) and resolve it. A listener without an address gets a
 * fresh private unix path, or the loopback with port 0 for a TCP family (as Python).
 */
export function parseAddress(address: Address | null | undefined, family: Family | undefined, listening: boolean): Endpoint {
  if (family !== undefined && (typeof family !== "string" || !FAMILIES.includes(family))) {
    if ((family as string) === "AF_PIPE") throw new RangeError("Family AF_PIPE is not recognized.");
    throw new RangeError(`family must be "AF_UNIX", "AF_INET" or "AF_INET6", not ${describe(family)}`);
  }
  // Python treats any falsy address ("" included) as "pick one".
  if (address === undefined || address === null || address === "") {
    if (!listening) throw new TypeError("Client() needs an address");
    if (family === "AF_INET") return { family, host: "127.0.0.1", port: 0 };
    if (family === "AF_INET6") return { family, host: "::1", port: 0 };
    return { family: "AF_UNIX", path: defaultUnixPath(), abstract: false };
  }
  const implied = addressType(address);
  const tcp = (f: Family | undefined) => f === "AF_INET" || f === "AF_INET6";
  if (family !== undefined && tcp(family) !== tcp(implied)) {
    throw new TypeError(`address ${describe(address)} does not match family ${family}`);
  }
  if (typeof address === "string") {
    const hostPort = /^\[?([^/\0[\]]*?)\]?:(\d{1,5})$/.exec(address);
    if (hostPort) {
      throw new TypeError(
        `address ${describe(address)} is a unix socket path (a string always is); for TCP pass [${describe(hostPort[1])}, ${Number(hostPort[2])}]`,
      );
    }
    const abstract = address.startsWith("\0");
    // Python's message; Bun would only say EINVAL.
    if (Buffer.byteLength(address) > MAX_UNIX_PATH + (abstract ? 1 : 0)) throw new OSError("AF_UNIX path too long", "ENAMETOOLONG");
    return { family: "AF_UNIX", path: address, abstract };
  }
  const [host, port] = address;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be an integer 0-65535, not ${port}`);
  // As Python's AF_INET sockets: "localhost" is the IPv4 loopback, "" every IPv4 interface.
  const resolved = host === "localhost" ? "127.0.0.1" : host === "" ? "0.0.0.0" : host;
  return { family: implied === "AF_INET6" ? "AF_INET6" : "AF_INET", host: resolved, port };
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// ---- OS errors, worded as Python's ----------------------------------------------------

/**
 * A Bun socket error as Python words it: OSError("[Errno 111] Connection refused", "ECONNREFUSED").
 * With the `endpoint` connected to, the message names it, as Python names the file of a failed
 * open(): "[Errno 2] No such file or directory: '/tmp/x.sock' (is the Listener running?)".
 */
export function toOSError(error: unknown, endpoint?: Endpoint): OSError {
  if (error instanceof OSError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code !== "string") return new OSError(message, "EIO", { cause: error });
  let where: string | undefined;
  if (endpoint !== undefined) {
    where = endpoint.family === "AF_UNIX" ? `'${endpoint.path.replace("\0", "\\0")}'` : `${endpoint.host}:${endpoint.port}`;
    if (code === "ENOENT" || code === "ECONNREFUSED") where += " (is the Listener running?)";
  }
  return osError(code, where, { cause: error, fallback: `${message} (${code})` });
}

// ---- the private directory of default addresses -----------------------------------------

let privateDir: string | null = null;

/** A fresh `listener-XXXXXXXX` path in this process's private 0700 directory (removed at exit). */
export function defaultUnixPath(): string {
  if (privateDir === null) {
    // Python's pymp-* directory under a long $TMPDIR made paths too long for sun_path
    // (CPython gh-132124); fall back to /tmp as Python 3.14 does.
    const longest = "/mpconn-XXXXXX/listener-XXXXXXXX".length;
    let base = tmpdir();
    if (Buffer.byteLength(base) + longest > MAX_UNIX_PATH) base = "/tmp";
    privateDir = mkdtempSync(join(base, "mpconn-")); // mkdtemp creates it with mode 0700
    cleanUpAtExit();
  }
  const name = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => ALPHABET[b % ALPHABET.length]).join("");
  return join(privateDir, `listener-${name}`);
}
const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_";

// ---- stale socket files ---------------------------------------------------------------

/**
 * What sits at a unix socket path: nothing, a socket something listens on ("live"), a socket
 * nobody listens on ("stale": connecting is refused), or something else (never removed).
 */
export function unixPathState(path: string): "missing" | "live" | "stale" | "other" {
  try {
    if (!lstatSync(path).isSocket()) return "other";
  } catch {
    return "missing";
  }
  // Connecting would hand the live listener a connection that closes at once; look first.
  if (listedAsListening(path)) return "live";
  // Non-blocking, so a live listener with a full backlog answers EAGAIN instead of blocking us.
  try {
    closeFd(connectUnix(path));
    return "live";
  } catch (error) {
    return (error as OSError).code === "ECONNREFUSED" ? "stale" : "live";
  }
}

/**
 * Linux lists the unix sockets of this network namespace in /proc/net/unix; flag 00010000
 * (__SO_ACCEPTCON) marks a listening one. Reading it disturbs nobody. Not listed proves
 * nothing (another namespace, a relative bind path), so the caller still probes.
 */
function listedAsListening(path: string): boolean {
  let table: string;
  try {
    table = readFileSync("/proc/net/unix", "latin1");
  } catch {
    return false;
  }
  const names = [` ${path}`, ` ${resolve(path)}`];
  for (const line of table.split("\n")) {
    if (names.some((n) => line.endsWith(n)) && line.trim().split(/\s+/)[3] === "00010000") return true;
  }
  return false;
}

// ---- removal at exit --------------------------------------------------------------------

/** Socket files of this process's live Listeners. */
const socketFiles = new Set<string>();

/** Remove `path` when the process exits (normally, or by SIGINT/SIGTERM), unless forgotten first. */
export function removeAtExit(path: string): void {
  socketFiles.add(path);
  cleanUpAtExit();
}

export function forgetAtExit(path: string): void {
  socketFiles.delete(path);
}

let installed = false;

function cleanUpAtExit(): void {
  if (installed) return;
  installed = true;
  process.on("exit", cleanUp);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    // A process started with the signal ignored (e.g. a background job of a script) must stay
    // immune to it: listening for it would undo that.
    if (!ignored(signal)) process.on(signal, onSignal);
  }
}

function cleanUp(): void {
  for (const path of socketFiles) {
    try {
      if (lstatSync(path).isSocket()) unlinkSync(path);
    } catch {
      // already gone
    }
  }
  socketFiles.clear();
  if (privateDir !== null) rmSync(privateDir, { recursive: true, force: true });
  privateDir = null;
}

function onSignal(signal: NodeJS.Signals): void {
  // The program has its own handler: the signal no longer ends the process, so the files stay
  // until it exits (the "exit" handler removes them then).
  if (process.listenerCount(signal) > 1) return;
  cleanUp();
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  // Die of the signal as if we had never caught it (exit status 128 + n for the parent).
  process.kill(process.pid, signal);
}

/** Whether `signal` was ignored (SIG_IGN) when we looked, before anyone in this process handled it. */
function ignored(signal: "SIGINT" | "SIGTERM"): boolean {
  return signalIgnored(constants.signals[signal]);
}
