// The encoder: one pass over the value, written into one growing Uint8Array (or into a
// caller's buffer, for dumpsInto). Whatever it cannot copy exactly is left to bun:jsc for
// the whole message: it throws FALLBACK, or, when a replace hook is active, notes the
// object and goes on, so that every object is still offered to the hook exactly once.

import { describe, type StructuredHooks } from "./hooks.ts";
import { unsendable } from "../serializer.ts";
import { utf16Write, utf8Length, utf8Write } from "./text.ts";
import {
  ARRAY, ARRAYBUFFER, ASCII32, BIGINT64, BIGNEG, BIGPOS, BOXED, DATE, END, EXTERNAL, FALSE, FIXSTR, FLOAT32, FLOAT64,
  HOLE, INT16, INT32, INT8, MAP, MARKER, MAX_DEPTH, NULL, OBJECT, REF, REGEXP, SET, SHARED, SPARSE, STR32, STR8,
  TRUE, UINT8, UNDEFINED, UTF16, VIEW, VIEW_NAMES,
} from "./tags.ts";

/** Thrown (not an Error, so no stack is captured) when bun:jsc has to encode the message. */
export const FALLBACK = { reason: "structured: this message needs bun:jsc" };
/** Thrown by dumpsInto's encoder when the message does not fit the target. */
export const NO_ROOM = { reason: "structured: no room in the target buffer" };

/** A value structured clone refuses (function, symbol): becomes the TypeError of dumps. */
export class Uncloneable {
  constructor(readonly value: unknown) {}
}

/** A live object no hook replaced (see `unsendable`): becomes a TypeError with its own words. */
export class Unsendable {
  constructor(readonly reason: string) {}
}

const SCRATCH = 64 * 1024;
/** Buffers up to this size become the reused scratch; bigger ones are handed to the caller. */
const SCRATCH_MAX = 256 * 1024;
/** Objects are looked up by linear scan until there are this many, then through a Map. */
const LINEAR = 16;
/** recall() result for an ArrayBuffer seen only as the backing store of a view. */
const BACKING = -2;

const BIG_MIN = -(2n ** 63n);
const BIG_MAX = 2n ** 63n - 1n;

// Kinds of objects with exactly these prototypes (class instances and other subclasses go
// through replace/bun:jsc, except typed arrays, found by brand).
const K_MAP = 1, K_SET = 2, K_DATE = 3, K_REGEXP = 4, K_ARRAYBUFFER = 5, K_NUMBER = 6, K_STRING = 7, K_BOOLEAN = 8;
const K_VIEW = 16; // + index into VIEW_KINDS
const kinds = new Map<object, number>([
  [Map.prototype, K_MAP], [Set.prototype, K_SET], [Date.prototype, K_DATE], [RegExp.prototype, K_REGEXP],
  [ArrayBuffer.prototype, K_ARRAYBUFFER], [Number.prototype, K_NUMBER], [String.prototype, K_STRING], [Boolean.prototype, K_BOOLEAN],
]);
VIEW_NAMES.forEach((name, i) => {
  const ctor = (globalThis as unknown as Record<string, { prototype: object } | undefined>)[name];
  if (ctor) kinds.set(ctor.prototype, K_VIEW + i);
});
/** %TypedArray%.prototype[Symbol.toStringTag]: the real kind of a typed array, whatever its prototype. */
const typedArrayName = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag)!.get!;

const num = new Float64Array(1);
const dateTime = Date.prototype.getTime;
const numberValue = Number.prototype.valueOf;
const stringValue = String.prototype.valueOf;
const booleanValue = Boolean.prototype.valueOf;

export class Encoder {
  /** The reused output buffer of dumps. */
  private scratch: Uint8Array = new Uint8Array(SCRATCH);
  private scratchView: DataView = new DataView(this.scratch.buffer);
  buf: Uint8Array = this.scratch;
  view: DataView = this.scratchView;
  pos = 0;
  /** Offset of the MARKER byte: REF offsets count from here. */
  origin = 0;
  /** Writing into a caller's buffer (dumpsInto): running out of room throws NO_ROOM. */
  fixed = false;
  busy = false;
  private depth = 0;
  // Objects seen so far, with the offsets of their tags: arrays while few, then a Map.
  private objs: (object | null)[] = [];
  private offsets: number[] = [];
  private count = 0;
  private index: Map<object, number> | null = null;
  private hooks: StructuredHooks | undefined = undefined;
  /** Objects replaced by hooks.replace so far. */
  replaced = 0;
  /** With a replace hook: the first object that needs bun:jsc (encoding goes on). */
  unsupported: object | null = null;
  /** Set when hooks.replace threw: that error goes to the caller as it is. */
  hookThrew = false;

