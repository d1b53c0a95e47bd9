// The one FFI module: every libc call mpconn makes that Bun does not expose, and the one place
// errno becomes an OSError. Linux and macOS constants differ; only these are used.
//
// JIT pitfall (docs/internals.md, "bun:ffi"): a pointer handed to native code as a number hides
// the memory access from JSC, so every argument that native code reads or writes is declared
// "buffer" and passed as the typed array itself.
import { dlopen, FFIType, read, type Pointer } from "bun:ffi";
import { constants } from "node:os";
import { OSError } from "../errors.ts";

const linux = process.platform === "linux";

const lib = dlopen(linux ? "libc.so.6" : "libc.dylib", {
  socketpair: { args: ["i32", "i32", "i32", "buffer"], returns: "i32" },
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  connect: { args: ["i32", "buffer", "u32"], returns: "i32" },
  send: { args: ["i32", "buffer", "u64", "i32"], returns: "i32" },
  sendmsg: { args: ["i32", "buffer", "i32"], returns: "i32" },
  recvmsg: { args: ["i32", "buffer", "i32"], returns: "i32" },
  recv: { args: ["i32", "buffer", "u64", "i32"], returns: "i32" },
  getsockopt: { args: ["i32", "i32", "i32", "buffer", "buffer"], returns: "i32" },
  poll: { args: ["buffer", "u64", "i32"], returns: "i32" },
  fcntl: { args: ["i32", "i32", "i32"], returns: "i32" },
  dup2: { args: ["i32", "i32"], returns: "i32" },
  write: { args: ["i32", "buffer", "u64"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  getuid: { args: [], returns: "u32" },
  sigaction: { args: ["i32", "ptr", "buffer"], returns: "i32" },
  strerror: { args: ["i32"], returns: "cstring" },
  // Where errno lives: Linux and macOS name the function differently.
  [linux ? "__errno_location" : "__error"]: { args: [], returns: "ptr" },
}).symbols;
const errnoAt = (linux ? lib.__errno_location : lib.__error) as unknown as () => Pointer;

function openMemoryCalls() {
  if (!linux) throw new OSError(`shared memory is only supported on Linux (this is ${process.platform} ${process.arch})`, "ENOTSUP");
  return dlopen("libc.so.6", {
    memfd_create: { args: ["buffer", "u32"], returns: "i32" },
    ftruncate: { args: ["i32", "i64"], returns: "i32" },
    open: { args: ["buffer", "i32"], returns: "i32" },
    // The address as a plain number (MAP_FAILED is -1): see src/os/shm.ts.
    mmap: { args: ["ptr", "u64", "i32", "i32", "i32", "i64"], returns: FFIType.i64_fast },
    munmap: { args: ["ptr", "u64"], returns: "i32" },
    madvise: { args: ["ptr", "u64", "i32"], returns: "i32" },
  }).symbols;
}
let memory: ReturnType<typeof openMemoryCalls> | null = null;

/** The memory calls of the shared-memory lane (src/os/shm.ts): Linux only, opened on first use. */
export function memoryCalls(): ReturnType<typeof openMemoryCalls> {
  return (memory ??= openMemoryCalls());
}

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_CLOEXEC = linux ? 0o2000000 : 0;
const SOCK_NONBLOCK = linux ? 0o4000 : 0;
const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const FD_CLOEXEC = 1;
const F_DUPFD_CLOEXEC = linux ? 1030 : 67;
const O_NONBLOCK = linux ? 0o4000 : 0x0004;
const POLLIN = 0x001;
const POLLOUT = 0x004;
const EINTR = constants.errno.EINTR;
const EAGAIN = constants.errno.EAGAIN;

// ---- errno → OSError --------------------------------------------------------------------

/** errno → name; the first name wins where two share a number (EAGAIN, not EWOULDBLOCK). */
const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);

/** errno's name ("EPIPE"), or undefined for a number this platform does not name. */
export function errnoName(n: number): string | undefined {
  return errnoNames.get(n);
}

/** The errno of the last failed call. */
export function errno(): number {
  return read.i32(errnoAt(), 0);
}

/**
 * An OSError as Python words it, "[Errno 32] Broken pipe", with the errno name as its `code`.
 * `code` is a name ("EPIPE") or a number; `context` (what failed, a path) follows after ": ".
 * A name this platform has no number for keeps `fallback` as its message.
 */
export function osError(code: string | number, context?: string, options?: { cause?: unknown; fallback?: string }): OSError {
  const n = typeof code === "number" ? code : (constants.errno as Record<string, number | undefined>)[code];
  const name = typeof code === "number" ? (errnoNames.get(code) ?? `errno ${code}`) : code;
  const suffix = context === undefined ? "" : `: ${context}`;
  if (n === undefined) return new OSError(`${options?.fallback ?? name}${suffix}`, name, options);
  return new OSError(`[Errno ${n}] ${lib.strerror(n)}${suffix}`, name, options);
}

/** The OSError of the call that just failed. */
function failure(call: string): OSError {
  return osError(errno(), call);
}

/** What writing to a socket whose peer is gone means, in every place that finds it out. */
export function brokenPipe(): OSError {
  return osError("EPIPE");
}

// ---- descriptors ------------------------------------------------------------------------

/** fcntl(2) with an integer argument; -1 on failure (errno() tells why). */
export function fcntl(fd: number, command: number, argument: number): number {
  return lib.fcntl(fd, command, argument);
}

/** A connected pair of AF_UNIX stream sockets, close-on-exec, blocking. */
export function socketpair(): [number, number] {
  const fds = new Int32Array(2);
  if (lib.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) !== 0) throw failure("socketpair");
  return [fds[0]!, fds[1]!];
}

