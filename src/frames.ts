// Socket chunks → frames. The wasm codec finds the frame boundaries (one call per chunk);
// this side turns its table into message bodies:
//  - a frame wholly inside a chunk is a view of that chunk: Bun hands every data() callback
//    a fresh ArrayBuffer, so the view is safe and costs no copy;
//  - a frame spanning chunks is assembled in a buffer that grows with the bytes that really
//    arrive (never sized from the claimed length alone), each byte copied once;
//  - a chunk wholly inside a body is never copied into wasm memory at all.
import { codec, heap, input, INPUT_SIZE, table, TABLE_ENTRIES, ENTRY_SIZE, takeState, giveState, sendBlocks } from "./wasm.ts";

const FRAME = 0;
const BEGIN = 1;
const PART = 2;
const END = 3;
const ERROR = 4;
const ENTRY_WORDS = ENTRY_SIZE / 4;

/** Where decoded frames go. */
export interface FrameSink {
  /** A complete message body. */
  frame(body: Uint8Array): void;
  /** A frame of `length` bytes started arriving (its body is not complete yet). */
  begin(length: number): void;
  /** The stream carried a length no CPython sender writes; nothing after it can be trusted. */
  invalid(length: number): void;
}

/** A message body being assembled across chunks; its storage grows with the bytes received. */
class Assembly {
  private buffer: ArrayBuffer;
  private bytes: Uint8Array;
  filled = 0;
  constructor(readonly length: number) {
    // A resizable buffer grows in place (address space is reserved, memory is committed
    // only as it is touched), so a lying header costs nothing until bytes arrive.
    this.buffer = new ArrayBuffer(0);
    if (length <= 2 ** 32) {
      try {
        this.buffer = new ArrayBuffer(0, { maxByteLength: length });
      } catch {
        // Out of address space: fall back to copying growth below.
      }
    }
    this.bytes = new Uint8Array(this.buffer);
  }
  append(chunk: Uint8Array, start: number, end: number): void {
    const need = this.filled + (end - start);
    if (this.buffer.resizable) {
      this.buffer.resize(Math.min(this.length, Math.max(need, this.filled * 2, 65536)));
    } else if (need > this.bytes.byteLength) {
      const next = new Uint8Array(Math.min(this.length, Math.max(need, this.filled * 2)));
      next.set(this.bytes.subarray(0, this.filled));
      this.bytes = next;
    }
    if (this.buffer.resizable) this.bytes = new Uint8Array(this.buffer, 0, this.buffer.byteLength);
    this.bytes.set(chunk.subarray(start, end), this.filled);
    this.filled = need;
  }
  finish(): Uint8Array {
    if (this.buffer.resizable) return new Uint8Array(this.buffer, 0, this.length);
    return this.bytes.subarray(0, this.length);
  }
}

export class FrameDecoder {
  private state = takeState();
  private assembly: Assembly | null = null;
  private failed = false;

  constructor(private readonly sink: FrameSink) {}

  /** Decode one received chunk, reporting every frame it completes. */
  push(chunk: Uint8Array): void {
    if (this.failed || chunk.byteLength === 0) return;
    let at = 0;
    // Inside a long body: take the bytes directly, without a trip through wasm memory.
    const left = codec.remaining(this.state);
    if (left > 0) {
      const take = Math.min(left, chunk.byteLength);
      this.assembly!.append(chunk, 0, take);
      if (codec.skipBody(this.state, take) === 1) this.complete();
      at = take;
    }
    while (at < chunk.byteLength && !this.failed) at += this.scan(chunk, at);
  }

  /** What the end of the stream means here: "clean" between messages, else "truncated". */
  eof(): "clean" | "truncated" {
    return codec.eofKind(this.state) === 0 ? "clean" : "truncated";
  }

  dispose(): void {
    if (this.state < 0) return;
    giveState(this.state);
    this.state = -1;
    this.assembly = null;
  }

