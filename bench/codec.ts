// Micro-benchmark: the wasm framing path (FrameDecoder, FrameBatch) against plain TypeScript
// doing the same work, in one process, interleaved, medians of several repetitions.
//   bun bench/codec.ts [--quick]
// Decode: the same ~256 KiB chunks, each holding whole frames, turned into body views.
// Encode: the same bodies packed as header+body into one buffer ready for a single write.
import { FrameDecoder, type FrameSink } from "../src/frames/decoder.ts";
import { FrameBatch } from "../src/frames/encoder.ts";
import { encodeFrames } from "../test/fixtures/reference-framer.ts";

export interface CodecBenchRow {
  op: "decode" | "encode";
  /** Body size in bytes. */
  size: number;
  /** Median ns per frame through the wasm codec. */
  wasmNs: number;
  /** Median ns per frame through the TypeScript framer. */
  tsNs: number;
  /** wasmNs / tsNs: above 1 means wasm is slower. */
  ratio: number;
}

const SIZES = [64, 4096];
const CHUNK = 256 * 1024;

/** Both sides hand every body here, so neither can skip making it. */
let seenFrames = 0;
let seenBytes = 0;
function see(body: Uint8Array): void {
  seenFrames++;
  seenBytes += body.byteLength;
}

function body(size: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, j) => (seed * 31 + j) & 0xff);
}

/** `count` chunks of about CHUNK bytes, each a whole number of frames of `size` bytes. */
function makeChunks(size: number, count: number): Uint8Array[] {
  const perChunk = Math.max(1, Math.floor(CHUNK / (size + 4)));
  return Array.from({ length: count }, (_, c) => encodeFrames(Array.from({ length: perChunk }, (_, i) => body(size, c + i))));
}

/**
 * The TypeScript decoder for the same case FrameDecoder's fast path handles: frames inside
 * one chunk become views of it. Headers are checked as strictly as the codec does; frames
 * spanning chunks never occur in this workload, so that path is left out.
 */
