// Socket chunks → frames (the receiving half of the codec). The wasm codec finds the frame boundaries (one call per chunk);
// this side turns its table into message bodies:
//  - a frame wholly inside a chunk is a view of that chunk: Bun hands every data() callback
//    a fresh ArrayBuffer, so the view is safe and costs no copy;
//  - a frame spanning chunks is copied piece by piece into its final buffer (a waiting
//    receive's own buffer when it has one), each byte once, with memory growing only with
//    the bytes that really arrive;
//  - a chunk wholly inside a body is never copied into wasm memory at all.
import {
  consumed,
  declared,
  decodeWindow,
  entries,
  eofKind,
  giveState,
  header,
  headerSoFar,
  remaining,
  skipBody,
  takeState,
  WINDOW_MAX,
} from "./codec.ts";

const FRAME = 0;
const BEGIN = 1;
const PART = 2;
const END = 3;
const ERROR = 4;

/** Chunks are decoded in slices of at most this much (entry offsets have 24 bits). */
const SLICE_MAX = 1 << 24;
/** Copy window while frames are small: many headers per wasm call. */
const WIDE = 64 * 1024;
/** Copy window once frames are large: just a header; bodies are measured, never copied in. */
const NARROW = 16;
/** Average frame size above which copying bodies into wasm costs more than a call per frame. */
const LARGE_FRAME = 1024;

/**
 * Where decoded frames go. `frame`, `frames` and `begin` may return false: take nothing more
 * from this stream (the decoder stops its loop and drops what follows). A sink acts on such a
 * decision in `settle`, once the chunk is done, never in the middle of it.
 */
export interface FrameSink {
  /** A complete message body. */
  frame(body: Uint8Array): boolean | void;
  /**
   * Several whole messages at once: bodies at (base + table[2i], table[2i + 1]) of `buffer`.
   * Lets a sink queue a chunk's messages as the codec's own table, making no view per message.
   */
  frames?(buffer: Uint8Array, base: number, table: Uint32Array): boolean | void;
  /** A frame of `length` bytes started arriving (its body is not complete yet). */
  begin(length: number): boolean | void;
  /**
   * Where that body should be written, when the sink knows already (a receive waiting with its
   * own buffer): `length` bytes that nothing else touches until the frame is reported.
   */
  destination?(length: number): Uint8Array | undefined;
  /** The stream carried a length no CPython sender writes; nothing after it can be trusted. */
  invalid(length: number): void;
  /** A chunk has been decoded: the moment to act on what it brought. */
  settle?(): void;
}

/** A body up to this size gets its final buffer as soon as its header arrives. */
const EAGER_MAX = 1 << 20;
/** A larger one, once this fraction of it arrived: a header alone never costs more than its bytes. */
const EAGER_SHARE = 8;

/**
 * A message body arriving across chunks, copied piece by piece into its final buffer (a
 * waiting receive's own buffer when the sink names one) as its chunks arrive, so that each
 * chunk can go at once and each byte is copied once. A claim is not trusted: the pieces of a
 * large body stay views of their chunks until an eighth of it arrived (a fresh buffer costs
 * time when the allocator hands back memory it must zero), then move into the buffer; if the
 * allocator refuses it, the pieces are joined at the end.
 */
class Assembly {
  private parts: Uint8Array[] | null = null;
  private filled = 0;
  private body: Uint8Array | null;

  constructor(
    readonly length: number,
    target: Uint8Array | undefined,
  ) {
    this.body = target ?? (length <= EAGER_MAX ? new Uint8Array(length) : null);
    if (this.body === null) this.parts = [];
  }

  append(chunk: Uint8Array, start: number, end: number): void {
    const piece = start === 0 && end === chunk.byteLength ? chunk : chunk.subarray(start, end);
    if (this.parts === null) this.body!.set(piece, this.filled);
    else {
      this.parts.push(piece);
      if ((this.filled + piece.byteLength) * EAGER_SHARE >= this.length) this.settle();
    }
    this.filled += piece.byteLength;
  }

  finish(): Uint8Array {
    if (this.parts !== null) this.join(new Uint8Array(this.length));
    return this.body!;
  }

  /** The body bytes received so far, as copies (src/processes/fdpass moves them with the connection). */
  received(): Uint8Array[] {
    return this.parts ?? [this.body!.slice(0, this.filled)];
  }

  /** Enough arrived: move the pieces into the final buffer, and copy the rest straight there. */
  private settle(): void {
    try {
      this.join(new Uint8Array(this.length));
    } catch {
      // Refused (a claim past what memory allows): keep the pieces; finish() joins them, or fails.
    }
  }

  private join(body: Uint8Array): void {
    let at = 0;
    for (const part of this.parts!) {
      body.set(part, at);
      at += part.byteLength;
    }
    this.parts = null;
    this.body = body;
  }
}

/** Chunks pushed while another decoder is reporting frames wait here (the table is shared). */
const deferred: Array<[FrameDecoder, Uint8Array]> = [];
let dispatching = false;

