// The Pickler: JS values → the bytes CPython's C pickler writes for the corresponding
// Python values, opcode for opcode (memo indices, batching, framing), so a value CPython
// would pickle identically comes out byte-identical. Protocols 2–5.
//
// Strings: CPython memoizes by identity, and the strings that repeat in real data (dict
// keys, enum-like values) are interned in Python, so CPython writes them once and then
// BINGETs them. JS strings have no identity, so equal short strings are memoized by value:
// that reproduces CPython's bytes for the usual case, shrinks repetitive output, and lets
// the decoder skip decoding. (Long strings are not looked up: hashing them costs more than
// it saves, and equal long strings are rarely one Python object.)
//
// Hashability: a Python dict key or set element must be hashable, so in those positions
// an Array is written as a tuple and a Set as a frozenset (recursively); a plain object or
// Map there is refused, since Python could not load it. This makes Python's tuple keys,
// which decode to Array keys of a Map, go back as tuple keys.

import { PicklingError } from "./errors.ts";
import { unsendable } from "../serializer.ts";
import { bigintLong, longLengthOfNumber, writeLongNumber } from "./ints.ts";
import * as op from "./opcodes.ts";
import { encodeUtf8Into, utf8Length } from "./utf8.ts";
import { Writer } from "./writer.ts";

/** Options of `dumps`. */
export interface PickleOptions {
  /** 2, 3, 4 or 5; default 4 (Python 3.8–3.13's default, readable by Python 3.4+). */
  protocol?: 2 | 3 | 4 | 5;
  /** Deepest container nesting accepted (outermost container is level 1). Default 1000, as `loads`. */
  maxDepth?: number;
}

