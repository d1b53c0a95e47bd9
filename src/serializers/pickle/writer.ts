// The encoder's output: one growing Uint8Array plus a DataView over it, with CPython's
// framing rules (protocol 4+) built in, so that our bytes equal CPython's.
//
// Framing, as in CPython's _pickle.c: the first write after PROTO (or after a frame was
// committed) reserves a 9-byte FRAME header; before each object is saved, a frame whose
// body has reached 64 KiB is committed. A committed body shorter than 4 bytes loses its
// header (so `None` is just 80 04 4e 2e). Payloads of 64 KiB or more are written outside
// any frame.

import { FRAME, FRAME_HEADER_SIZE, FRAME_SIZE_MIN, FRAME_SIZE_TARGET } from "./opcodes.ts";

export class Writer {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  /** Whether writes go into frames (protocol ≥ 4, between PROTO and the end). */
  framing = false;
  /** Offset of the open frame's reserved header, or -1 when no frame is open. */
  frameStart = -1;

  constructor(capacity = 4096) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes, opening a frame first if one is due. */
  reserve(n: number): void {
    if (this.framing && this.frameStart < 0) {
      this.ensure(FRAME_HEADER_SIZE + n);
      this.frameStart = this.pos;
      this.pos += FRAME_HEADER_SIZE;
      return;
    }
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    // Doubling for a stream of small writes; one large payload gets what it needs plus room
    // for the opcodes after it, instead of a buffer up to twice its size.
    let size = this.buf.length * 2;
    if (size < this.pos + n) size = this.pos + n + 4096;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Called before each object is saved: commits the open frame once it reached the target. */
  boundary(): void {
    if (this.frameStart >= 0 && this.pos - this.frameStart - FRAME_HEADER_SIZE >= FRAME_SIZE_TARGET) {
      this.commitFrame();
    }
  }

  commitFrame(): void {
    const start = this.frameStart;
    if (start < 0) return;
    const len = this.pos - start - FRAME_HEADER_SIZE;
    if (len >= FRAME_SIZE_MIN) {
      this.buf[start] = FRAME;
      this.view.setBigUint64(start + 1, BigInt(len), true);
    } else {
      this.buf.copyWithin(start, start + FRAME_HEADER_SIZE, this.pos);
      this.pos -= FRAME_HEADER_SIZE;
    }
    this.frameStart = -1;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.pos++] = b;
  }

  /** Opcode plus a u8 argument. */
  op8(op: number, arg: number): void {
    this.reserve(2);
    this.buf[this.pos++] = op;
    this.buf[this.pos++] = arg;
  }

  /** Opcode plus a u32le argument. */
  op32(op: number, arg: number): void {
    this.reserve(5);
    this.buf[this.pos] = op;
    this.view.setUint32(this.pos + 1, arg, true);
    this.pos += 5;
  }

  /** Opcode plus a u64le argument. */
  op64(op: number, arg: number): void {
    this.reserve(9);
    this.buf[this.pos] = op;
    this.view.setUint32(this.pos + 1, arg % 0x1_0000_0000, true);
    this.view.setUint32(this.pos + 5, Math.floor(arg / 0x1_0000_0000), true);
    this.pos += 9;
  }

  /** Raw bytes (an ASCII literal such as "c_codecs\nencode\n" given as codes). */
  bytes(data: Uint8Array): void {
    this.reserve(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  /**
   * Called before the header of a str/bytes payload of `size` bytes. One of 64 KiB or more
   * goes outside any frame (CPython's `_Pickler_write_bytes`): the open frame is committed
   * and framing paused; `endPayload` resumes it, so the next write opens a fresh frame.
   */
  beginPayload(size: number): boolean {
    if (!this.framing || size < FRAME_SIZE_TARGET) return false;
    this.commitFrame();
    this.framing = false;
    return true;
  }

  endPayload(bypassed: boolean): void {
    if (bypassed) this.framing = true;
  }

  /** A copy of the output, so the (reused) buffer can be recycled. */
  take(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  reset(): void {
    this.pos = 0;
    this.framing = false;
    this.frameStart = -1;
  }
}
