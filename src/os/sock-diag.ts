// Which socket is at the other end of a unix socket: the kernel's socket diagnostics
// (NETLINK_SOCK_DIAG, UNIX_DIAG_PEER), as `ss -x` uses them. Linux only. The lane's negotiation
// for Connection.fromFd() relies on it (docs/large-messages.md, "Negotiation").
//
//   request:  nlmsghdr (16 bytes: length, type SOCK_DIAG_BY_FAMILY, flags NLM_F_REQUEST, seq, pid)
//             unix_diag_req (24 bytes: family AF_UNIX, protocol 0, pad, states ~0, inode,
//             show UDIAG_SHOW_PEER, cookie ~0 ~0)
//   answer:   nlmsghdr, unix_diag_msg (16 bytes), then attributes (u16 length, u16 type, value):
//             UNIX_DIAG_PEER's value is the peer's inode (u32)
import { fstatSync } from "node:fs";
import { closeFd, openSocket, recv, send } from "./libc.ts";

const AF_NETLINK = 16;
const SOCK_DGRAM = 2;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLMSG_ERROR = 2;
const AF_UNIX = 1;
const UDIAG_SHOW_PEER = 4;
const UNIX_DIAG_PEER = 2;
const MSG_DONTWAIT = 0x40;

/** The inode of the socket `fd` (what /proc/PID/fd/N shows as socket:[inode]). */
export function inodeOf(fd: number): number {
  return Number(fstatSync(fd).ino);
}

/** The inode of the socket connected to unix socket `fd`, or null when the kernel does not say. */
export function peerInode(fd: number): number | null {
  if (process.platform !== "linux") return null;
  let diag: number;
  try {
    diag = openSocket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
  } catch {
    return null; // no sock_diag here (a container without it, say)
  }
  try {
    const request = new Uint8Array(40);
    const view = new DataView(request.buffer);
    view.setUint32(0, 40, true);
    view.setUint16(4, SOCK_DIAG_BY_FAMILY, true);
    view.setUint16(6, NLM_F_REQUEST, true);
    view.setUint32(8, 1, true);
    request[16] = AF_UNIX;
    view.setUint32(20, 0xffffffff, true); // every state
    view.setUint32(24, inodeOf(fd), true);
    view.setUint32(28, UDIAG_SHOW_PEER, true);
    view.setUint32(32, 0xffffffff, true);
    view.setUint32(36, 0xffffffff, true);
    send(diag, request, 0);
    // The kernel answers while it handles the request: the answer is there already.
    const answer = new Uint8Array(8192);
    const n = recv(diag, answer, MSG_DONTWAIT);
    if (n < 32) return null;
    const a = new DataView(answer.buffer, 0, n);
    if (a.getUint16(4, true) === NLMSG_ERROR) return null;
    for (let at = 32; at + 8 <= Math.min(n, a.getUint32(0, true)); ) {
      const length = a.getUint16(at, true);
      if (length < 4) break;
      if (a.getUint16(at + 2, true) === UNIX_DIAG_PEER && length >= 8) return a.getUint32(at + 4, true);
      at += (length + 3) & ~3;
    }
    return null;
  } catch {
    return null;
  } finally {
    closeFd(diag);
  }
}
