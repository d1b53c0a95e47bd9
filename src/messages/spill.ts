// Warm memory for the bytes of large messages the kernel did not take at once. A send must
// keep the bytes as they were at the call (the caller may overwrite its buffer right after an
// un-awaited sendBytes), so what the kernel refuses is copied. Fresh memory costs a page
// fault per 4 KiB on first touch, far more than the copy itself (docs/internals.md, "Warm
// memory for queued sends"), so the copies go into buffers reused from send to send: a
// burst that queues 256 MiB touches fresh pages once, and the next burst copies at memory
// speed. The pool is let go after a quiet spell, so a process that stopped sending keeps none,
// and at once when a connection's shared-memory lane starts carrying its large messages
// (shedSpill): the lane has memory of its own for them. Letting go returns the pages to the
// kernel there and then (discardPages), not whenever the collector gets to the buffers.
//
// Buffers come in size classes (at least MIN_SIZE), one free list per class.
import { discardPages } from "../os/shm.ts";

/** Smallest buffer handed out: a queued header and a little body share one. */
const MIN_SIZE = 64 * 1024;
/** Free bytes kept at most, process-wide; beyond, given buffers are left to the collector. */
const KEEP_MAX = 512 << 20;
/** After this long without a take or a give, every free buffer is let go. */
const IDLE_MS = 2000;

const free = new Map<number, ArrayBuffer[]>();
let kept = 0;
let used = false;
let timer: ReturnType<typeof setTimeout> | null = null;

/** The size class of a request: four per power of two, so a frame of 1 MiB + 4 takes 1.25 MiB, not 2. */
function sizeFor(bytes: number): number {
  if (bytes <= MIN_SIZE) return MIN_SIZE;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 2);
  return Math.ceil(bytes / step) * step;
}

/** `bytes` bytes of (usually warm) memory, to give back once the kernel took them. */
export function takeSpill(bytes: number): Uint8Array {
  const size = sizeFor(bytes);
  used = true;
  const list = free.get(size);
  const buffer = list?.pop();
  if (buffer !== undefined) {
    kept -= size;
    return new Uint8Array(buffer, 0, bytes);
  }
  return new Uint8Array(size).subarray(0, bytes);
}

/** A buffer from takeSpill() is free again. */
export function giveSpill(bytes: Uint8Array): void {
  used = true;
  const buffer = bytes.buffer as ArrayBuffer;
  const size = buffer.byteLength;
  if (kept + size > KEEP_MAX) return;
  let list = free.get(size);
  if (list === undefined) free.set(size, (list = []));
  list.push(buffer);
  kept += size;
  if (timer === null) {
    timer = setTimeout(trim, IDLE_MS);
    timer.unref?.();
  }
}

/** Let the pool go when nothing was taken or given since the last look. */
function trim(): void {
  timer = null;
  if (used) {
    used = false;
    timer = setTimeout(trim, IDLE_MS);
    timer.unref?.();
    return;
  }
  shedSpill();
}

/**
 * Let every free buffer go now, its pages given back to the kernel at once. Buffers in use stay
 * theirs (they return to the pool when written, and go after the next quiet spell).
 */
export function shedSpill(): void {
  for (const list of free.values()) for (const buffer of list) discardPages(new Uint8Array(buffer));
  free.clear();
  kept = 0;
}

/** Free bytes the pool holds (for tests). */
export function spillKept(): number {
  return kept;
}
