// The owner of the wasm codec (assembly/codec.ts, embedded as codec-wasm.ts): one instance per
// process, and the layout of its memory. The codec never allocates; every region it works on
// is handed out here, and nothing else computes an address in its memory. The layout
// (docs/internals.md, "The codec's memory"):
//
//   page 0            reserved: nothing is ever written there (a stray offset 0 would show)
//   input  (1 MiB)    one received window at a time, decoded and forgotten
//   table  (64 KiB)   decode()'s entries for that window
//   state pages       decoder states, STATE_SIZE bytes each, plus the header scratch
//   send blocks       2 pages each: one outgoing batch per connection that sends in this tick
//
// Memory only grows, and growing detaches every view of it: views are made again after each
// grow, and a caller uses a view at once or asks again.
import { CODEC_WASM } from "./codec-wasm.ts";

interface CodecExports {
  memory: WebAssembly.Memory;
  STATE_SIZE: WebAssembly.Global;
  ENTRY_SIZE: WebAssembly.Global;
  reset(state: number): void;
  remaining(state: number): number;
  skipBody(state: number, n: number): number;
  eofKind(state: number): number;
  declared(state: number): number;
  decode(state: number, src: number, avail: number, total: number, table: number, maxEntries: number, origin: number): number;
  decodeGuessed(state: number, heads: number, count: number, stride: number, total: number, table: number, maxEntries: number, origin: number, listAll: number): number;
  encodeBatch(lengths: number, n: number, dst: number): number;
  encodeHeader(dst: number, size: number): number;
}

function load(): CodecExports {
  // The module is embedded (src/frames/codec-wasm.ts), so bundles and compiled binaries carry it.
  const bytes = Uint8Array.from(atob(CODEC_WASM), (c) => c.charCodeAt(0));
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as CodecExports;
}

const wasm = load();
const PAGE = 65536;
const STATE_SIZE: number = wasm.STATE_SIZE.value;
const ENTRY_SIZE: number = wasm.ENTRY_SIZE.value;

// The module's initial pages (its static data) are never handed out: every region below comes
// from memory.grow(), so nothing JavaScript asks for can land at address 0.
const INPUT_SIZE = 1 << 20;
const TABLE_ENTRIES = 8192;
const INPUT = wasm.memory.grow(INPUT_SIZE / PAGE) * PAGE;
const TABLE = wasm.memory.grow((TABLE_ENTRIES * ENTRY_SIZE) / PAGE) * PAGE;

let u8: Uint8Array;
let u32: Uint32Array;
/**
 * decode()'s entry table, two u32 per entry: kind << 24 | offset, then length (see
 * assembly/codec.ts). A live binding: a view taken before a sink call may have been detached
 * by a grow inside it; look again when its byteLength is 0.
 */
export let entries: Uint32Array;

function views(): void {
  u8 = new Uint8Array(wasm.memory.buffer);
  u32 = new Uint32Array(wasm.memory.buffer);
  entries = u32.subarray(TABLE >>> 2, (TABLE >>> 2) + 2 * TABLE_ENTRIES);
}
views();

/** `pages` fresh pages at the end of memory (every view is made again); their address. */
function grow(pages: number): number {
  const first = wasm.memory.grow(pages);
  views();
  return first * PAGE;
}

// ---- decoding ---------------------------------------------------------------------------

/** The longest window of a chunk one decode() call looks at. */
export const WINDOW_MAX = INPUT_SIZE;
/** The longest header: the 4-byte -1 marker and an 8-byte length. */
const HEADER_MAX = 12;
const FRAME = 0;

/**
 * Copy chunk[start, start + avail) into the input region and decode it as the first `avail`
 * of `total` bytes (the rest are body bytes the codec only counts). Returns the number of
 * entries written to `entries`; consumed() says how far into the chunk it got.
 */
export function decodeWindow(state: number, chunk: Uint8Array, start: number, avail: number, total: number): number {
  u8.set(start === 0 && avail === chunk.byteLength ? chunk : chunk.subarray(start, start + avail), INPUT);
  return wasm.decode(state, INPUT, avail, total, TABLE, TABLE_ENTRIES, 0);
}

/**
 * Decode `total` bytes of a chunk from `start` when its frames are large: only each header's
 * bytes are copied in, one decode() call per frame, and the entries of every call go into
 * one table, so the caller handles them as one batch. Stops at the first entry that is not a
 * whole frame, or when the table is full. Returns the number of entries; consumed() as above.
 */
export function decodeHeaders(state: number, chunk: Uint8Array, start: number, total: number): number {
  const memory = u8;
  const words = u32;
  let n = 0;
  let at = 0;
  let wide = false;
  for (;;) {
    // Usually a 4-byte header: its bytes move as one word (copied as they are, not parsed: typed
    // arrays and wasm memory are both little-endian on every platform Bun runs on);
    // the 12-byte form, a header cut by the chunk's end, or a window decode() asked to widen,
    // byte by byte.
    const rest = total - at;
    let avail = 4;
    const from = start + at;
    if (rest >= 4 && !wide) {
      words[INPUT >>> 2] = chunk[from]! | (chunk[from + 1]! << 8) | (chunk[from + 2]! << 16) | (chunk[from + 3]! << 24);
    } else {
      avail = rest < HEADER_MAX ? rest : HEADER_MAX;
      for (let i = 0; i < avail; i++) memory[INPUT + i] = chunk[from + i]!;
    }
    const found = wasm.decode(state, INPUT, avail, rest, TABLE + n * ENTRY_SIZE, TABLE_ENTRIES - n, at);
    const next = words[(state >>> 2) + 10]!;
    // Nothing found and nothing consumed: the header is longer than the window (-1 + 8 bytes).
    wide = found === 0 && next === at && avail < rest;
    if (wide) continue;
    n += found;
    at = next;
    // Go on past a whole frame only: anything else (a long body begun, an error, a header cut
    // by the chunk's end) ends the batch, and the caller handles it.
    if (found === 0 || at >= total || n + 2 > TABLE_ENTRIES) return n;
    if (words[(TABLE >>> 2) + 2 * (n - 1)]! >>> 24 !== FRAME) return n;
  }
}

