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
  decodeGuessed,
  decodeHeaders,
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
/** Places guessed at first, and at most (the entry table's size). */
const GUESS_MIN = 16;
const GUESS_MAX = 8192;
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
   * `count` whole messages at once: bodies at (base + table[2i], table[2i + 1]) of `buffer`.
   * Lets a sink queue a chunk's messages as a copy of the codec's table, making no view per
   * message. `table` is the codec's own: valid during the call only.
   */
  frames?(buffer: Uint8Array, base: number, table: Uint32Array, count: number): boolean | void;
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
    private readonly allocate: Allocate,
  ) {
    this.body = target ?? (length <= EAGER_MAX ? allocate(length) : null);
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
    if (this.parts !== null) this.join(this.allocate(this.length));
    return this.body!;
  }

  /** The body bytes received so far, as copies (src/processes/fdpass moves them with the connection). */
  received(): Uint8Array[] {
    return this.parts ?? [this.body!.slice(0, this.filled)];
  }

  /** Enough arrived: move the pieces into the final buffer, and copy the rest straight there. */
  private settle(): void {
    try {
      this.join(this.allocate(this.length));
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

/** The length field of a shared-memory lane notice (src/lane/notices.ts): -2, then a u32 length. */
const NOTICE = -2;
/** A notice body is a few dozen bytes; anything much longer is not one. */
const NOTICE_MAX = 4096;

/**
 * A lane notice being read: the rest of its 4-byte marker (still in the stream when the codec
 * stopped in front of it), its 4-byte length, then its body. The codec reports the marker as an
 * invalid length and leaves its state between frames, so decoding resumes after the body.
 */
class NoticeReader {
  private readonly length = new Uint8Array(4);
  private got = 0;
  body: Uint8Array | null = null;
  private filled = 0;

  constructor(private skip: number) {}

  /** Take what belongs to the notice from chunk[at, end); returns the bytes taken, or -1 for a length past NOTICE_MAX. */
  take(chunk: Uint8Array, at: number, end: number): number {
    const start = at;
    const skipped = Math.min(this.skip, end - at);
    this.skip -= skipped;
    at += skipped;
    while (this.got < 4 && at < end) this.length[this.got++] = chunk[at++]!;
    if (this.got < 4) return at - start;
    if (this.body === null) {
      const size = new DataView(this.length.buffer).getUint32(0);
      if (size > NOTICE_MAX) return -1;
      this.body = new Uint8Array(size);
    }
    const n = Math.min(this.body.byteLength - this.filled, end - at);
    this.body.set(chunk.subarray(at, at + n), this.filled);
    this.filled += n;
    return at + n - start;
  }

  get complete(): boolean {
    return this.body !== null && this.filled === this.body.byteLength;
  }
}
/**
 * Where a body received across chunks is put: a buffer of `size` bytes that the decoder fills
 * entirely before handing it on (its previous contents do not matter). May throw when memory
 * is refused. The connection passes warm pooled memory for large bodies; the default is fresh.
 */
export type Allocate = (size: number) => Uint8Array;
const fresh: Allocate = (size) => new Uint8Array(size);

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
  private notice: NoticeReader | null = null;
  /**
   * Registered by a connection with the shared-memory lane: the body of each frame with the
   * notice marker goes here (false: take nothing more). Without it such a frame is invalid, as
   * it is for CPython.
   */
  notices: ((body: Uint8Array) => boolean) | null = null;
  /** Frames are large: decode header by header (decodeHeaders) rather than window by window. */
  private sparse = false;
  /** Header and body size of the recent frames when they keep one size (guessing pays), else 0. */
  private stride = 0;
  /** How many places the next decodeGuessed() copies: doubles while the guesses hold. */
  private guesses = GUESS_MIN;
  /** The last decodeSome() found its frames at guessed places, `stride` apart. */
  private guessed = false;

  private readonly lazy: boolean;

  constructor(
    private readonly sink: FrameSink,
    private readonly allocate: Allocate = fresh,
  ) {
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
    if (this.notice !== null) return "truncated";
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
      if (this.notice !== null) {
        at += this.readNotice(chunk, at, len);
        continue;
      }
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
    const n = this.decodeSome(chunk, start, total);
    const used = consumed(this.state);
    const sink = this.sink;
    // Whole frames come first, usually all of them: hand those over as the table itself (a
    // FRAME entry's first word is its offset), then take the rest one by one.
    let i = 0;
    let table = entries;
    if (this.lazy) {
      while (i < n && table[2 * i]! >>> 24 === FRAME) i++;
      if (i > 0 && sink.frames!(chunk, start, table, i) === false) this.stopped = true;
    } else if (this.guessed) {
      // Frames found at guessed places: each but the last is `stride - 4` bytes, `stride` after
      // the one before (the codec checked each guess where the previous frame ended), so their
      // views need no table, and the codec wrote only the last one's entry, which may differ:
      // the loop below takes it.
      const stride = this.stride;
      const size = stride - 4;
      for (let offset = start + 4; i < n - 1; i++, offset += stride) {
        if (sink.frame(chunk.subarray(offset, offset + size)) === false) this.stopped = true;
        if (this.stopped) return used;
      }
    } else {
      // The same run of whole frames, one view each, in a loop that does nothing else.
      for (; i < n; i++) {
        const head = table[2 * i]!;
        if (head >>> 24 !== FRAME) break;
        const offset = start + head;
        const refused = sink.frame(chunk.subarray(offset, offset + table[2 * i + 1]!)) === false;
        if (refused) this.stopped = true;
        if (this.stopped) return used;
        if (table.byteLength === 0) table = entries;
      }
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
        else this.assembly = new Assembly(size, sink.destination?.(size), this.allocate);
      } else if (kind === PART) {
        this.assembly!.append(chunk, offset, offset + length);
      } else if (kind === END) {
        this.assembly!.append(chunk, offset, offset + length);
        this.complete();
      } else if (kind === ERROR && (length | 0) === NOTICE && this.notices !== null) {
        // On the fast path the codec stopped in front of the marker; gathering it across
        // chunks, it consumed it (and reported offset 0 with at least one byte used).
        this.notice = new NoticeReader(used === (head & 0xffffff) ? 4 : 0);
        return used;
      } else {
        this.stopped = true;
        sink.invalid(kind === ERROR ? length | 0 : declared(this.state));
        return total;
      }
    }
    // Large frames: copy only headers next time; small ones: whole windows.
    this.sparse = n > 0 && used >= n * LARGE_FRAME;
    return used;
  }

  /** Feed a notice being read; hands it over once whole. Returns the bytes taken. */
  private readNotice(chunk: Uint8Array, at: number, end: number): number {
    const notice = this.notice!;
    const taken = notice.take(chunk, at, end);
    if (taken < 0) {
      this.stopped = true;
      this.notice = null;
      this.sink.invalid(NOTICE);
      return end - at;
    }
    if (notice.complete) {
      this.notice = null;
      if (this.notices!(notice.body!) === false) this.stopped = true;
    }
    return taken;
  }

  /**
   * One wasm pass over the slice, the cheapest that fits the frames seen so far: frames of one
   * size are decoded from their guessed headers alone (decodeGuessed, checked by the codec);
   * otherwise small frames a window at a time, bodies and all (decodeWindow), and large ones
   * header by header (decodeHeaders). Returns the number of entries.
   */
  private decodeSome(chunk: Uint8Array, start: number, total: number): number {
    const state = this.state;
    const stride = this.stride;
    if (stride > 0) {
      const count = Math.min(this.guesses, GUESS_MAX, Math.ceil(total / stride));
      const n = decodeGuessed(state, chunk, start, total, stride, count, this.lazy);
      // All right, or all but the last (usually a frame that runs past the chunk): guess more.
      this.guesses = n >= count - 1 ? Math.min(this.guesses * 2, GUESS_MAX) : GUESS_MIN;
      this.guessed = n > 0;
      // Not one frame of the guessed size (the codec wrote the last entry, here the only one):
      // the size changed; learn it again from the next window instead of one frame per call.
      if (n === 1 && entries[1] !== stride - 4) this.stride = 0;
      if (n > 0) return n;
    }
    this.guessed = false;
    const n = this.sparse ? decodeHeaders(state, chunk, start, total) : decodeWindow(state, chunk, start, Math.min(total, WIDE, WINDOW_MAX), total);
    // Learn the frames' size: guessing pays when the first and last whole frames agree.
    const table = entries;
    let last = n - 1;
    while (last >= 0 && table[2 * last]! >>> 24 !== FRAME) last--;
    if (last >= 0) this.stride = table[1] === table[2 * last + 1] && table[0]! >>> 24 === FRAME ? table[1]! + 4 : 0;
    return n;
  }

  private complete(): void {
    const body = this.assembly!.finish();
    this.assembly = null;
    if (this.sink.frame(body) === false) this.stopped = true;
  }
}
