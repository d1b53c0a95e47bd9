// How Connection.fromFd(fd, { sharedMemory: true }) learns, without a byte on the socket, that
// the other end is a lane-on mpconn end (docs/large-messages.md, "Negotiation"): each such end
// leaves a marker named after its socket's inode and its pid in a private directory of this user;
// an end asks the kernel for its peer socket's inode (src/os/sock-diag.ts) and looks for a marker
// of it. A marker counts only if its process is alive and holds that very socket, so a stale
// marker (a crash; an inode or a pid used again) never makes an end speak the lane to a stranger.
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getuid } from "../os/libc.ts";
import { inodeOf, peerInode } from "../os/sock-diag.ts";

/** The private directory of this user's markers, or null when it is not safely ours. */
function directory(): string | null {
  const uid = getuid();
  const dir = join(tmpdir(), `mpconn-lane-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch {
    // it exists already: checked below
  }
  try {
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) return null;
  } catch {
    return null;
  }
  return dir;
}

const mine = new Set<string>();
process.on("exit", () => {
  for (const path of mine) {
    try {
      unlinkSync(path);
    } catch {
      // gone already
    }
  }
});

export interface Marker {
  /** Whether the other end of the socket left a live marker (it speaks the lane). */
  readonly peerSpeaksLane: boolean;
  /** Take the marker away (the connection closed, or moves). */
  remove(): void;
}

/** Leave a marker for socket `fd`, then look for the peer's; null where markers cannot work here. */
export function mark(fd: number): Marker | null {
  const dir = directory();
  const peer = peerInode(fd);
  if (dir === null || peer === null) return null;
  const path = join(dir, `${inodeOf(fd)}-${process.pid}`);
  try {
    closeSync(openSync(path, "w", 0o600));
  } catch {
    return null;
  }
  mine.add(path);
  let found = false;
  for (const name of readdirSync(dir)) {
    const [inode, pid] = name.split("-");
    if (Number(inode) === peer && holds(Number(pid), peer)) found = true;
  }
  return {
    peerSpeaksLane: found,
    remove() {
      if (!mine.delete(path)) return;
      try {
        unlinkSync(path);
      } catch {
        // gone already
      }
    },
  };
}

/** Whether process `pid` has socket `inode` open. */
function holds(pid: number, inode: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  const target = `socket:[${inode}]`;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return true;
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // no such process (or not ours to look at)
  }
  return false;
}