/** Whether `fd` is an open descriptor. */
export function isOpen(fd: number): boolean {
  return Number.isInteger(fd) && fd >= 0 && lib.fcntl(fd, F_GETFD, 0) !== -1;
}

export function closeFd(fd: number): void {
  lib.close(fd);
}

/** A close-on-exec duplicate of `fd` (numbered 3 or above). */
export function dup(fd: number): number {
  const copy = lib.fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) throw failure("dup");
  return copy;
}

/** Duplicate `fd` onto descriptor number `target` (close-on-exec); tests use it for fd > 256. */
export function dupTo(fd: number, target: number): number {
  if (lib.dup2(fd, target) < 0) throw failure("dup2");
  lib.fcntl(target, F_SETFD, FD_CLOEXEC);
  return target;
}

/** Switch a descriptor between blocking and non-blocking mode. */
export function setBlocking(fd: number, blocking: boolean): void {
  const flags = lib.fcntl(fd, F_GETFL, 0);
  if (flags < 0) throw failure("fcntl");
  const next = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
  if (next !== flags && lib.fcntl(fd, F_SETFL, next) < 0) throw failure("fcntl");
}

/**
 * poll(2) one descriptor: whether it is readable (data, EOF or error) within `ms`
 * milliseconds (0 = just look).
 */
export function readable(fd: number, ms = 0): boolean {
  const pfd = new Int32Array(2);
  pfd[0] = fd;
  pfd[1] = POLLIN;
  const n = lib.poll(pfd, 1, ms);
  return n > 0 && new Int16Array(pfd.buffer)[3]! !== 0;
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
    const n = lib.write(fd, bytes.subarray(done), Math.min(bytes.byteLength - done, 1 << 30));
    if (n > 0) {
      done += n;
      continue;
    }
    const code = errno();
    if (n < 0 && code !== EAGAIN && code !== EINTR) break;
    pfd[0] = fd;
    pfd[1] = POLLOUT;
    if (lib.poll(pfd, 1, stallMs) <= 0) break;
  }
  return done;
}

// ---- sockets ----------------------------------------------------------------------------

/** sockaddr_un for `path`: Linux has a u16 family; BSDs a length byte, then a family byte. */
function unixAddress(path: string): { bytes: Uint8Array; length: number } {
  const name = Buffer.from(path);
  if (name.byteLength > 107) throw osError("ENAMETOOLONG", undefined, { fallback: "AF_UNIX path too long" });
  const bytes = new Uint8Array(110);
  const length = 2 + name.byteLength + 1;
  if (linux) new DataView(bytes.buffer).setUint16(0, AF_UNIX, true);
  else (bytes[0] = length), (bytes[1] = AF_UNIX);
  bytes.set(name, 2);
  return { bytes, length };
}

/**
 * A non-blocking, close-on-exec AF_UNIX stream socket connected to `path`. Failures throw the
 * errno's OSError: ECONNREFUSED for a socket file nobody listens on, EAGAIN for a listener
 * whose backlog is full, ENOENT for no file.
 */
export function connectUnix(path: string): number {
  const address = unixAddress(path);
  const fd = lib.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw failure("socket");
  if (!linux) setBlocking(fd, false);
  if (lib.connect(fd, address.bytes, address.length) === 0) return fd;
  const error = failure(`connect to ${path}`);
  lib.close(fd);
  throw error;
}

/** send(2) with `flags`; the count sent, or the errno's OSError. */
export function send(fd: number, bytes: Uint8Array, flags: number): number {
  const n = lib.send(fd, bytes, bytes.byteLength, flags);
  if (n < 0) throw failure("send");
  return n;
}

/** sendmsg(2) of a msghdr that lies, with everything it points to, in `arena`; -1 with errno set. */
export function sendmsg(fd: number, arena: Uint8Array, flags: number): number {
  return lib.sendmsg(fd, arena, flags);
}

/** socket(2), close-on-exec; the descriptor, or the errno's OSError. */
export function openSocket(domain: number, type: number, protocol: number): number {
  const fd = lib.socket(domain, type | SOCK_CLOEXEC, protocol);
  if (fd < 0) throw failure("socket");
  return fd;
}

/** recv(2) with `flags` into `bytes`; the count received, or -1 with errno set. */
export function recv(fd: number, bytes: Uint8Array, flags: number): number {
  return lib.recv(fd, bytes, bytes.byteLength, flags);
}

/** recvmsg(2), as sendmsg; -1 with errno set. */
export function recvmsg(fd: number, arena: Uint8Array, flags: number): number {
  return lib.recvmsg(fd, arena, flags);
}

const optLength = new Uint32Array(1);

/** getsockopt(2) into `value` (`size` bytes of it); false when it failed. */
export function getsockopt(fd: number, level: number, name: number, value: Int32Array, size: number): boolean {
  optLength[0] = size;
  return lib.getsockopt(fd, level, name, value, optLength) === 0;
}

export function getuid(): number {
  return lib.getuid();
}

/** Whether `signal` is ignored (SIG_IGN) in this process right now. */
export function signalIgnored(signal: number): boolean {
  const old = new BigUint64Array(32); // larger than struct sigaction on Linux and macOS
  if (lib.sigaction(signal, null, old) !== 0) return false;
  return old[0] === 1n; // sa_handler is the first field; SIG_IGN is 1
}
