// Message bodies → frames (the sending half of the codec): batches of small frames whose
// headers the wasm codec writes in one call, and single headers for large bodies.
import { header, SendBlock } from "./codec.ts";

/** Largest body that goes through a FrameBatch; larger ones are written on their own. */
export const BATCH_BODY_MAX = 16 * 1024;

const BLOCK_SIZE = SendBlock.SIZE;
const MAX_FRAMES = 4096;
/** Where the frames start in a block: after the table of MAX_FRAMES body lengths. */
const FRAMES_AT = MAX_FRAMES * 4;
const EMPTY = new Uint8Array(new ArrayBuffer(0));
const EMPTY_TABLE = new Uint32Array(new ArrayBuffer(0));

/** Framed bytes a write queue keeps until the kernel takes them. */
export interface Held {
  /** The bytes, as a view to use at once (codec memory may move). */
  view(): Uint8Array;
  /** The kernel took them all: the memory goes back. */
  release(): void;
}

/**
 * Outgoing frames of one tick, packed into one block of codec memory as header+body pairs.
 * Bodies are copied in as they are sent; the headers of the whole batch are written by a
 * single wasm call when the batch is sealed, and the block goes to the socket in one write.
 */
export class FrameBatch {
  static readonly MAX_FRAMES = MAX_FRAMES;
  /** Bytes of frames, headers included, that one batch holds. */
  static readonly ROOM = BLOCK_SIZE - FRAMES_AT;

  private block: SendBlock | null = null;
  /**
   * The block's bytes and its table of body lengths, as views: empty while there is no block,
   * and emptied by a grow of codec memory, so add()'s bounds check also notices a stale view.
   */
  private out: Uint8Array = EMPTY;
  private lengths: Uint32Array = EMPTY_TABLE;
  /** Where the next frame's header goes, in the block. */
  private next = FRAMES_AT;
  /** Frames in the batch. */
  count = 0;

  /** Bytes of the batch, headers included. */
  get bytes(): number {
    return this.next - FRAMES_AT;
  }

  /** Copy `body` in as one frame; false when it does not fit. */
  add(body: Uint8Array): boolean {
    const size = body.byteLength;
    const at = this.next + 4;
    const out = this.out;
    if (at + size > out.byteLength || this.count === MAX_FRAMES) return this.addFresh(body);
    out.set(body, at);
    this.lengths[this.count++] = size;
    this.next = at + size;
    return true;
  }

  /** add() for a batch without a block, or whose views a grow emptied; false when the frame does not fit. */
  private addFresh(body: Uint8Array): boolean {
    if (this.out.byteLength !== 0) return false;
    const block = this.block ?? (this.block = SendBlock.take());
    this.out = block.bytes();
    this.lengths = block.lengths(MAX_FRAMES);
    return this.add(body);
  }

  /** Write every header; the framed bytes (`bytes` of them), as a view to use at once. */
  seal(): Uint8Array {
    if (this.block === null) return new Uint8Array(0);
    this.block.encode(this.count, FRAMES_AT);
    return this.block.view(FRAMES_AT, FRAMES_AT + this.bytes);
  }

  /** Empty the batch, keeping its block for the next frames. */
  clear(): void {
    this.count = 0;
    this.next = FRAMES_AT;
  }

  /**
   * The sealed bytes from `from` on, for a write queue, and a fresh start for the batch. The
   * block itself goes along while the process holds few; past that, a copy (memory never shrinks).
   */
  keep(from: number): Held {
    const block = this.block!;
    const start = FRAMES_AT + from;
    const end = this.next;
    this.clear();
    if (block.hold()) {
      this.drop();
      return { view: () => block.view(start, end), release: () => block.unhold() };
    }
    const copy = block.view(start, end).slice();
    return { view: () => copy, release() {} };
  }

  /** Give the block back (when the connection goes idle or closes). */
  release(): void {
    this.block?.give();
    this.drop();
    this.clear();
  }

  private drop(): void {
    this.block = null;
    this.out = EMPTY;
    this.lengths = EMPTY_TABLE;
  }
}

/** The header of one frame of `size` bytes (4 bytes, or 12 past 0x7fffffff), as a fresh copy. */
export function frameHeader(size: number): Uint8Array {
  return header(size);
}
