// Fresh memory for what the lane copies out of a region: the buffer recvBytes returns, and the
// copy a send keeps while it waits for room. Fresh memory is paid in page faults on its first
// touch (docs/large-messages.md has this machine's figures), so large buffers go on huge pages:
//  - from 4 MiB: an ordinary buffer, its huge-page-aligned part advised before the copy touches it;
//  - from 1 MiB: a mapping of whole huge pages of its own (below 4 MiB the aligned part of an
//    ordinary buffer is often empty). The garbage collector unmaps these but does not count them,
//    so at most BUDGET bytes of them are out at once; past it, an ordinary buffer.
//  - below 1 MiB: an ordinary buffer.
import { freshBuffer, hugePageBuffer, hugePageLength, supported } from "../os/shm.ts";

const MiB = 1024 * 1024;
const BUDGET = 256 * MiB;

let outstanding = 0;
const collected = new FinalizationRegistry<number>((length) => {
  outstanding -= length;
});

/** A new zeroed buffer of `size` bytes for a message. */
export function messageBuffer(size: number): Uint8Array {
  if (size < MiB || !supported) return new Uint8Array(size);
  const length = hugePageLength(size);
  if (size >= 4 * MiB || outstanding + length > BUDGET) return freshBuffer(size);
  const bytes = hugePageBuffer(size);
  outstanding += length;
  collected.register(bytes.buffer, length);
  return bytes;
}
