// Memory for what the lane copies out of a region: the buffer recvBytes returns, and the copy a
// send keeps while it waits for room. Its first touch would be paid in page faults
// (docs/large-messages.md has this machine's figures), so:
//  - from 1 MiB on it comes from the pool of warm slots (pool.ts), which asks the collector for
//    dropped results before it maps more, so that a dropped huge result's slot is reused rather
//    than a second one made resident beside it;
//  - where there is no pool or the pool is at its cap: fresh memory advised onto huge pages,
//    which the garbage collector owns and counts;
//  - below 1 MiB, an ordinary buffer.
import { freshBuffer } from "../os/shm.ts";
import { resultPool } from "./pool.ts";

const MiB = 1024 * 1024;

/** A buffer of `size` bytes whose every byte the caller writes (its contents may be left over). */
export function messageBuffer(size: number): Uint8Array {
  if (size < MiB) return new Uint8Array(size);
  return resultPool()?.take(size) ?? freshBuffer(size);
}