export class FrameDecoder {
  private state = takeState();
  private assembly: Assembly | null = null;
  /** Nothing more is decoded: the stream was invalid, the sink refused it, or dispose() ran. */
  private stopped = false;
  /** Inside decode(): dispose() then only stops the loop, which releases the state on its way out. */
  private busy = false;
  private disposed = false;
  private window = WIDE;

  private readonly lazy: boolean;

  constructor(private readonly sink: FrameSink) {
    this.lazy = typeof sink.frames === "function";
  }

  /** Decode one received chunk, reporting every frame it completes. */
  push(chunk: Uint8Array): void {
    if (dispatching) {
      deferred.push([this, chunk]);
      return;
    }
    dispatching = true;
    try {
      this.decode(chunk);
      while (deferred.length > 0) {
        const [decoder, next] = deferred.shift()!;
        decoder.decode(next);
      }
    } finally {
      dispatching = false;
    }
  }

  /** What the end of the stream means here: "clean" between messages, else "truncated". */
  eof(): "clean" | "truncated" {
    if (this.state < 0) return "clean";
    return eofKind(this.state) === 0 ? "clean" : "truncated";
  }

  /**
   * The raw bytes of a frame that has begun arriving but is not complete (none between
   * frames): its header and the body so far. A connection passed to another process takes
   * them along (src/processes/fdpass).
   */
  pending(): Uint8Array[] {
    if (this.stopped) return [];
    if (this.assembly !== null) return [header(this.assembly.length), ...this.assembly.received()];
    const gathered = headerSoFar(this.state);
    return gathered.byteLength === 0 ? [] : [gathered];
  }

  /** Decode nothing more and give the state back; safe from inside a sink call. */
  dispose(): void {
    this.stopped = true;
    this.disposed = true;
    if (!this.busy) this.release();
  }

  private release(): void {
    if (this.state < 0) return;
    giveState(this.state);
    this.state = -1;
    this.assembly = null;
  }

  private decode(chunk: Uint8Array): void {
    if (this.stopped) return;
    this.busy = true;
    try {
      this.loop(chunk);
    } finally {
      this.busy = false;
      if (this.disposed) this.release();
    }
    if (!this.disposed) this.sink.settle?.();
  }

  private loop(chunk: Uint8Array): void {
    const len = chunk.byteLength;
    let at = 0;
    while (at < len && !this.stopped) {
      if (this.assembly !== null) {
        // Inside a long body: take the bytes directly, without a trip through wasm memory.
        const take = Math.min(remaining(this.state), len - at);
        this.assembly.append(chunk, at, at + take);
        at += take;
        if (skipBody(this.state, take) === 1) this.complete();
        continue;
      }
      at += this.slice(chunk, at, Math.min(len - at, SLICE_MAX));
    }
  }

  /** Decode a window of the chunk at `start` and report its entries; returns bytes consumed. */
  private slice(chunk: Uint8Array, start: number, total: number): number {
    const avail = Math.min(total, this.window, WINDOW_MAX);
    const n = decodeWindow(this.state, chunk, start, avail, total);
    const used = consumed();
    const sink = this.sink;
    // Whole frames come first, usually all of them: hand those over as one copy of the
    // table (a FRAME entry's first word is its offset), then take the rest one by one.
    let i = 0;
    let table = entries;
    if (this.lazy) {
      while (i < n && table[2 * i]! >>> 24 === FRAME) i++;
      if (i > 0 && sink.frames!(chunk, start, table.slice(0, 2 * i)) === false) this.stopped = true;
    }
    // Every sink call may stop the loop (the sink refused the stream, or its owner disposed us).
    for (; i < n && !this.stopped; i++) {
      // A sink may grow codec memory (by sending), which detaches old views: look again.
      if (table.byteLength === 0) table = entries;
      const head = table[2 * i]!;
      const length = table[2 * i + 1]!;
      const kind = head >>> 24;
      const offset = start + (head & 0xffffff);
      if (kind === FRAME) {
        if (sink.frame(chunk.subarray(offset, offset + length)) === false) this.stopped = true;
      } else if (kind === BEGIN) {
        const size = declared(this.state);
        if (sink.begin(size) === false) this.stopped = true;
        else this.assembly = new Assembly(size, sink.destination?.(size));
      } else if (kind === PART) {
        this.assembly!.append(chunk, offset, offset + length);
      } else if (kind === END) {
        this.assembly!.append(chunk, offset, offset + length);
        this.complete();
      } else {
        this.stopped = true;
        sink.invalid(kind === ERROR ? length | 0 : declared(this.state));
        return total;
      }
    }
    // Large frames: copy only a header's worth next time; small ones: many at once.
    this.window = n > 0 && used >= n * LARGE_FRAME ? NARROW : WIDE;
    return used;
  }

  private complete(): void {
    const body = this.assembly!.finish();
    this.assembly = null;
    if (this.sink.frame(body) === false) this.stopped = true;
  }
}
