// The decoder: reads one message straight from the caller's bytes (any Uint8Array view),
// checking every length against what is left, so garbage gives a clear Error, never a hang
// or a huge allocation. Typed arrays and ArrayBuffers get copies of their bytes.

import type { StructuredHooks } from "./hooks.ts";
import { latin1Slice, utf16Slice, utf8Slice } from "./text.ts";
import {
  ARRAY, ARRAYBUFFER, ASCII32, BIGINT64, BIGNEG, BIGPOS, BOXED, DATE, ELEMENT_SIZES, END, EXTERNAL, FALSE, FIXSTR, FLOAT32, FLOAT64,
  HOLE, INT16, INT32, INT8, MAP, MAX_DEPTH, NULL, OBJECT, REF, REGEXP, SET, SHARED, SPARSE, STR32, STR8, TRUE,
  UINT8, UNDEFINED, UTF16, VIEW, VIEW_KINDS,
} from "./tags.ts";

const EMPTY = new Uint8Array(0);
// A DataView for reading floats, made for the first float of a message and kept while
// messages come from the same ArrayBuffer (frames of one socket chunk share it): making one
// costs as much as reading ten floats through it.
let viewBuffer: ArrayBufferLike | null = null;
let view: DataView | null = null;
const VIEW_KEEP = 1 << 20;
const fromCharCode = String.fromCharCode;

// Short ASCII strings (object keys above all) go through a direct-mapped cache, so that the
// same key or value in message after message is one string, made (and hashed, and
// atomized as a property name) once. Making a short string costs ~30 ns; a hit, ~5.
const CACHE_SIZE = 4096;
const CACHED_MAX = 24;
// Keys and values have a table each, so that many distinct values cannot push out the keys.
const keyCache: (string | undefined)[] = new Array<string | undefined>(CACHE_SIZE).fill(undefined);
const valueCache: (string | undefined)[] = new Array<string | undefined>(CACHE_SIZE).fill(undefined);

function cached(cache: (string | undefined)[], buf: Uint8Array, p: number, n: number): string {
  const h = ((n << 7) ^ (buf[p]! << 4) ^ (buf[p + (n >> 1)]! << 1) ^ buf[p + n - 1]! ^ (buf[p + 1]! << 9)) & (CACHE_SIZE - 1);
  const hit = cache[h];
  if (hit !== undefined && hit.length === n) {
    let i = 0;
    while (i < n && hit.charCodeAt(i) === buf[p + i]) i++;
    if (i === n) return hit;
  }
  return (cache[h] = ascii(buf, p, n));
}

export function corrupt(why: string): Error {
  return new Error(`structured: ${why}`);
}
function truncated(): Error {
  return corrupt("truncated data");
}

/** Short ASCII (or Latin-1) bytes as a string. */
function ascii(buf: Uint8Array, p: number, n: number): string {
  switch (n) {
    case 0: return "";
    case 1: return fromCharCode(buf[p]!);
    case 2: return fromCharCode(buf[p]!, buf[p + 1]!);
    case 3: return fromCharCode(buf[p]!, buf[p + 1]!, buf[p + 2]!);
    case 4: return fromCharCode(buf[p]!, buf[p + 1]!, buf[p + 2]!, buf[p + 3]!);
    case 5: return fromCharCode(buf[p]!, buf[p + 1]!, buf[p + 2]!, buf[p + 3]!, buf[p + 4]!);
    case 6: return fromCharCode(buf[p]!, buf[p + 1]!, buf[p + 2]!, buf[p + 3]!, buf[p + 4]!, buf[p + 5]!);
    case 7: return fromCharCode(buf[p]!, buf[p + 1]!, buf[p + 2]!, buf[p + 3]!, buf[p + 4]!, buf[p + 5]!, buf[p + 6]!);
    case 8: return fromCharCode(buf[p]!, buf[p + 1]!, buf[p + 2]!, buf[p + 3]!, buf[p + 4]!, buf[p + 5]!, buf[p + 6]!, buf[p + 7]!);
    default: return latin1Slice(buf, p, p + n);
  }
}

export class Decoder {
  buf: Uint8Array = EMPTY;
  pos = 0;
  end = 0;
  busy = false;
  hooks: StructuredHooks | undefined = undefined;
  private depth = 0;
  /** DataView of buf.buffer once a float was read, and buf.byteOffset. */
  private dv: DataView | null = null;
  private base = 0;
  /** Objects marked SHARED, by the offset of their tag. */
  private shared: Map<number, unknown> | null = null;

  /** Decodes the message in `bytes` (whose first byte is MARKER). */
  run(bytes: Uint8Array, hooks: StructuredHooks | undefined): unknown {
    this.buf = bytes;
    this.pos = 1;
    this.end = bytes.length;
    this.hooks = hooks;
    const v = this.value();
    if (this.pos !== this.end) throw corrupt(`${this.end - this.pos} bytes after the value`);
    return v;
  }

  reset(): void {
    this.buf = EMPTY;
    this.dv = null;
    this.shared = null;
    this.hooks = undefined;
    this.depth = 0;
    this.busy = false;
  }

