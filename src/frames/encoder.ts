// Message bodies → frames (the sending half of the codec): batches of small frames whose
// headers the wasm codec writes in one call, and single headers for large bodies.
import { codec, sendBlocks, u8, u32 } from "./codec.ts";

/** Largest body that goes through a FrameBatch; larger ones are written on their own. */
export const BATCH_BODY_MAX = 16 * 1024;

/**
 * Outgoing frames of one tick, packed into one block of wasm memory as header+body pairs.
 * Bodies are copied in as they are sent; the headers of the whole batch are written by a
 * single wasm call when the batch is sealed, and the block goes to the socket in one write.
 * Layout of a block: a table of u32 body lengths, then the frames.
 */
export class FrameBatch {
  static readonly MAX_FRAMES = 4096;
  private static readonly FRAMES_AT = FrameBatch.MAX_FRAMES * 4;

  /** Offset of the block in wasm memory, -1 when the batch holds none. */
  block = -1;
  private end = 0;
  /** Offset where the next frame's header goes. */
  private next = 0;
  /** Frames in the batch. */
  count = 0;
  /** Bytes of the batch, headers included. */
  bytes = 0;

  /**
   * Where to write a body of `size` bytes (an offset into the wasm memory), or -1 when it
   * does not fit in what is left of this batch. Call commit(size) once the body is there.
   */
  reserve(size: number): number {
    if (this.block < 0) this.open();
    const at = this.next + 4;
    if (this.count === FrameBatch.MAX_FRAMES || at + size > this.end) return -1;
    return at;
  }

  /** Room for a body at the reserved offset (for encoders that write in place). */
  room(): number {
    return this.block < 0 ? 0 : this.end - this.next - 4;
  }

  commit(size: number): void {
    u32[(this.block >>> 2) + this.count++] = size;
    this.next += 4 + size;
    this.bytes += 4 + size;
  }

  /** Copy `body` in as one frame; false when it does not fit. */
  add(body: Uint8Array): boolean {
    if (this.block < 0) this.open();
    const size = body.byteLength;
    const at = this.next + 4;
    if (at + size > this.end || this.count === FrameBatch.MAX_FRAMES) return false;
    u8.set(body, at);
    u32[(this.block >>> 2) + this.count++] = size;
    this.next = at + size;
    this.bytes += 4 + size;
    return true;
  }

  /** Write every header; returns the offset of the framed bytes in wasm memory (length: `bytes`). */
  seal(): number {
    const start = this.block + FrameBatch.FRAMES_AT;
    codec.encodeBatch(this.block, this.count, start);
    return start;
  }

  /** Empty the batch, keeping its block for the next frames. */
  clear(): void {
    this.count = 0;
    this.bytes = 0;
    this.next = this.block + FrameBatch.FRAMES_AT;
  }

  /** Hand the block over (to a write queue that still needs its bytes) and start afresh. */
  detach(): number {
    const block = this.block;
    this.block = -1;
    this.count = 0;
    this.bytes = 0;
    return block;
  }

  /** Give the block back to the pool (when the connection goes idle or closes). */
  release(): void {
    if (this.block >= 0) sendBlocks.give(this.detach());
  }

  private open(): void {
    this.block = sendBlocks.take();
    this.end = this.block + sendBlocks.size;
    this.clear();
  }
}

const headerScratch = new Uint8Array(12);
/** The header of one frame of `size` bytes (4 bytes, or 12 past 0x7fffffff), as a fresh copy. */
export function frameHeader(size: number): Uint8Array {
  const n = codec.encodeHeader(0, size);
  headerScratch.set(u8.subarray(0, n));
  return headerScratch.slice(0, n);
}