function tsDecode(chunk: Uint8Array, frame: (body: Uint8Array) => void): void {
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const end = chunk.byteLength;
  let at = 0;
  while (end - at >= 4) {
    let size = view.getInt32(at);
    let bodyAt = at + 4;
    if (size < 0) {
      if (size !== -1 || end - at < 12) throw new Error("bench: unexpected header");
      const long = view.getBigUint64(at + 4);
      if (long > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error("bench: unexpected header");
      size = Number(long);
      bodyAt = at + 12;
    }
    if (end - bodyAt < size) throw new Error("bench: frame spans chunks");
    frame(chunk.subarray(bodyAt, bodyAt + size));
    at = bodyAt + size;
  }
  if (at !== end) throw new Error("bench: frame spans chunks");
}

/** The TypeScript encoder: headers with DataView, bodies with set(), into one reused buffer. */
class TsBatch {
  private readonly out: Uint8Array;
  private readonly view: DataView;
  bytes = 0;
  constructor(capacity: number) {
    this.out = new Uint8Array(capacity);
    this.view = new DataView(this.out.buffer);
  }
  add(body: Uint8Array): boolean {
    const at = this.bytes;
    if (at + 4 + body.byteLength > this.out.byteLength) return false;
    this.view.setInt32(at, body.byteLength);
    this.out.set(body, at + 4);
    this.bytes = at + 4 + body.byteLength;
    return true;
  }
  /** The framed bytes, as a view (what would go to socket.write). */
  seal(): Uint8Array {
    return this.out.subarray(0, this.bytes);
  }
  clear(): void {
    this.bytes = 0;
  }
}

/** ns per frame of `run`, which reports how many frames it handled. */
function time(run: () => number): number {
  const start = Bun.nanoseconds();
  const frames = run();
  return (Bun.nanoseconds() - start) / frames;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Contender {
  wasm: () => number;
  ts: () => number;
}

function decodeContender(size: number, megabytes: number): Contender {
  const chunks = makeChunks(size, 8);
  const passes = Math.max(1, Math.round((megabytes * 2 ** 20) / (chunks.length * CHUNK)));
  const sink: FrameSink = {
    frame: see,
    begin() {},
    invalid(length) {
      throw new Error(`bench: invalid length ${length}`);
    },
  };
  const decoder = new FrameDecoder(sink);
  return {
    wasm() {
      const before = seenFrames;
      for (let p = 0; p < passes; p++) for (const chunk of chunks) decoder.push(chunk);
      return seenFrames - before;
    },
    ts() {
      const before = seenFrames;
      for (let p = 0; p < passes; p++) for (const chunk of chunks) tsDecode(chunk, see);
      return seenFrames - before;
    },
  };
}

function encodeContender(size: number, megabytes: number): Contender {
  const bodies = Array.from({ length: 64 }, (_, i) => body(size, i));
  const frames = Math.max(bodies.length, Math.round((megabytes * 2 ** 20) / (size + 4)));
  const batch = new FrameBatch();
  // The same capacity as the wasm send block, so both flush after the same frames.
  const capacity = FrameBatch.ROOM;
  const ts = new TsBatch(capacity);
  const flushWasm = (): void => {
    see(batch.seal());
    batch.clear();
  };
  const flushTs = (): void => {
    see(ts.seal());
    ts.clear();
  };
  return {
    wasm() {
      for (let i = 0; i < frames; i++) {
        const next = bodies[i & 63]!;
        if (!batch.add(next)) {
          flushWasm();
          batch.add(next);
        }
      }
      flushWasm();
      return frames;
    },
    ts() {
      for (let i = 0; i < frames; i++) {
        const next = bodies[i & 63]!;
        if (!ts.add(next)) {
          flushTs();
          ts.add(next);
        }
      }
      flushTs();
      return frames;
    },
  };
}

/** Before timing anything: both sides must produce the same bytes. */
function checkEquivalence(): void {
  for (const size of SIZES) {
    const chunk = makeChunks(size, 1)[0]!;
    const fromWasm: Uint8Array[] = [];
    const fromTs: Uint8Array[] = [];
    const decoder = new FrameDecoder({ frame: (b) => void fromWasm.push(b), begin() {}, invalid() {} });
    decoder.push(chunk);
    decoder.dispose();
    tsDecode(chunk, (b) => fromTs.push(b));
    const same = fromWasm.length === fromTs.length && fromWasm.every((b, i) => Buffer.from(b).equals(fromTs[i]!));
    if (!same) throw new Error(`bench: decoders disagree at ${size} B`);

    const bodies = Array.from({ length: 10 }, (_, i) => body(size, i));
    const batch = new FrameBatch();
    const ts = new TsBatch(1 << 20);
    for (const b of bodies) batch.add(b), ts.add(b);
    const same2 = Buffer.from(batch.seal()).equals(ts.seal());
    batch.release();
    if (!same2) throw new Error(`bench: encoders disagree at ${size} B`);
  }
}

export async function runCodecBench(options: { quick?: boolean } = {}): Promise<CodecBenchRow[]> {
  const repetitions = options.quick ? 3 : 9;
  const megabytes = options.quick ? 8 : 32;
  checkEquivalence();
  const rows: CodecBenchRow[] = [];
  for (const op of ["decode", "encode"] as const) {
    for (const size of SIZES) {
      const contender = op === "decode" ? decodeContender(size, megabytes) : encodeContender(size, megabytes);
      // Warm up both paths (JIT tiers, first memory growth) before measuring.
      contender.wasm();
      contender.ts();
      const wasm: number[] = [];
      const ts: number[] = [];
      for (let r = 0; r < repetitions; r++) {
        // Alternate who goes first, so neither always runs on a warmer cache.
        if (r % 2 === 0) {
          wasm.push(time(contender.wasm));
          ts.push(time(contender.ts));
        } else {
          ts.push(time(contender.ts));
          wasm.push(time(contender.wasm));
        }
        // Let the event loop breathe between repetitions (and GC run off the timed path).
        await Bun.sleep(0);
      }
      const wasmNs = median(wasm);
      const tsNs = median(ts);
      rows.push({ op, size, wasmNs, tsNs, ratio: wasmNs / tsNs });
    }
  }
  return rows;
}

function printTable(rows: readonly CodecBenchRow[]): void {
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(7) : c.padStart(12))).join(" ");
  console.log(line(["op", "body", "wasm ns/fr", "TS ns/fr", "wasm/TS"]));
  for (const r of rows) {
    const size = r.size >= 1024 ? `${r.size / 1024} KiB` : `${r.size} B`;
    const flag = r.ratio > 1 ? "  ← wasm slower" : "";
    console.log(line([r.op, size, r.wasmNs.toFixed(1), r.tsNs.toFixed(1), `${r.ratio.toFixed(2)}×`]) + flag);
  }
}

if (import.meta.main) {
  const quick = process.argv.includes("--quick");
  const rows = await runCodecBench({ quick });
  printTable(rows);
  // Keeps every body "used"; also a sanity line for whoever reads the output.
  console.log(`(${seenFrames} frames, ${(seenBytes / 2 ** 20).toFixed(0)} MiB seen)`);
}
