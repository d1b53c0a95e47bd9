// Warm memory for what recvBytes returns (docs/large-messages.md, "What recvBytes returns").
// Fresh memory is paid in page faults at its first touch, many times the cost of the copy on
// this machine; so the memory of a large received message is a slot of this pool, handed out
// again once the garbage collector has released the buffer that used it. The slot stays mapped
// and its pages stay in place: the next message lands in warm memory.
//
// The release is seen through a native deallocator (release.ts) that sets the slot's flag byte,
// so a slot is reused only when the buffer's memory is really released — also when the buffer
// was transferred elsewhere, which a FinalizationRegistry on the buffer object would not see.
// The flags live in a page mapped once and never unmapped: a release that comes late (a
// buffer transferred to a worker) writes to valid memory.
//
// The collector does not count this memory as its own and so may run late; before mapping a
// slot, the pool asks for a collection (what CPython's reference counting does at once) when
// the slots in use pass a budget, or, for a large slot (64 MiB on), when one in use would fit
// it: a young-generation collection (bun:jsc's edenGC, synchronous; Bun.gc(false) only schedules
// one), and if that freed none (the dropped buffers may have been promoted), a full one. That
// costs milliseconds, where mapping the slot afresh costs a page fault per 2 MiB to 4 KiB of it,
// and two results of a huge message would otherwise be resident side by side.
// A collection that freed nothing (the user keeps what it received) is not asked for again until
// the pool has mapped as many bytes since as that collection found alive, so keeping results
// costs a collection per doubling, not one per message. Past a hard cap the pool gives up (null:
// the caller takes ordinary memory).
//
// Free slots are unmapped after a quiet spell (nothing taken for IDLE_MS), so a process that
// stopped receiving keeps none of this memory.
import { read, type Pointer } from "bun:ffi";
import { edenGC } from "bun:jsc";
import { isMainThread } from "node:worker_threads";
import { externalBuffer, hugePageLength, mapHugePages, mapPages, supported, unmapPages, viewOf } from "../os/shm.ts";
import { compileRelease } from "./release.ts";

const MiB = 1024 * 1024;
/** Free slots kept beyond this are unmapped at once (all of them after IDLE_MS without a take). */
const KEEP_FREE = 512 * MiB;
/** Slots in use past which a collection is asked for before mapping more. */
const COLLECT_FROM = 256 * MiB;
/** A slot from this size on is worth a collection as soon as one in use would fit it. */
const LARGE_FROM = 64 * MiB;
/** After this long without a take, every free slot is unmapped. */
const IDLE_MS = 2000;
/** Slots in use past which the pool maps no more. */
const HARD_CAP = 1024 * MiB;
const MAX_SLOTS = 4096; // one page of flags

interface Slot {
  index: number;
  address: number;
  length: number;
}

