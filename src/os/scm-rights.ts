// Moving a descriptor between processes: SCM_RIGHTS over an AF_UNIX stream socket, with the
// Linux x86_64/aarch64 struct layouts (docs/internals.md, "bun:ffi"). Bun's own socket reader
// drops descriptors that arrive on a socket it reads, so these calls only ever run on sockets Bun
// does not read, or (sending) on a Bun socket that only needs to write.
//
// msghdr, iovec, control buffer and payload live in one ArrayBuffer that is passed as the
// "buffer" argument of every call, and results are read back from that same buffer (the JIT
// cannot see through pointers stored inside it otherwise).
import { ptr } from "bun:ffi";
import { OSError } from "../errors.ts";
import { AF_UNIX, SOCK_STREAM, closeFd, connectUnix as connect, errno, getsockopt, osError, recvmsg, send, sendmsg } from "./libc.ts";

export const supported = process.platform === "linux";

const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const SO_TYPE = 3;
const SO_PEERCRED = 17;
const SO_DOMAIN = 39;
const MSG_DONTWAIT = 0x40;
const MSG_CTRUNC = 0x08;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;

/** Passing connections needs Linux's layouts; elsewhere, a clear OSError. */
function checkSupported(): void {
  if (!supported) {
    throw new OSError(`passing connections between processes is only supported on Linux (this is ${process.platform})`, "ENOTSUP");
  }
}

export { dup, dupTo, getuid, closeFd as close } from "./libc.ts";

const optValue = new Int32Array(3);

/** Whether `fd` is an AF_UNIX stream socket (the only kind mpconn passes). */
export function isUnixStream(fd: number): boolean {
  checkSupported();
  if (!getsockopt(fd, SOL_SOCKET, SO_DOMAIN, optValue, 4) || optValue[0] !== AF_UNIX) return false;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, optValue, 4) && optValue[0] === SOCK_STREAM;
}

/** The uid of the process at the other end of a connected unix socket (SO_PEERCRED), or -1. */
export function peerUid(fd: number): number {
  checkSupported();
  return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, optValue, 12) ? optValue[1]! >>> 0 : -1;
}

// ---- a client socket the fetcher owns (Bun never sees it) ------------------------------

/**
 * A non-blocking AF_UNIX stream socket connected to `path`. A listener with a full backlog
 * answers EAGAIN: that comes back as "again" so the caller can retry.
 */
export function connectUnix(path: string): number | "again" {
  checkSupported();
  try {
    return connect(path);
  } catch (error) {
    if ((error as OSError).code === "EAGAIN") return "again";
    throw error;
  }
}

/** Send all of `bytes` on a fresh non-blocking socket (a small request fits its buffer at once). */
export function sendAll(fd: number, bytes: Uint8Array): void {
  if (send(fd, bytes, MSG_NOSIGNAL | MSG_DONTWAIT) !== bytes.byteLength) throw new OSError("send: short write", "EAGAIN");
}

// ---- sendmsg / recvmsg with one descriptor ----------------------------------------------

// One arena: msghdr @0 (56 B), iovec @56 (16 B), control @72 (CMSG_SPACE(4) = 24 B), payload @96.
const MSGHDR = 0;
const IOVEC = 56;
const CONTROL = 72;
const CONTROL_SPACE = 24;
const PAYLOAD = 96;
const ARENA_SIZE = 104;

class Arena {
  readonly bytes = new Uint8Array(new ArrayBuffer(ARENA_SIZE));
  private readonly view = new DataView(this.bytes.buffer);
  constructor() {
    // The buffer never moves (a plain ArrayBuffer), so its internal pointers are set once.
    const base = BigInt(ptr(this.bytes));
    const v = this.view;
    v.setBigUint64(MSGHDR + 16, base + BigInt(IOVEC), true); // msg_iov
    v.setBigUint64(MSGHDR + 24, 1n, true); // msg_iovlen
    v.setBigUint64(MSGHDR + 32, base + BigInt(CONTROL), true); // msg_control
    v.setBigUint64(IOVEC, base + BigInt(PAYLOAD), true); // iov_base
    v.setBigUint64(IOVEC + 8, 1n, true); // iov_len: one byte of payload
  }
  /** Prepare for a call: payload byte, control buffer of `controlLength` bytes, flags cleared. */
  reset(payload: number, controlLength: number): DataView {
    const v = this.view;
    v.setBigUint64(MSGHDR + 40, BigInt(controlLength), true); // msg_controllen
    v.setInt32(MSGHDR + 48, 0, true); // msg_flags
    this.bytes.fill(0, CONTROL, CONTROL + CONTROL_SPACE);
    this.bytes[PAYLOAD] = payload;
    return v;
  }
}

let arena: Arena | null = null;

/**
 * Send one byte (`status`) and, unless `fd` is null, the descriptor `fd` as SCM_RIGHTS.
 * Non-blocking: the socket is fresh, so one byte always fits. Throws on failure.
 */
export function sendDescriptor(socket: number, status: number, fd: number | null): void {
  checkSupported();
  const a = (arena ??= new Arena());
  const v = a.reset(status, fd === null ? 0 : CONTROL_SPACE);
  if (fd !== null) {
    v.setBigUint64(CONTROL, 20n, true); // cmsg_len = CMSG_LEN(4)
    v.setInt32(CONTROL + 8, SOL_SOCKET, true);
    v.setInt32(CONTROL + 12, SCM_RIGHTS, true);
    v.setInt32(CONTROL + 16, fd, true);
  }
  const n = sendmsg(socket, a.bytes, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n !== 1) throw n < 0 ? osError(errno(), "sendmsg") : new OSError("sendmsg sent nothing", "EAGAIN");
}

/** What recvDescriptor() found: nothing yet, the end of the stream, or a status byte (+ fd). */
export type Received = "again" | "eof" | { status: number; fd: number | null };

/**
 * Receive one status byte and at most one descriptor (close-on-exec), without blocking.
 * Anything unexpected in the control data closes what arrived and throws.
 */
export function recvDescriptor(socket: number): Received {
  checkSupported();
  const a = (arena ??= new Arena());
  const v = a.reset(0, CONTROL_SPACE);
  const n = recvmsg(socket, a.bytes, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n < 0) {
    const error = osError(errno(), "recvmsg");
    if (error.code === "EAGAIN" || error.code === "EINTR") return "again";
    throw error;
  }
  if (n === 0) return "eof";
  const status = a.bytes[PAYLOAD]!;
  const controlLength = Number(v.getBigUint64(MSGHDR + 40, true));
  const truncated = (v.getInt32(MSGHDR + 48, true) & MSG_CTRUNC) !== 0;
  if (controlLength === 0) {
    if (truncated) throw new OSError("the descriptor was dropped on arrival (MSG_CTRUNC: too many open files?)", "EMFILE");
    return { status, fd: null };
  }
  const length = Number(v.getBigUint64(CONTROL, true));
  const level = v.getInt32(CONTROL + 8, true);
  const type = v.getInt32(CONTROL + 12, true);
  const fd = v.getInt32(CONTROL + 16, true);
  if (level !== SOL_SOCKET || type !== SCM_RIGHTS || length !== 20) {
    if (level === SOL_SOCKET && type === SCM_RIGHTS) for (let at = 16; at + 4 <= length; at += 4) closeFd(v.getInt32(CONTROL + at, true));
    throw new OSError(`invalid control data received (level ${level}, type ${type}, length ${length})`, "EPROTO");
  }
  if (truncated) {
    closeFd(fd);
    throw new OSError("control data truncated while receiving a descriptor", "EMSGSIZE");
  }
  return { status, fd };
}