export const DEFAULT_PROTOCOL = 4;
const DEFAULT_MAX_DEPTH = 1000;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** GLOBAL lines CPython writes below protocol 4 (protocol 2 maps builtins to Python 2's __builtin__). */
const GLOBAL_LINES: Record<number, Record<string, Uint8Array>> = {
  2: {
    set: ascii("c__builtin__\nset\n"),
    frozenset: ascii("c__builtin__\nfrozenset\n"),
    bytes: ascii("c__builtin__\nbytes\n"),
    encode: ascii("c_codecs\nencode\n"),
  },
  3: { set: ascii("cbuiltins\nset\n"), frozenset: ascii("cbuiltins\nfrozenset\n") },
};
/** Longest string memoized by value. */
const MEMO_STR_MAX = 64;

class Pickler {
  private readonly w: Writer;
  private readonly proto: number;
  private readonly maxDepth: number;
  private memoLen = 0;
  /** Lists, dicts, sets and bytes already written, by identity. */
  private readonly memo = new Map<object, number>();
  /** Arrays written as tuples and Sets written as frozensets (keys, set elements). */
  private tupleMemo: Map<object, number> | null = null;
  /**
   * Protocol 2/3 globals (set, _codecs.encode, …): CPython memoizes them by identity, so
   * each is written once per pickle and fetched after that.
   */
  private helperMemo: Map<string, number> | null = null;
  /**
   * Short strings already written, by value (see the header comment). A null-prototype
   * object rather than a Map: string-keyed lookups are about twice as fast, and without a
   * prototype "__proto__" is an ordinary key.
   */
  private strMemo: Record<string, number> | null = null;

  constructor(w: Writer, proto: number, maxDepth: number) {
    this.w = w;
    this.proto = proto;
    this.maxDepth = maxDepth;
  }

  dump(value: unknown): void {
    const w = this.w;
    w.op8(op.PROTO, this.proto);
    if (this.proto >= 4) w.framing = true;
    this.save(value, 0);
    w.byte(op.STOP);
    w.commitFrame();
  }

  // ---- memo -------------------------------------------------------------------------

  /** Memoizes the object just written (CPython's memo_put) and returns its index. */
  private put(): number {
    const idx = this.memoLen++;
    if (this.proto >= 4) this.w.byte(op.MEMOIZE);
    else if (idx < 256) this.w.op8(op.BINPUT, idx);
    else this.w.op32(op.LONG_BINPUT, idx);
    return idx;
  }

  private get(idx: number): void {
    if (idx < 256) this.w.op8(op.BINGET, idx);
    else this.w.op32(op.LONG_BINGET, idx);
  }

  /** A protocol 2/3 helper (global or literal): written and memoized once, then fetched. */
  private helper(key: string, bytes: Uint8Array): void {
    const memo = (this.helperMemo ??= new Map());
    const idx = memo.get(key);
    if (idx !== undefined) return this.get(idx);
    this.w.bytes(bytes);
    memo.set(key, this.put());
  }

  // ---- dispatch ---------------------------------------------------------------------

  /** `depth`: how many containers enclose `v`. */
  private save(v: unknown, depth: number): void {
    const w = this.w;
    if (w.frameStart >= 0) w.boundary(); // CPython checks the frame size before every object
    switch (typeof v) {
      case "string":
        return this.saveStr(v);
      case "number":
        if (Number.isInteger(v) && v <= MAX_SAFE && v >= -MAX_SAFE && !(v === 0 && 1 / v < 0)) return this.saveInt(v);
        w.reserve(9);
        w.buf[w.pos] = op.BINFLOAT;
        w.view.setFloat64(w.pos + 1, v, false);
        w.pos += 9;
        return;
      case "boolean":
        return w.byte(v ? op.NEWTRUE : op.NEWFALSE);
      case "undefined":
        return w.byte(op.NONE);
      case "bigint":
        return this.saveBigInt(v);
      case "object":
        if (v === null) return w.byte(op.NONE);
        return this.saveObject(v, depth);
      default:
        throw new PicklingError(`cannot pickle '${typeof v}' object: ${TABLE_HINT}`);
    }
  }

  private saveObject(v: object, depth: number): void {
    const idx = this.memo.get(v);
    if (idx !== undefined) return this.get(idx);
    if (v instanceof Uint8Array) return this.saveBytes(v, v);
    if (depth >= this.maxDepth) throw tooDeep();
    if (Array.isArray(v)) return this.saveList(v, depth + 1);
    const proto = Object.getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) return this.saveDict(v as Record<string, unknown>, depth + 1);
    if (v instanceof Map) return this.saveMap(v, depth + 1);
    if (v instanceof Set) return this.saveSet(v, depth + 1);
    if (v instanceof ArrayBuffer) return this.saveBytes(new Uint8Array(v), v);
    throw unsupported(v);
  }

  /** A dict key or set element: must be hashable in Python (see the header comment). */
  private saveKey(v: unknown, depth: number): void {
    if (typeof v !== "object" || v === null || v instanceof Uint8Array || v instanceof ArrayBuffer) {
      return this.save(v, depth);
    }
    const w = this.w;
    if (w.frameStart >= 0) w.boundary();
    const idx = this.tupleMemo?.get(v);
    if (idx !== undefined) return this.get(idx);
    if (depth >= this.maxDepth) throw tooDeep();
    if (Array.isArray(v)) return this.saveTuple(v, depth + 1);
    if (v instanceof Set) return this.saveFrozenSet(v, depth + 1);
    const proto = Object.getPrototypeOf(v);
    if (v instanceof Map || proto === Object.prototype || proto === null) {
      throw new PicklingError("unhashable type: 'dict' (a Map key or Set element cannot be an object or a Map)");
    }
    throw unsupported(v);
  }

  // ---- scalars ----------------------------------------------------------------------

  /** CPython's choice: BININT1 / BININT2 / BININT for int32, else LONG1 / LONG4. */
  private saveInt(v: number): void {
    const w = this.w;
    if (v >= 0 && v <= 0x7fffffff) {
      if (v < 0x100) return w.op8(op.BININT1, v);
      if (v < 0x10000) {
        w.reserve(3);
        w.buf[w.pos] = op.BININT2;
        w.view.setUint16(w.pos + 1, v, true);
        w.pos += 3;
        return;
      }
      return w.op32(op.BININT, v);
    }
    if (v < 0 && v >= -0x80000000) return w.op32(op.BININT, v >>> 0);
    const n = longLengthOfNumber(v);
    w.reserve(2 + n);
    w.buf[w.pos] = op.LONG1;
    w.buf[w.pos + 1] = n;
    writeLongNumber(v, n, w.buf, w.pos + 2);
    w.pos += 2 + n;
  }

  private saveBigInt(v: bigint): void {
    if (v >= -BigInt(MAX_SAFE) && v <= BigInt(MAX_SAFE)) return this.saveInt(Number(v));
    const w = this.w;
    const long = bigintLong(v);
    const n = long.length;
    if (n < 256) {
      w.reserve(2 + n);
      w.buf[w.pos] = op.LONG1;
      w.buf[w.pos + 1] = n;
      w.pos += 2;
    } else {
      w.op32(op.LONG4, n);
      w.ensure(n);
    }
    long.write(w.buf, w.pos);
    w.pos += n;
  }

  /**
   * str: SHORT_BINUNICODE (< 256 bytes, protocol 4+), BINUNICODE, BINUNICODE8 (> 4 GiB).
   * The header depends on the UTF-8 length, which is only counted when the code-unit
   * count leaves the header (or the 64 KiB frame bypass) in doubt.
   */
  private saveStr(s: string): void {
    const w = this.w;
    const n = s.length;
    if (n <= MEMO_STR_MAX) {
      const idx = (this.strMemo ??= Object.create(null) as Record<string, number>)[s];
      if (idx !== undefined) return this.get(idx);
    }
    const p4 = this.proto >= 4;
    if (n * 3 < op.FRAME_SIZE_TARGET) {
      let short = p4 && n * 3 <= 0xff;
      if (p4 && !short && n <= 0xff) short = utf8Length(s) <= 0xff;
      const header = short ? 2 : 5;
      w.reserve(header + n * 3);
      const start = w.pos + header;
      const size = encodeUtf8Into(s, w.buf, start) - start;
      if (short) {
        w.buf[w.pos] = op.SHORT_BINUNICODE;
        w.buf[w.pos + 1] = size;
      } else {
        w.buf[w.pos] = op.BINUNICODE;
        w.view.setUint32(w.pos + 1, size, true);
      }
      w.pos = start + size;
    } else {
      const size = utf8Length(s);
      const bypassed = w.beginPayload(size);
      if (size <= 0xff && p4) w.op8(op.SHORT_BINUNICODE, size);
      else if (size <= 0xffffffff) w.op32(op.BINUNICODE, size);
      else if (p4) w.op64(op.BINUNICODE8, size);
      else throw new PicklingError("serializing a string larger than 4 GiB requires pickle protocol 4 or higher");
      w.ensure(size);
      w.pos = encodeUtf8Into(s, w.buf, w.pos);
      w.endPayload(bypassed);
    }
    const idx = this.put();
    if (n <= MEMO_STR_MAX) this.strMemo![s] = idx;
  }

  /** bytes: SHORT_BINBYTES / BINBYTES / BINBYTES8 from protocol 3; `_codecs.encode` below. */
  private saveBytes(b: Uint8Array, key: object): void {
    if (this.proto < 3) return this.saveBytes2(b, key);
    const w = this.w;
    const n = b.length;
    const bypassed = w.beginPayload(n);
    if (n <= 0xff) w.op8(op.SHORT_BINBYTES, n);
    else if (n <= 0xffffffff) w.op32(op.BINBYTES, n);
    else if (this.proto >= 4) w.op64(op.BINBYTES8, n);
    else throw new PicklingError("serializing a bytes object larger than 4 GiB requires pickle protocol 4 or higher");
    w.ensure(n);
    w.buf.set(b, w.pos);
    w.pos += n;
    w.endPayload(bypassed);
    this.memo.set(key, this.put());
  }

  /**
   * Protocol 2 has no bytes opcode: CPython writes `_codecs.encode(latin1_text, 'latin1')`
   * (which Python 2 also loads), and `bytes()` for b''.
   */
  private saveBytes2(b: Uint8Array, key: object): void {
    const w = this.w;
    const lines = GLOBAL_LINES[2]!;
    if (b.length === 0) {
      this.helper("bytes", lines.bytes!);
      w.byte(op.EMPTY_TUPLE);
    } else {
      this.helper("encode", lines.encode!);
      // The text is the bytes read as Latin-1, stored as UTF-8: bytes ≥ 0x80 take two.
      let size = b.length;
      for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) size++;
      w.op32(op.BINUNICODE, size);
      w.ensure(size);
      const out = w.buf;
      let p = w.pos;
      for (let i = 0; i < b.length; i++) {
        const c = b[i]!;
        if (c < 0x80) out[p++] = c;
        else {
          out[p++] = 0xc0 | (c >> 6);
          out[p++] = 0x80 | (c & 0x3f);
        }
      }
      w.pos = p;
      this.put();
      this.saveStr("latin1"); // an interned identifier in CPython: written once per pickle
      w.byte(op.TUPLE2);
      this.put();
    }
    w.byte(op.REDUCE);
    this.memo.set(key, this.put());
  }

  // ---- containers -------------------------------------------------------------------

  /** list: EMPTY_LIST, then APPEND for one item, else MARK … APPENDS per 1000. */
  private saveList(list: readonly unknown[], depth: number): void {
    this.w.byte(op.EMPTY_LIST);
    this.memo.set(list, this.put());
    this.appendItems(list, depth, false);
  }

  private appendItems(items: readonly unknown[], depth: number, asKeys: boolean): void {
    const w = this.w;
    const n = items.length;
    if (n === 1) {
      if (asKeys) this.saveKey(items[0], depth);
      else this.save(items[0], depth);
      w.byte(op.APPEND);
      return;
    }
    for (let i = 0; i < n; ) {
      w.byte(op.MARK);
      const stop = Math.min(n, i + op.BATCH_SIZE);
      if (asKeys) for (; i < stop; i++) this.saveKey(items[i], depth);
      else for (; i < stop; i++) this.save(items[i], depth);
      w.byte(op.APPENDS);
    }
  }

  /** dict from a plain object: its own enumerable string keys, in JS order. */
  private saveDict(obj: Record<string, unknown>, depth: number): void {
    const w = this.w;
    w.byte(op.EMPTY_DICT);
    this.memo.set(obj, this.put());
    const keys = Object.keys(obj);
    const n = keys.length;
    if (n === 0) return;
    if (n === 1) {
      this.save(keys[0], depth);
      this.save(obj[keys[0]!], depth);
      return w.byte(op.SETITEM);
    }
    // CPython's loop: it stops after a batch shorter than 1000, so a dict of exactly
    // 1000·k items ends with an empty MARK SETITEMS; matched for byte equality.
    let i = 0;
    let batch: number;
    do {
      w.byte(op.MARK);
      const stop = Math.min(n, i + op.BATCH_SIZE);
      batch = stop - i;
      for (; i < stop; i++) {
        const k = keys[i]!;
        this.save(k, depth);
        this.save(obj[k], depth);
      }
      w.byte(op.SETITEMS);
    } while (batch === op.BATCH_SIZE);
  }

  private saveMap(map: Map<unknown, unknown>, depth: number): void {
    const w = this.w;
    w.byte(op.EMPTY_DICT);
    this.memo.set(map, this.put());
    if (map.size === 0) return;
    if (map.size === 1) {
      for (const [k, v] of map) {
        this.saveKey(k, depth);
        this.save(v, depth);
      }
      return w.byte(op.SETITEM);
    }
    const it = map.entries();
    let batch: number;
    do {
      w.byte(op.MARK);
      batch = 0;
      for (let r = it.next(); !r.done; r = it.next()) {
        this.saveKey(r.value[0], depth);
        this.save(r.value[1], depth);
        if (++batch === op.BATCH_SIZE) break;
      }
      w.byte(op.SETITEMS);
    } while (batch === op.BATCH_SIZE);
  }

  /** set: EMPTY_SET + ADDITEMS batches (protocol 4+), else `set(list)` through REDUCE. */
  private saveSet(set: Set<unknown>, depth: number): void {
    const w = this.w;
    if (this.proto < 4) {
      this.helper("set", GLOBAL_LINES[this.proto]!.set!);
      this.reduceWithList([...set], depth);
      this.memo.set(set, this.put());
      return;
    }
    w.byte(op.EMPTY_SET);
    this.memo.set(set, this.put());
    if (set.size === 0) return;
    const it = set.values();
    let batch: number;
    do {
      w.byte(op.MARK);
      batch = 0;
      for (let r = it.next(); !r.done; r = it.next()) {
        this.saveKey(r.value, depth);
        if (++batch === op.BATCH_SIZE) break;
      }
      w.byte(op.ADDITEMS);
    } while (batch === op.BATCH_SIZE);
  }

  /** frozenset: MARK items FROZENSET (protocol 4+, one batch), else `frozenset(list)`. */
  private saveFrozenSet(set: Set<unknown>, depth: number): void {
    const w = this.w;
    if (this.proto < 4) {
      this.helper("frozenset", GLOBAL_LINES[this.proto]!.frozenset!);
      this.reduceWithList([...set], depth);
    } else {
      w.byte(op.MARK);
      for (const v of set) this.saveKey(v, depth);
      w.byte(op.FROZENSET);
    }
    (this.tupleMemo ??= new Map()).set(set, this.put());
  }

  /** The `(list,)` argument and REDUCE of CPython's set/frozenset reductions (protocol < 4). */
  private reduceWithList(items: unknown[], depth: number): void {
    const w = this.w;
    // CPython saves the temporary list and the argument tuple through save(), which
    // memoizes both; the indices are consumed even though nothing refers to them.
    w.byte(op.EMPTY_LIST);
    this.put();
    this.appendItems(items, depth, true);
    w.byte(op.TUPLE1);
    this.put();
    w.byte(op.REDUCE);
  }

  /** tuple: EMPTY_TUPLE (not memoized), TUPLE1–3, or MARK … TUPLE. */
  private saveTuple(items: readonly unknown[], depth: number): void {
    const w = this.w;
    const n = items.length;
    if (n === 0) return w.byte(op.EMPTY_TUPLE);
    if (n > 3) w.byte(op.MARK);
    for (let i = 0; i < n; i++) this.saveKey(items[i], depth);
    w.byte(n > 3 ? op.TUPLE : op.TUPLE1 + n - 1);
    (this.tupleMemo ??= new Map()).set(items, this.put());
  }
}