class Pool {
  private slots: Slot[] = [];
  private vacant: number[] = [];
  private nextIndex = 0;
  private readonly flags: Uint8Array;
  /** Bytes in use that the last collection found alive (0: it freed a slot). */
  private alive = 0;
  /** Bytes mapped since that collection. */
  private grown = 0;
  private taken = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly flagsAddress: number,
    private readonly release: Pointer,
  ) {
    // Written from JavaScript through this view; read with read.u8, which the JIT cannot
    // forward a cached value through (the deallocator writes behind its back).
    this.flags = viewOf(flagsAddress, MAX_SLOTS);
  }

  /** A buffer of `size` bytes in a slot (contents left over: the caller writes every byte), or null. */
  take(size: number): Uint8Array | null {
    const length = hugePageLength(size);
    let slot = this.fitting(length, true);
    if (slot) this.alive = this.grown = 0; // results are being dropped: collections pay again
    else if (this.worthCollecting(length)) slot = this.collect(length);
    if (!slot) slot = this.map(length);
    if (!slot) return null;
    this.flags[slot.index] = 0;
    this.trim(KEEP_FREE);
    this.taken = true;
    if (this.timer === null) this.arm();
    return externalBuffer(slot.address, size, this.release, this.flagsAddress + slot.index);
  }

  /**
   * Whether to ask for a collection before mapping a slot of `length`: when the slots in use pass
   * the budget, or for a large slot as soon as one in use would fit it (a huge result the user
   * dropped) — unless the last collection found everything alive and the pool has not grown by
   * as much since.
   */
  private worthCollecting(length: number): boolean {
    if (this.grown + length <= this.alive) return false;
    if (this.bytes(false) + length > COLLECT_FROM) return true;
    return length >= LARGE_FROM && this.fitting(length, false) !== null;
  }

  /** Ask the collector for the buffers dropped since; a free slot of `length`, or null. */
  private collect(length: number): Slot | null {
    // Synchronous both: Bun.gc(false) would only ask for a collection later.
    edenGC();
    let slot = this.fitting(length, true);
    if (!slot) {
      Bun.gc(true);
      slot = this.fitting(length, true);
    }
    this.alive = slot ? 0 : this.bytes(false);
    this.grown = 0;
    return slot;
  }

  private arm(): void {
    this.timer = setTimeout(this.idle, IDLE_MS);
    this.timer.unref?.();
  }

  /** Every IDLE_MS while slots are mapped: unmap the free ones when nothing was taken since. */
  private readonly idle = (): void => {
    this.timer = null;
    if (!this.taken) this.trim(0);
    this.taken = false;
    if (this.slots.length > 0) this.arm();
  };

  /** Slots mapped (for tests). */
  get mapped(): number {
    return this.slots.length;
  }

  /** Whether `address` is the start of a slot in use (for tests). */
  inUse(address: number): boolean {
    return this.slots.some((s) => s.address === address && !this.isFree(s));
  }

  /** Bytes of the slots free (true) or in use (false). */
  bytes(free: boolean): number {
    let n = 0;
    for (const s of this.slots) if (this.isFree(s) === free) n += s.length;
    return n;
  }

  private isFree(slot: Slot): boolean {
    return read.u8(this.flagsAddress as Pointer, slot.index) === 1;
  }

  /** The smallest slot, free or in use, that fits `length` without wasting more than half of it. */
  private fitting(length: number, free: boolean): Slot | null {
    let best: Slot | null = null;
    for (const s of this.slots) {
      if (s.length >= length && s.length <= 2 * length && this.isFree(s) === free && (!best || s.length < best.length)) best = s;
    }
    return best;
  }

  private map(length: number): Slot | null {
    if (this.bytes(false) + length > HARD_CAP) return null;
    const index = this.vacant.pop() ?? (this.nextIndex < MAX_SLOTS ? this.nextIndex++ : -1);
    if (index < 0) return null;
    const slot = { index, address: mapHugePages(length), length };
    this.slots.push(slot);
    this.grown += length;
    return slot;
  }

  /** Unmap free slots, largest first, until at most `keep` bytes of them remain. */
  private trim(keep: number): void {
    let free = this.bytes(true);
    if (free <= keep) return;
    for (const s of [...this.slots].sort((a, b) => b.length - a.length)) {
      if (free <= keep) break;
      if (!this.isFree(s)) continue;
      unmapPages(s.address, s.length);
      this.slots.splice(this.slots.indexOf(s), 1);
      this.vacant.push(s.index);
      free -= s.length;
    }
  }
}

let pool: Pool | null | undefined;

/**
 * The process's pool, or null where it cannot be had: not Linux, no compiler for bun:ffi's cc, or
 * a worker thread (a buffer transferred out of a worker may be released after the worker ended,
 * and the code and flags its release writes through must outlive it: only the main thread's do).
 */
export function resultPool(): Pool | null {
  if (pool !== undefined) return pool;
  pool = null;
  if (!supported || !isMainThread) return pool;
  try {
    pool = new Pool(mapPages(MAX_SLOTS), compileRelease());
  } catch {
    // No compiler at run time (bun:ffi's cc is experimental): results are fresh memory instead.
  }
  return pool;
}
