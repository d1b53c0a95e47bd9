// Loads the AssemblyScript codec (assembly/codec.ts, embedded as codec-wasm.ts) once per
// process and hands out regions of its memory. The codec never allocates: every offset it
// sees comes from here.
import { CODEC_WASM } from "./codec-wasm.ts";

interface CodecExports {
  memory: WebAssembly.Memory;
  STATE_SIZE: WebAssembly.Global;
  ENTRY_SIZE: WebAssembly.Global;
  consumed(): number;
  reset(state: number): void;
  remaining(state: number): number;
  skipBody(state: number, n: number): number;
  eofKind(state: number): number;
  declared(state: number): number;
  decode(state: number, src: number, avail: number, total: number, table: number, maxEntries: number): number;
  encodeBatch(lengths: number, n: number, dst: number): number;
  encodeHeader(dst: number, size: number): number;
}

function load(): CodecExports {
  // The module is embedded (src/frames/codec-wasm.ts), so bundles and compiled binaries carry it.
  const bytes = Uint8Array.from(atob(CODEC_WASM), (c) => c.charCodeAt(0));
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as CodecExports;
}

export const codec = load();
export const STATE_SIZE: number = codec.STATE_SIZE.value;
export const ENTRY_SIZE: number = codec.ENTRY_SIZE.value;

const PAGE = 65536;
/** Views of the codec's memory. memory.grow() detaches old views; these ES module bindings
 * are reassigned after every grow, so importers always see the current ones. */
export let u8 = new Uint8Array(codec.memory.buffer);
export let u32 = new Uint32Array(codec.memory.buffer);

function grow(pages: number): number {
  const first = codec.memory.grow(pages);
  u8 = new Uint8Array(codec.memory.buffer);
  u32 = new Uint32Array(codec.memory.buffer);
  return first * PAGE;
}

/**
 * Fixed-size blocks of `pages` pages with a free list: memory cannot shrink, so freed
 * blocks are reused rather than returned.
 */
class BlockPool {
  private free: number[] = [];
  constructor(readonly pages: number) {}
  get size(): number {
    return this.pages * PAGE;
  }
  take(): number {
    return this.free.pop() ?? grow(this.pages);
  }
  give(offset: number): void {
    this.free.push(offset);
  }
}

/** Outgoing batches: one block per connection that is sending in this tick. */
export const sendBlocks = new BlockPool(2);

/** Decoder states, STATE_SIZE bytes each, carved from whole pages. */
const freeStates: number[] = [];
export function takeState(): number {
  if (freeStates.length === 0) {
    const page = grow(1);
    for (let at = page + PAGE - STATE_SIZE; at >= page; at -= STATE_SIZE) freeStates.push(at);
  }
  const state = freeStates.pop()!;
  codec.reset(state);
  return state;
}
export function giveState(state: number): void {
  freeStates.push(state);
}

/** The shared input region: a received chunk is copied here, decoded, and forgotten. */
export const INPUT_SIZE = 1 << 20;
export const TABLE_ENTRIES = 8192;
export const input = grow(INPUT_SIZE / PAGE);
export const table = grow((TABLE_ENTRIES * ENTRY_SIZE) / PAGE);