  value(): unknown {
    const p = this.pos;
    if (p >= this.end) throw truncated();
    const t = this.buf[p]!;
    this.pos = p + 1;
    if (t < 0x80) return t;
    if (t >= 0xe0) return t - 0x100;
    if (t < 0xa0) return this.ascii(t & 0x1f);
    if (t === FLOAT64) return this.f64();
    if (t < 0xc0) return this.scalar(t);
    return this.container(t);
  }

  /** A FIXSTR's string; short ones through the string cache. */
  private ascii(n: number): string {
    const p = this.pos;
    if (p + n > this.end) throw truncated();
    this.pos = p + n;
    return n > 1 && n <= CACHED_MAX ? cached(valueCache, this.buf, p, n) : ascii(this.buf, p, n);
  }

  private need(n: number): number {
    const p = this.pos;
    if (p + n > this.end) throw truncated();
    this.pos = p + n;
    return p;
  }

  private varint(): number {
    const buf = this.buf;
    const end = this.end;
    let p = this.pos;
    if (p >= end) throw truncated();
    let b = buf[p++]!;
    let v = b & 0x7f;
    for (let mul = 0x80; b >= 0x80; mul *= 0x80) {
      if (p >= end) throw truncated();
      if (mul > 2 ** 49) throw corrupt("length out of range");
      b = buf[p++]!;
      v += (b & 0x7f) * mul;
    }
    this.pos = p;
    return v;
  }

  /** A DataView of the input's whole ArrayBuffer (offsets add buf.byteOffset). */
  private view(): DataView {
    const b = this.buf.buffer;
    this.base = this.buf.byteOffset;
    if (b === viewBuffer) return (this.dv = view!);
    const dv = new DataView(b);
    // Kept for the next message unless that would keep a big buffer alive.
    if (dv.byteLength <= VIEW_KEEP) {
      viewBuffer = b;
      view = dv;
    }
    return (this.dv = dv);
  }

  private f64(): number {
    const p = this.need(8);
    return (this.dv ?? this.view()).getFloat64(this.base + p, true);
  }

