// The few libc calls Bun does not expose: socketpair for Pipe(), poll and blocking writes for
// readiness checks and the final flush at process exit. Linux and macOS constants differ;
// only these are used.
import { dlopen, read, type Pointer } from "bun:ffi";
import { constants } from "node:os";
import { OSError } from "../errors.ts";

const linux = process.platform === "linux";
const path = linux ? "libc.so.6" : "libc.dylib";

const lib = dlopen(path, {
  socketpair: { args: ["i32", "i32", "i32", "buffer"], returns: "i32" },
  poll: { args: ["buffer", "u64", "i32"], returns: "i32" },
  fcntl: { args: ["i32", "i32", "i32"], returns: "i32" },
  write: { args: ["i32", "buffer", "u64"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
});
const errnoLib = linux
  ? dlopen(path, { __errno_location: { args: [], returns: "ptr" } }).symbols.__errno_location
  : dlopen(path, { __error: { args: [], returns: "ptr" } }).symbols.__error;

const fn = lib.symbols;
const errnoPointer = errnoLib as () => Pointer;

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_CLOEXEC = linux ? 0o2000000 : 0;
const F_GETFD = 1;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = linux ? 0o4000 : 0x0004;
const POLLIN = 0x001;
const POLLOUT = 0x004;
const EINTR = constants.errno.EINTR;
const EAGAIN = constants.errno.EAGAIN;

/** errno → name; the first name wins where two share a number (EAGAIN, not EWOULDBLOCK). */
const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);

/** The name of an errno value ("EAGAIN"), if the platform has one. */
export function errnoName(n: number): string | undefined {
  return errnoNames.get(n);
}

export function errno(): number {
  return read.i32(errnoPointer(), 0);
}

function fail(call: string): never {
  const n = errno();
  const code = errnoNames.get(n);
  throw new OSError(`${call} failed: [Errno ${n}] ${code ?? "unknown error"}`, code);
}

/** A connected pair of AF_UNIX stream sockets, close-on-exec, blocking. */
export function socketpair(): [number, number] {
  const fds = new Int32Array(2);
  if (fn.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) !== 0) fail("socketpair");
  return [fds[0]!, fds[1]!];
}

/** fcntl(2) with an integer argument; -1 on failure (see errno()). */
export function fcntl(fd: number, command: number, argument: number): number {
  return fn.fcntl(fd, command, argument);
}

/** Whether `fd` is an open descriptor. */
export function isOpen(fd: number): boolean {
  return Number.isInteger(fd) && fd >= 0 && fn.fcntl(fd, F_GETFD, 0) !== -1;
}

export function closeFd(fd: number): void {
  fn.close(fd);
}

/**
 * poll(2) one descriptor: whether it is readable (data, EOF or error) within `ms`
 * milliseconds (0 = just look).
 */
export function readable(fd: number, ms = 0): boolean {
  const pfd = new Int32Array(2);
  pfd[0] = fd;
  pfd[1] = POLLIN;
  const n = fn.poll(pfd, 1, ms);
  return n > 0 && (new Int16Array(pfd.buffer)[3]! !== 0);
}

/**
 * Write all of `bytes` to `fd`, waiting for the peer as long as it keeps reading: used at
 * process exit, when the event loop will not run again to deliver what send() accepted.
 * Gives up when the peer takes nothing for `stallMs` milliseconds. Returns bytes written.
 */
export function writeAllBlocking(fd: number, bytes: Uint8Array, stallMs = 30_000): number {
  const pfd = new Int32Array(2);
  let done = 0;
  while (done < bytes.byteLength) {
    // One write(2) moves at most ~2 GiB; ask for 1 GiB at a time so the count fits an i32.
    const n = fn.write(fd, bytes.subarray(done), Math.min(bytes.byteLength - done, 1 << 30));
    if (n > 0) {
      done += n;
      continue;
    }
    const code = errno();
    if (n < 0 && code !== EAGAIN && code !== EINTR) break;
    pfd[0] = fd;
    pfd[1] = POLLOUT;
    if (fn.poll(pfd, 1, stallMs) <= 0) break;
  }
  return done;
}

/** Switch a descriptor between blocking and non-blocking mode. */
export function setBlocking(fd: number, blocking: boolean): void {
  const flags = fn.fcntl(fd, F_GETFL, 0);
  if (flags < 0) fail("fcntl");
  const next = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
  if (next !== flags && fn.fcntl(fd, F_SETFL, next) < 0) fail("fcntl");
}
