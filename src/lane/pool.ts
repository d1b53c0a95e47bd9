// Warm memory for what recvBytes returns (docs/large-messages.md, "What recvBytes returns").
// Fresh memory is paid in page faults at its first touch, many times the cost of the copy on
// this machine; so the memory of a large received message is a slot of this pool, handed out
// again once the garbage collector has released the buffer that used it. The slot stays mapped
// and its pages stay in place: the next message lands in warm memory.
//
// The release is seen through a native deallocator (release.c) that sets the slot's flag byte,
// so a slot is reused only when the buffer's memory is really released — also when the buffer
// was transferred elsewhere, which a FinalizationRegistry on the buffer object would not see.
// The flags live in a page mapped once and never unmapped: a release that comes late (a
// buffer transferred to a worker) writes to valid memory.
//
// The collector does not count this memory as its own and so may run late; when the slots in
// use pass a budget and none is free, the pool asks for a young-generation collection once
// (what CPython's reference counting does at once), and past a hard cap it gives up (null).
import { cc, read, type Pointer } from "bun:ffi";
import { fileURLToPath } from "node:url";
import { externalBuffer, hugePageLength, mapHugePages, mapPages, supported, unmapPages, viewOf } from "../os/shm.ts";

const MiB = 1024 * 1024;
/** Free slots kept beyond this are unmapped. */
const KEEP_FREE = 256 * MiB;
/** Slots in use past which a collection is asked for before mapping more. */
const COLLECT_FROM = 256 * MiB;
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
    let slot = this.free(length);
    if (!slot && this.bytes(false) + length > COLLECT_FROM) {
      Bun.gc(false);
      slot = this.free(length);
    }
    if (!slot) slot = this.map(length);
    if (!slot) return null;
    this.flags[slot.index] = 0;
    this.trim();
    return externalBuffer(slot.address, size, this.release, this.flagsAddress + slot.index);
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

  /** The smallest free slot that fits `length` without wasting more than half of it. */
  private free(length: number): Slot | null {
    let best: Slot | null = null;
    for (const s of this.slots) {
      if (s.length >= length && s.length <= 2 * length && this.isFree(s) && (!best || s.length < best.length)) best = s;
    }
    return best;
  }

  private map(length: number): Slot | null {
    if (this.bytes(false) + length > HARD_CAP) return null;
    const index = this.vacant.pop() ?? (this.nextIndex < MAX_SLOTS ? this.nextIndex++ : -1);
    if (index < 0) return null;
    const slot = { index, address: mapHugePages(length), length };
    this.slots.push(slot);
    return slot;
  }

  /** Unmap free slots, largest first, until at most KEEP_FREE bytes of them remain. */
  private trim(): void {
    let free = this.bytes(true);
    if (free <= KEEP_FREE) return;
    for (const s of [...this.slots].sort((a, b) => b.length - a.length)) {
      if (free <= KEEP_FREE) break;
      if (!this.isFree(s)) continue;
      unmapPages(s.address, s.length);
      this.slots.splice(this.slots.indexOf(s), 1);
      this.vacant.push(s.index);
      free -= s.length;
    }
  }
}

let pool: Pool | null | undefined;

/** The process's pool, or null where it cannot be had (not Linux, no bun:ffi cc, no release.c). */
export function resultPool(): Pool | null {
  if (pool !== undefined) return pool;
  pool = null;
  if (!supported) return pool;
  try {
    const source = fileURLToPath(new URL("./release.c", import.meta.url));
    const compiled = cc({ source, symbols: { mpconn_lane_release: { args: ["ptr", "ptr"], returns: "void" } } });
    const release = (compiled.symbols.mpconn_lane_release as unknown as { ptr: Pointer }).ptr;
    pool = new Pool(mapPages(MAX_SLOTS), release);
  } catch {
    // No compiler at run time (a bundled executable, another platform): results are fresh memory.
  }
  return pool;
}