  private scalar(t: number): unknown {
    const buf = this.buf;
    switch (t) {
      case UNDEFINED: return undefined;
      case NULL: return null;
      case FALSE: return false;
      case TRUE: return true;
      case INT8: return (buf[this.need(1)]! << 24) >> 24;
      case UINT8: return buf[this.need(1)]!;
      case INT16: {
        const p = this.need(2);
        return ((buf[p]! | (buf[p + 1]! << 8)) << 16) >> 16;
      }
      case INT32: {
        const p = this.need(4);
        return buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24);
      }
      case FLOAT32: {
        const p = this.need(4);
        return (this.dv ?? this.view()).getFloat32(this.base + p, true);
      }
      case FLOAT64: return this.f64();
      case STR8: {
        const n = buf[this.need(1)]!;
        return this.utf8(n);
      }
      case STR32: {
        const p = this.need(4);
        return this.utf8((buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24)) >>> 0);
      }
      case ASCII32: {
        const p = this.need(4);
        const n = (buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24)) >>> 0;
        if (n > this.end - this.pos) throw truncated();
        const at = this.need(n);
        return latin1Slice(buf, at, at + n);
      }
      case UTF16: {
        const n = this.varint();
        if (n * 2 > this.end - this.pos) throw truncated();
        const p = this.need(n * 2);
        return utf16Slice(buf, p, p + n * 2);
      }
      case BIGINT64: {
        const p = this.need(8);
        return (this.dv ?? this.view()).getBigInt64(this.base + p, true);
      }
      case BIGPOS:
      case BIGNEG: {
        const n = this.varint();
        if (n > this.end - this.pos) throw truncated();
        const p = this.need(n);
        const hex: string[] = [];
        for (let i = p + n - 1; i >= p; i--) hex.push((buf[i]! < 16 ? "0" : "") + buf[i]!.toString(16));
        const big = n === 0 ? 0n : BigInt("0x" + hex.join(""));
        return t === BIGNEG ? -big : big;
      }
      case REF: {
        const at = this.varint();
        const shared = this.shared;
        if (shared === null || !shared.has(at)) throw corrupt(`reference to unknown object at ${at}`);
        return shared.get(at);
      }
      default:
        throw corrupt(`invalid tag 0x${t.toString(16)} at ${this.pos - 1}`);
    }
  }

  private utf8(n: number): string {
    if (n > this.end - this.pos) throw truncated();
    const p = this.need(n);
    const buf = this.buf;
    if (n <= 16) {
      let i = p;
      while (i < p + n && buf[i]! < 0x80) i++;
      if (i === p + n) return ascii(buf, p, n);
    }
    return utf8Slice(buf, p, p + n);
  }

  /** An object key. */
  private key(): string {
    const p = this.pos;
    if (p < this.end) {
      const t = this.buf[p]!;
      const n = t & 0x1f;
      if ((t & 0xe0) === FIXSTR && n > 1 && n <= CACHED_MAX) {
        if (p + 1 + n > this.end) throw truncated();
        this.pos = p + 1 + n;
        return cached(keyCache, this.buf, p + 1, n);
      }
    }
    const k = this.value();
    if (typeof k !== "string") throw corrupt(`object key is a ${typeof k}, not a string`);
    return k;
  }

  private remember(at: number, v: unknown): void {
    (this.shared ??= new Map()).set(at, v);
  }

  private container(t: number): unknown {
    const at = this.pos - 1;
    const shared = (t & SHARED) !== 0;
    if (++this.depth > MAX_DEPTH) throw corrupt(`nesting deeper than ${MAX_DEPTH}`);
    let v: unknown;
    switch (t & ~SHARED) {
      case OBJECT: v = this.object(at, shared); break;
      case ARRAY: v = this.array(at, shared); break;
      case MAP: v = this.map(at, shared); break;
      case SET: v = this.set(at, shared); break;
      case DATE: v = new Date(this.f64()); break;
      case REGEXP: {
        const source = this.value();
        const flags = this.value();
        if (typeof source !== "string" || typeof flags !== "string") throw corrupt("regular expression without source or flags");
        try {
          v = new RegExp(source, flags);
        } catch {
          throw corrupt(`invalid regular expression /${source}/${flags}`);
        }
        break;
      }
      case ARRAYBUFFER: v = this.bytes(this.varint()); break;
      case VIEW: {
        const kind = this.buf[this.need(1)]!;
        const View = VIEW_KINDS[kind];
        if (View === undefined) throw corrupt(`unknown typed array kind ${kind}`);
        const n = this.varint();
        if (n > this.end - this.pos) throw truncated();
        if (n % ELEMENT_SIZES[kind]! !== 0) throw corrupt(`${n} bytes do not make whole ${View.name} elements`);
        v = new View(this.bytes(n));
        break;
      }
      case BOXED: {
        const p = this.value();
        if (typeof p !== "number" && typeof p !== "string" && typeof p !== "boolean") throw corrupt("boxed value is not a number, string or boolean");
        v = Object(p);
        break;
      }
      case EXTERNAL: {
        const stand = this.value();
        const hooks = this.hooks;
        if (!hooks?.revive) throw new Error("structured: message contains a transferred object but no receiver for it");
        v = hooks.revive(stand);
        break;
      }
      default:
        throw corrupt(`invalid tag 0x${t.toString(16)} at ${at}`);
    }
    if (shared && !this.shared?.has(at)) this.remember(at, v);
    this.depth--;
    return v;
  }

  private map(at: number, shared: boolean): Map<unknown, unknown> {
    const m = new Map<unknown, unknown>();
    if (shared) this.remember(at, m);
    while (!this.atEnd()) {
      const k = this.value();
      m.set(k, this.value());
    }
    return m;
  }

  private set(at: number, shared: boolean): Set<unknown> {
    const s = new Set<unknown>();
    if (shared) this.remember(at, s);
    while (!this.atEnd()) s.add(this.value());
    return s;
  }

  /** Whether the next byte is END (consumed if so). */
  private atEnd(): boolean {
    if (this.pos >= this.end) throw truncated();
    if (this.buf[this.pos] !== END) return false;
    this.pos++;
    return true;
  }

  /** A fresh ArrayBuffer holding the next n bytes. */
  private bytes(n: number): ArrayBuffer {
    if (n > this.end - this.pos) throw truncated();
    const p = this.need(n);
    const buf = this.buf;
    const src = buf.buffer;
    if (src instanceof ArrayBuffer) return src.slice(buf.byteOffset + p, buf.byteOffset + p + n);
    const copy = new Uint8Array(n);
    copy.set(buf.subarray(p, p + n));
    return copy.buffer;
  }

  private object(at: number, shared: boolean): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    if (shared) this.remember(at, o);
    while (!this.atEnd()) {
      const k = this.key();
      const v = this.value();
      if (k === "__proto__") Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
      else o[k] = v;
    }
    return o;
  }

  private array(at: number, shared: boolean): unknown[] {
    const n = this.varint();
    if (n > 0xffffffff) throw corrupt(`array length ${n}`);
    // Filled from [] (appending is fast in JSC; a claimed length allocates nothing).
    const a: unknown[] = [];
    if (shared) this.remember(at, a);
    const buf = this.buf;
    for (let i = 0; i < n; i++) {
      if (this.pos >= this.end) throw truncated();
      const t = buf[this.pos]!;
      if (t === HOLE) {
        this.pos++;
        continue;
      }
      if (t === SPARSE) {
        this.pos++;
        while (!this.atEnd()) {
          const k = this.key();
          const v = this.value();
          if (k === "length") throw corrupt("array element named length");
          if (k === "__proto__") Object.defineProperty(a, k, { value: v, writable: true, enumerable: true, configurable: true });
          else (a as unknown as Record<string, unknown>)[k] = v;
        }
        break;
      }
      a[i] = this.value();
    }
    if (a.length !== n) a.length = n; // trailing holes, or SPARSE
    return a;
  }
}