const TABLE_HINT =
  "pickle encodes null/undefined, boolean, number, bigint, string, Uint8Array/ArrayBuffer, Array, plain object, Map and Set";

function unsupported(v: object): PicklingError {
  if (unsendable in v) return new PicklingError(String((v as { [unsendable]: unknown })[unsendable]));
  let name: string;
  try {
    name = (v as { constructor?: { name?: unknown } }).constructor?.name as string;
  } catch {
    name = "";
  }
  if (typeof name !== "string" || name === "") name = Object.prototype.toString.call(v).slice(8, -1);
  return new PicklingError(`cannot pickle '${name}' object: ${TABLE_HINT}`);
}

function tooDeep(): PicklingError {
  return new PicklingError("maximum recursion depth exceeded while pickling an object");
}

// One writer is reused across calls (the output is copied out), so a small message costs
// no buffer growth. A getter running dumps re-entrantly simply gets a fresh writer.
let spare: Writer | null = null;
const SPARE_LIMIT = 1 << 20;

export function dumps(value: unknown, options?: PickleOptions): Uint8Array {
  const proto = options?.protocol ?? DEFAULT_PROTOCOL;
  if (proto !== 2 && proto !== 3 && proto !== 4 && proto !== 5) {
    throw new RangeError(`pickle protocol must be 2, 3, 4 or 5, got ${String(proto)}`);
  }
  const maxDepth = options?.maxDepth ?? DEFAULT_MAX_DEPTH;
  if (typeof maxDepth !== "number" || !(maxDepth >= 0)) throw new RangeError(`maxDepth must be a non-negative number, not ${String(maxDepth)}`);
  const w = spare ?? new Writer();
  spare = null;
  try {
    new Pickler(w, proto, maxDepth).dump(value);
    return w.take();
  } catch (e) {
    // A maxDepth set beyond what the JS stack allows ends here rather than in a RangeError.
    if (e instanceof RangeError && /call stack/i.test(e.message)) throw tooDeep();
    throw e;
  } finally {
    w.reset();
    if (w.buf.length <= SPARE_LIMIT) spare = w;
  }
}