  /** Copy up to INPUT_SIZE bytes of `chunk` from `start` into wasm memory and decode them. */
  private scan(chunk: Uint8Array, start: number): number {
    const len = Math.min(chunk.byteLength - start, INPUT_SIZE);
    heap.u8.set(start === 0 && len === chunk.byteLength ? chunk : chunk.subarray(start, start + len), input);
    const n = codec.decode(this.state, input, len, table, TABLE_ENTRIES);
    const used = codec.consumed();
    const t32 = heap.u32;
    const t64 = heap.f64;
    const sink = this.sink;
    for (let i = 0, w = table >>> 2; i < n; i++, w += ENTRY_WORDS) {
      const kind = t32[w]!;
      const offset = start + t32[w + 1]!;
      const length = t64[(w >>> 1) + 1]!;
      if (kind === FRAME) {
        sink.frame(chunk.subarray(offset, offset + length));
      } else if (kind === BEGIN) {
        this.assembly = new Assembly(length);
        sink.begin(length);
      } else if (kind === PART) {
        this.assembly!.append(chunk, offset, offset + length);
      } else if (kind === END) {
        this.assembly!.append(chunk, offset, offset + length);
        this.complete();
      } else if (kind === ERROR) {
        this.failed = true;
        sink.invalid(length);
        return len;
      }
    }
    return used;
  }

  private complete(): void {
    const body = this.assembly!.finish();
    this.assembly = null;
    this.sink.frame(body);
  }
}

/** Largest body that goes through a FrameBatch; larger ones are written on their own. */
export const BATCH_BODY_MAX = 64 * 1024;

/**
 * Outgoing frames of one tick, packed into one block of wasm memory as header+body pairs.
 * Bodies are copied in as they are sent; the headers of the whole batch are written by a
 * single wasm call when the batch is sealed, and the block goes to the socket in one write.
 * Layout of a block: a table of u32 body lengths, then the frames.
 */
export class FrameBatch {
  static readonly MAX_FRAMES = 4096;
  private static readonly FRAMES_AT = FrameBatch.MAX_FRAMES * 4;

  private block = -1;
  private end = 0;
  /** Frames in the batch. */
  count = 0;
  /** Bytes of the batch, headers included. */
  bytes = 0;

  /**
   * Where to write a body of `size` bytes (an offset into heap.u8), or -1 when it does not
   * fit in what is left of this batch. Call commit(size) once the body is written there.
   */
  reserve(size: number): number {
    if (this.block < 0) {
      this.block = sendBlocks.take();
      this.end = this.block + sendBlocks.size;
    }
    const at = this.block + FrameBatch.FRAMES_AT + this.bytes + 4;
    if (this.count === FrameBatch.MAX_FRAMES || at + size > this.end) return -1;
    return at;
  }

  /** Room for a body at the reserved offset (for encoders that write in place). */
  room(): number {
    return this.block < 0 ? 0 : this.end - (this.block + FrameBatch.FRAMES_AT + this.bytes + 4);
  }

  commit(size: number): void {
    heap.u32[(this.block >>> 2) + this.count] = size;
    this.count++;
    this.bytes += 4 + size;
  }

  /** Copy `body` in as one frame; false when it does not fit. */
  add(body: Uint8Array): boolean {
    const at = this.reserve(body.byteLength);
    if (at < 0) return false;
    heap.u8.set(body, at);
    this.commit(body.byteLength);
    return true;
  }

  /** Write every header; returns the offset of the framed bytes in heap.u8 (length: `bytes`). */
  seal(): number {
    const start = this.block + FrameBatch.FRAMES_AT;
    codec.encodeBatch(this.block, this.count, start);
    return start;
  }

  /** Empty the batch, keeping its block for the next tick's frames. */
  clear(): void {
    this.count = 0;
    this.bytes = 0;
  }

  /** Give the block back to the pool (when the connection goes idle or closes). */
  release(): void {
    this.clear();
    if (this.block >= 0) sendBlocks.give(this.block);
    this.block = -1;
  }
}

const headerScratch = new Uint8Array(12);
/** The header of one frame of `size` bytes (4 bytes, or 12 past 0x7fffffff), as a fresh copy. */
export function frameHeader(size: number): Uint8Array {
  const n = codec.encodeHeader(0, size);
  headerScratch.set(heap.u8.subarray(0, n));
  return headerScratch.slice(0, n);
}