/**
 * Decode `total` bytes of a chunk from `start` when frames keep one size (`stride` bytes with
 * their header): the 4 bytes at each of `count` places `stride` apart are copied in, as they
 * are, and the codec checks every guess before it uses it, stopping at the first wrong one.
 * No body byte is copied. Returns the number of frames found (0 when the first place holds no
 * plain frame); consumed() as above. All but the last are `stride - 4` bytes, `stride` apart:
 * without `listAll`, only the last one's entry is written (at its index).
 */
export function decodeGuessed(state: number, chunk: Uint8Array, start: number, total: number, stride: number, count: number, listAll: boolean): number {
  const words = u32;
  const heads = INPUT >>> 2;
  const end = start + total;
  let k = 0;
  // Byte reads, not a DataView: a view of the chunk would make Bun materialize its ArrayBuffer.
  for (let at = start; k < count && at + 4 <= end; k++, at += stride) {
    words[heads + k] = chunk[at]! | (chunk[at + 1]! << 8) | (chunk[at + 2]! << 16) | (chunk[at + 3]! << 24);
  }
  return wasm.decodeGuessed(state, INPUT, k, stride, total, TABLE, TABLE_ENTRIES, 0, listAll ? 1 : 0);
}

/** Bytes of the slice the last decodeWindow(), decodeHeaders() or decodeGuessed() consumed. */
export const consumed = (state: number): number => u32[(state >>> 2) + 10]!;
export const remaining = (state: number): number => wasm.remaining(state);
export const skipBody = (state: number, n: number): number => wasm.skipBody(state, n);
export const declared = (state: number): number => wasm.declared(state);
/** 0: the stream may end here (a clean EOF); 1: a message would be cut short. */
export const eofKind = (state: number): number => wasm.eofKind(state);

/** Decoder states, STATE_SIZE bytes each, carved from whole pages. */
const freeStates: number[] = [];
/** A fresh decoder state: an opaque handle that the functions above take. */
export function takeState(): number {
  if (freeStates.length === 0) {
    const page = grow(1);
    for (let at = page + PAGE - STATE_SIZE; at >= page; at -= STATE_SIZE) freeStates.push(at);
  }
  const state = freeStates.pop()!;
  wasm.reset(state);
  return state;
}
export function giveState(state: number): void {
  freeStates.push(state);
}

/** The header bytes a state has gathered of a frame not yet begun (state record +4 count, +8 bytes). */
export function headerSoFar(state: number): Uint8Array {
  const have = u32[(state >>> 2) + 1]!;
  return u8.slice(state + 8, state + 8 + have);
}

// ---- encoding ---------------------------------------------------------------------------

/** Where encodeHeader writes: 12 bytes of its own, taken like a decoder state. */
const scratch = takeState();

/** The header of one frame of `size` bytes (4 bytes, or 12 past 0x7fffffff), as a fresh copy. */
export function header(size: number): Uint8Array {
  const n = wasm.encodeHeader(scratch, size);
  return u8.slice(scratch, scratch + n);
}

/**
 * A block of memory lent to one outgoing batch: a table of u32 body lengths (`tableSize`
 * entries), then the frames, whose headers encodeBatch() writes in one call. Offsets given
 * to its methods are relative to the block.
 */
export class SendBlock {
  static readonly SIZE = 2 * PAGE;
  /** Blocks given back, kept as they are: a connection that sends now and then allocates nothing. */
  private static readonly free: SendBlock[] = [];
  /** Blocks held by write queues, process-wide (see hold()). */
  private static held = 0;
  /** Beyond this many held blocks, queued bytes are copied out: memory never shrinks. */
  private static readonly MAX_HELD = 256;

  private constructor(private readonly at: number) {}

  static take(): SendBlock {
    return SendBlock.free.pop() ?? new SendBlock(grow(SendBlock.SIZE / PAGE));
  }

  /**
   * The whole block as bytes, and its first `entries` u32 as the table of body lengths: views
   * that a grow of codec memory detaches (their byteLength becomes 0), so a caller keeps them
   * only as long as their byteLength says they are live.
   */
  bytes(): Uint8Array {
    return u8.subarray(this.at, this.at + SendBlock.SIZE);
  }
  lengths(entries: number): Uint32Array {
    return u32.subarray(this.at >>> 2, (this.at >>> 2) + entries);
  }

  /** Write the headers of `count` frames placed from `offset` on. */
  encode(count: number, offset: number): void {
    wasm.encodeBatch(this.at, count, this.at + offset);
  }

  /** Bytes [start, end) of the block, as a view of the current memory: use it at once. */
  view(start: number, end: number): Uint8Array {
    return u8.subarray(this.at + start, this.at + end);
  }

  /** Keep the block for a write queue, when the process-wide allowance lets it: false when not. */
  hold(): boolean {
    if (SendBlock.held >= SendBlock.MAX_HELD) return false;
    SendBlock.held++;
    return true;
  }

  /** Give a held block back. */
  unhold(): void {
    SendBlock.held--;
    this.give();
  }

  /** Give the block back for the next batch to use. */
  give(): void {
    SendBlock.free.push(this);
  }
}