  /** Encodes `value` into the scratch buffer (or `target` from `offset`); returns the end offset. */
  run(value: unknown, hooks: StructuredHooks | undefined, target?: Uint8Array, view?: DataView, offset = 0): number {
    if (target) {
      this.buf = target;
      this.view = view!;
      this.fixed = true;
    } else {
      this.buf = this.scratch;
      this.view = this.scratchView;
      this.fixed = false;
    }
    this.origin = this.pos = offset;
    this.hooks = hooks;
    this.ensure(1);
    this.buf[this.pos++] = MARKER;
    this.value(value);
    if (this.unsupported !== null) throw FALLBACK;
    return this.pos;
  }

  /** The bytes of the message run() wrote into the scratch buffer, as a buffer of their own. */
  result(): Uint8Array {
    // A buffer grown past SCRATCH_MAX for this message is handed over as it is.
    if (this.buf !== this.scratch) return this.buf.subarray(0, this.pos);
    return this.scratch.slice(0, this.pos);
  }

  /** Forgets the message (and the caller's objects). */
  reset(): void {
    // (Setting an array's length is slow in JSC: clear the used slots instead.)
    for (let i = 0; i < this.count; i++) this.objs[i] = null;
    this.count = 0;
    this.index = null;
    this.hooks = undefined;
    this.replaced = 0;
    this.unsupported = null;
    this.hookThrew = false;
    this.depth = 0;
    this.buf = this.scratch;
    this.view = this.scratchView;
    this.busy = false;
  }

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    if (this.fixed) throw NO_ROOM;
    const need = this.pos + n;
    let size = this.buf.length * 2;
    if (size < need) size = need + (need >> 4) + 256;
    const next = size > SCRATCH_MAX ? uninitialized(size) : new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
    if (size <= SCRATCH_MAX) {
      this.scratch = next;
      this.scratchView = this.view;
    }
  }

  value(v: unknown): void {
    if (typeof v === "number") this.number(v);
    else if (typeof v === "string") this.string(v);
    else if (typeof v === "object") {
      if (v === null) this.byte(NULL);
      else this.object(v);
    } else if (typeof v === "boolean") this.byte(v ? TRUE : FALSE);
    else if (v === undefined) this.byte(UNDEFINED);
    else if (typeof v === "bigint") this.bigint(v);
    else throw new Uncloneable(v);
  }

  private byte(b: number): void {
    if (this.pos >= this.buf.length) this.grow(1);
    this.buf[this.pos++] = b;
  }

  private varint(n: number): void {
    if (this.pos + 8 > this.buf.length) this.grow(8);
    const buf = this.buf;
    let p = this.pos;
    while (n >= 0x80) {
      buf[p++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    buf[p++] = n;
    this.pos = p;
  }

  number(v: number): void {
    // Passing the number through a Float64Array hands JSC a plain double: inlined where
    // values of every type arrive, `v | 0` on `v` itself compiles to a slow generic path
    // (3× slower on arrays of arrays). Small functions per path help for the same reason.
    num[0] = v;
    const d = num[0]!;
    const i = d | 0;
    if (i === d && (i !== 0 || 1 / d > 0)) this.int(i);
    else this.float(d);
  }

  private float(v: number): void {
    if (this.pos + 9 > this.buf.length) this.grow(9);
    const p = this.pos;
    if (Math.fround(v) === v) {
      this.buf[p] = FLOAT32;
      this.view.setFloat32(p + 1, v, true);
      this.pos = p + 5;
    } else {
      this.buf[p] = FLOAT64;
      this.view.setFloat64(p + 1, v, true);
      this.pos = p + 9;
    }
  }

  private int(i: number): void {
    if (this.pos + 5 > this.buf.length) this.grow(5);
    const buf = this.buf;
    const p = this.pos;
    if (i >= -32 && i < 0x80) {
      buf[p] = i & 0xff;
      this.pos = p + 1;
    } else if (i >= -0x80 && i < 0x100) {
      buf[p] = i < 0 ? INT8 : UINT8;
      buf[p + 1] = i & 0xff;
      this.pos = p + 2;
    } else if (i >= -0x8000 && i < 0x8000) {
      buf[p] = INT16;
      buf[p + 1] = i & 0xff;
      buf[p + 2] = (i >> 8) & 0xff;
      this.pos = p + 3;
    } else {
      buf[p] = INT32;
      buf[p + 1] = i & 0xff;
      buf[p + 2] = (i >> 8) & 0xff;
      buf[p + 3] = (i >> 16) & 0xff;
      buf[p + 4] = (i >> 24) & 0xff;
      this.pos = p + 5;
    }
  }

  string(s: string): void {
    const n = s.length;
    if (n < 32) {
      // ASCII, the common case for keys and short values: FIXSTR.
      if (this.pos + 1 + n > this.buf.length) this.grow(1 + n);
      const buf = this.buf;
      const start = this.pos;
      let p = start + 1;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) return this.utf8(s);
        buf[p++] = c;
      }
      buf[start] = FIXSTR | n;
      this.pos = p;
      return;
    }
    this.utf8(s);
  }

  /** STR8 (short ones, by hand), ASCII32 or STR32 (natively), or UTF16 for lone surrogates. */
  private utf8(s: string): void {
    const n = s.length;
    if (n <= 16) return this.shortUtf8(s);
    if (!s.isWellFormed()) return this.utf16(s);
    // Up to 3 bytes per code unit. Past the scratch buffer's room, try what there is first.
    if (this.pos + 5 + 3 * n > this.buf.length && !this.fixed) this.grow(5 + 3 * n);
    const room = this.buf.length - this.pos - 5;
    const written = utf8Write(this.buf, s, this.pos + 5, room);
    // (A fixed target may have cut it short: only whole characters are written.)
    if (written > room - 4 && 3 * n > room && written !== utf8Length(s)) throw NO_ROOM;
    this.buf[this.pos] = written === n ? ASCII32 : STR32;
    this.view.setUint32(this.pos + 1, written, true);
    this.pos += 5 + written;
  }

  private shortUtf8(s: string): void {
    const n = s.length;
    if (this.pos + 2 + 3 * n > this.buf.length) this.grow(2 + 3 * n);
    const buf = this.buf;
    const start = this.pos;
    let p = start + 2;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) buf[p++] = c;
      else if (c < 0x800) {
        buf[p++] = 0xc0 | (c >> 6);
        buf[p++] = 0x80 | (c & 0x3f);
      } else if (c < 0xd800 || c >= 0xe000) {
        buf[p++] = 0xe0 | (c >> 12);
        buf[p++] = 0x80 | ((c >> 6) & 0x3f);
        buf[p++] = 0x80 | (c & 0x3f);
      } else {
        const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c >= 0xdc00 || d < 0xdc00 || d >= 0xe000) return this.utf16(s);
        i++;
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        buf[p++] = 0xf0 | (cp >> 18);
        buf[p++] = 0x80 | ((cp >> 12) & 0x3f);
        buf[p++] = 0x80 | ((cp >> 6) & 0x3f);
        buf[p++] = 0x80 | (cp & 0x3f);
      }
    }
    buf[start] = STR8;
    buf[start + 1] = p - start - 2;
    this.pos = p;
  }

  private utf16(s: string): void {
    this.byte(UTF16);
    this.varint(s.length);
    this.ensure(2 * s.length);
    utf16Write(this.buf, s, this.pos);
    this.pos += 2 * s.length;
  }

  private bigint(v: bigint): void {
    if (v >= BIG_MIN && v <= BIG_MAX) {
      this.ensure(9);
      this.buf[this.pos] = BIGINT64;
      this.view.setBigInt64(this.pos + 1, v, true);
      this.pos += 9;
      return;
    }
    const negative = v < 0n;
    let hex = (negative ? -v : v).toString(16);
    if (hex.length & 1) hex = "0" + hex;
    const n = hex.length >> 1;
    this.byte(negative ? BIGNEG : BIGPOS);
    this.varint(n);
    this.ensure(n);
    const buf = this.buf;
    for (let i = 0, at = hex.length - 2; i < n; i++, at -= 2) buf[this.pos + i] = parseInt(hex.slice(at, at + 2), 16);
    this.pos += n;
  }

  /**
   * The offset under which `o` was seen before, or -1 after noting it under `at`
   * (the offset its tag is about to take, or BACKING).
   */
  private recall(o: object, at: number): number {
    const index = this.index;
    if (index === null) {
      const objs = this.objs;
      const n = this.count;
      for (let i = 0; i < n; i++) if (objs[i] === o) return this.offsets[i]!;
      objs[n] = o;
      this.offsets[n] = at;
      this.count = n + 1;
      if (n + 1 === LINEAR) {
        const map = new Map<object, number>();
        for (let j = 0; j <= n; j++) map.set(objs[j]!, this.offsets[j]!);
        this.index = map;
      }
      return -1;
    }
    const seen = index.get(o);
    if (seen !== undefined) return seen;
    index.set(o, at);
    return -1;
  }

  private object(o: object): void {
    const at = this.pos - this.origin;
    const seen = this.recall(o, at);
    if (seen >= 0) {
      this.buf[this.origin + seen]! |= SHARED;
      this.byte(REF);
      this.varint(seen);
      return;
    }
    if (seen === BACKING) return this.needsJsc(o);
    if (++this.depth > MAX_DEPTH) {
      this.depth--;
      return this.needsJsc(o);
    }
    const proto = Object.getPrototypeOf(o);
    if (proto === Object.prototype || proto === null) this.plain(o as Record<string, unknown>);
    else if (proto === Array.prototype) this.array(o as unknown[]);
    else this.other(o, proto);
    this.depth--;
  }

  private plain(o: Record<string, unknown>): void {
    this.byte(OBJECT);
    // Own enumerable string keys, in order (JSC caches the list per shape: cheaper than for-in).
    const keys = Object.keys(o);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      this.string(k);
      this.value(o[k]);
    }
    this.byte(END);
  }

  private array(a: unknown[]): void {
    const n = a.length;
    this.byte(ARRAY);
    this.varint(n);
    for (let i = 0; i < n; i++) {
      const x = a[i];
      if (x === undefined && !(i in a)) return this.holey(a, i);
      this.value(x);
    }
  }

  /** The rest of array `a` from its first hole `i`: HOLE tags, or SPARSE pairs for long rests. */
  private holey(a: unknown[], i: number): void {
    const n = a.length;
    if (n - i <= 64) {
      for (; i < n; i++) {
        if (i in a) this.value(a[i]);
        else this.byte(HOLE);
      }
      return;
    }
    // Object.keys lists the indices in order, then other own enumerable names (kept too).
    const keys = Object.keys(a);
    if (i > 0 && keys[i - 1] !== String(i - 1)) return this.needsJsc(a); // a non-enumerable element
    this.byte(SPARSE);
    for (let k = i; k < keys.length; k++) {
      const key = keys[k]!;
      this.string(key);
      this.value((a as unknown as Record<string, unknown>)[key]);
    }
    this.byte(END);
  }

  private other(o: object, proto: object): void {
    let kind = kinds.get(proto);
    if (kind === undefined && ArrayBuffer.isView(o)) {
      // A subclass (Buffer): its base kind, as bun:jsc does.
      const name = typedArrayName.call(o) as string | undefined;
      kind = K_VIEW + (name === undefined ? VIEW_NAMES.indexOf("DataView") : VIEW_NAMES.indexOf(name as (typeof VIEW_NAMES)[number]));
    }
    switch (kind) {
      case undefined:
        return this.external(o);
      case K_MAP: {
        if (hasEnumerable(o)) return this.needsJsc(o); // bun:jsc keeps a Map's own properties
        this.byte(MAP);
        for (const [k, v] of o as Map<unknown, unknown>) {
          this.value(k);
          this.value(v);
        }
        return this.byte(END);
      }
      case K_SET: {
        if (hasEnumerable(o)) return this.needsJsc(o);
        this.byte(SET);
        for (const v of o as Set<unknown>) this.value(v);
        return this.byte(END);
      }
      case K_DATE: {
        this.ensure(9);
        this.buf[this.pos] = DATE;
        this.view.setFloat64(this.pos + 1, dateTime.call(o), true);
        this.pos += 9;
        return;
      }
      case K_REGEXP:
        this.byte(REGEXP);
        this.string((o as RegExp).source);
        return this.string((o as RegExp).flags);
      case K_ARRAYBUFFER: {
        const b = o as ArrayBuffer;
        if (b.resizable || b.detached) return this.needsJsc(o);
        const n = b.byteLength;
        this.byte(ARRAYBUFFER);
        this.varint(n);
        this.ensure(n);
        this.buf.set(new Uint8Array(b), this.pos);
        this.pos += n;
        return;
      }
      case K_NUMBER:
        this.byte(BOXED);
        return this.number(numberValue.call(o));
      case K_STRING:
        this.byte(BOXED);
        return this.string(stringValue.call(o));
      case K_BOOLEAN:
        this.byte(BOXED);
        return this.byte(booleanValue.call(o) ? TRUE : FALSE);
      default:
        return this.arrayView(o as ArrayBufferView, kind - K_VIEW);
    }
  }

  /**
   * A typed array or DataView: its kind and just the bytes it views (so it decodes with a
   * fresh buffer of its own, byteOffset 0). Views whose buffer appears elsewhere in the
   * message, shared or resizable buffers, and length-tracking views go to bun:jsc.
   */
  private arrayView(v: ArrayBufferView, kind: number): void {
    const b = v.buffer;
    if (Object.getPrototypeOf(b) !== ArrayBuffer.prototype || (b as ArrayBuffer).resizable || (b as ArrayBuffer).detached) return this.needsJsc(v);
    if (this.recall(b, BACKING) !== -1) return this.needsJsc(v);
    const n = v.byteLength;
    this.ensure(10);
    this.buf[this.pos++] = VIEW;
    this.buf[this.pos++] = kind;
    this.varint(n);
    this.ensure(n);
    this.buf.set(kind === 1 ? (v as Uint8Array) : new Uint8Array(b, v.byteOffset, n), this.pos);
    this.pos += n;
  }

  /** An object that is not plain data: offered to hooks.replace, else bun:jsc's. */
  private external(o: object): void {
    const hooks = this.hooks;
    if (hooks?.replace) {
      let stand: unknown;
      try {
        stand = hooks.replace(o);
      } catch (e) {
        this.hookThrew = true;
        throw e;
      }
      if (stand !== undefined) {
        this.replaced++;
        this.byte(EXTERNAL);
        return this.value(stand);
      }
    }
    if (unsendable in o) throw new Unsendable(String((o as { [unsendable]: unknown })[unsendable]));
    this.needsJsc(o);
  }

  /**
   * Leaves the message to bun:jsc. With a replace hook, notes `o` and writes a placeholder
   * instead, so that the rest of the message is still offered to the hook.
   */
  private needsJsc(o: object): void {
    if (!this.hooks?.replace) throw FALLBACK;
    this.unsupported ??= o;
    this.byte(UNDEFINED);
  }
}

/** A big buffer without the cost of zeroing it (it is written before it is read). */
function uninitialized(size: number): Uint8Array {
  const B = (globalThis as { Buffer?: { allocUnsafeSlow(size: number): Uint8Array } }).Buffer;
  if (!B) return new Uint8Array(size);
  const b = B.allocUnsafeSlow(size);
  return new Uint8Array(b.buffer, b.byteOffset, size);
}

/** Whether `o` has an enumerable property (own, or inherited from a polluted prototype). */
function hasEnumerable(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/** The TypeError message for a value structured clone refuses (a function or symbol inside `top`). */
export function uncloneable(top: unknown, inner: unknown): string {
  const what = typeof inner === "symbol" ? "symbols" : "functions";
  if (top === inner) return `cannot serialize ${describe(top)}: structured clone cannot copy ${what}`;
  return `cannot serialize ${describe(top)}: it holds ${describe(inner)}, and structured clone cannot copy ${what}`;
}
