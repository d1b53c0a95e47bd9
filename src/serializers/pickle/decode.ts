// The Unpickler: a stack machine over protocols 0–5 that builds JS values directly and
// never calls anything named by the input.
//
// Safety in three parts:
//  - Globals: only the allow-list of globals.ts, interpreted by REDUCE as data.
//  - Sizes: every declared length is checked against the bytes that remain before anything
//    is allocated; the memo index is capped. Every opcode adds at most one element, except
//    REDUCE, which copies its argument (set(list), bytes(b), _codecs.encode(s)) and could do
//    so again and again on one memoized argument: its copies share a budget equal to the
//    input size, which CPython's pickles never approach (each argument is used once). So the
//    result holds at most a small multiple of the input length in elements.
//  - Depth: the decoder itself never recurses, but users (and `dumps`) do, so the nesting
//    depth of the result is bounded. It is tracked incrementally: a container's depth is
//    1 + the deepest child it received, recorded in `depths`. That figure is exact as long
//    as no container grows after it was placed inside another one, which needs the
//    container to come back through the memo (GET) or DUP; such containers are "escaped".
//    When an escaped container grows (cycles, or hand-made pickles), the figures may be
//    stale, so one iterative depth-first pass over the result decides instead.
//
// Dicts start as plain objects, since most have str keys. The first non-str key turns one
// into a Map: the stack slot is swapped, memo reads are redirected via `converted`, and
// if the object had escaped, the same post-pass replaces the remaining references.

import { UnpicklingError } from "./errors.ts";
import { applyGlobal, PyGlobal, resolveGlobal } from "./globals.ts";
import { depthError, isContainer, repairGraph, setOwn } from "./graph.ts";
import { decodeLong } from "./ints.ts";
import { HIGHEST_PROTOCOL, opcodeName } from "./opcodes.ts";
import {
  ascii,
  decodeRawUnicodeEscape,
  latin1,
  parseFloatLine,
  parseIndexLine,
  parseIntLine,
  parseLongLine,
  parseStringLine,
} from "./text.ts";
import { decodeUtf8 } from "./utf8.ts";

/** Bounds for `loads`; each violation is an UnpicklingError naming the limit. */
export interface PickleLimits {
  /** Deepest container nesting in the result (the outermost container is level 1). Default 1000. */
  maxDepth?: number;
  /** Memo indices must be below this. Default: the input length in bytes (at least 1024), which
   * no real pickle reaches since each memo entry costs at least one byte. */
  maxMemo?: number;
  /** Largest single str/bytes/bytearray/int payload, in bytes. Default: unlimited, though a
   * declared length can never exceed the bytes that remain in the input. */
  maxLength?: number;
}

export const DEFAULT_MAX_DEPTH = 1000;

type Dict = Record<string, unknown>;

export function loads(data: Uint8Array, limits?: PickleLimits): unknown {
  const bytes = asBytes(data);
  const unpickler = new Unpickler(bytes, limits);
  try {
    return unpickler.load();
  } catch (e) {
    if (e instanceof UnpicklingError) throw e;
    // e.g. a string longer than the engine allows: still the one error type callers expect.
    const err = e as { name?: string; message?: string };
    throw new UnpicklingError(`${err?.name ?? "Error"}: ${err?.message ?? String(e)}`, { cause: e });
  }
}

function asBytes(data: unknown): Uint8Array {
  // A plain view, so that slices are plain Uint8Array copies even for a Buffer input.
  if (data instanceof Uint8Array) {
    return Object.getPrototypeOf(data) === Uint8Array.prototype
      ? data
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError(`pickle.loads expects a Uint8Array, got ${data === null ? "null" : typeof data}`);
}

function limit(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value >= 0)) throw new RangeError(`${name} must be a non-negative number, not ${String(value)}`);
  return value;
}

function underflow(): UnpicklingError {
  return new UnpicklingError("unpickling stack underflow");
}

function truncated(): UnpicklingError {
  return new UnpicklingError("pickle data was truncated");
}

function typeName(v: unknown): string {
  if (v === null) return "NoneType";
  if (Array.isArray(v)) return "list";
  if (v instanceof Uint8Array) return "bytes";
  if (v instanceof Set) return "set";
  if (v instanceof Map) return "dict";
  if (v instanceof PyGlobal) return v.qualname;
  if (typeof v === "object") return "dict";
  return { string: "str", number: "float", bigint: "int", boolean: "bool" }[typeof v as string] ?? typeof v;
}

/** Work REDUCE does on its first argument: it walks all of it. */
function copyCost(arg: unknown): number {
  if (typeof arg === "string" || Array.isArray(arg) || arg instanceof Uint8Array) return arg.length;
  return arg instanceof Set ? arg.size : 0;
}

class Unpickler {
  private readonly buf: Uint8Array;
  /** Made on first use: only floats need it (integers are read by hand, cheaper for small pickles). */
  private view: DataView | null = null;
  private pos = 0;
  private readonly end: number;

  private readonly stack: unknown[] = [];
  /** Stack lengths at each MARK; `fence` is the top one: nothing below it may be popped. */
  private readonly marks: number[] = [];
  private fence = 0;

  private readonly memo: unknown[] = [];
  /** Filled memo slots: MEMOIZE writes at this index, like CPython's memo_len. */
  private memoLen = 0;

  private readonly maxDepth: number;
  private readonly maxMemo: number;
  private readonly maxLength: number;

  /** Depth of containers deeper than 1 (see the header comment); made when first needed. */
  private depths: Map<object, number> | null = null;
  /** Containers handed out again by GET/DUP after creation; made when first needed. */
  private escaped: Set<object> | null = null;
  /** Depth figures may be stale: the post-pass must measure. */
  private recheck = false;
  /** Dicts that became Maps, old object → Map. */
  private converted: Map<object, Map<unknown, unknown>> | null = null;
  /** A converted dict had escaped: the post-pass must replace references to it. */
  private repair = false;
  /** Elements REDUCE may still copy (see the header comment). */
  private copyBudget: number;

  constructor(buf: Uint8Array, limits: PickleLimits | undefined) {
    this.buf = buf;
    this.end = buf.length;
    this.maxDepth = limit(limits?.maxDepth, DEFAULT_MAX_DEPTH, "maxDepth");
    this.maxMemo = limit(limits?.maxMemo, Math.max(1024, buf.length), "maxMemo");
    this.maxLength = limit(limits?.maxLength, Infinity, "maxLength");
    this.copyBudget = buf.length;
  }

  load(): unknown {
    const buf = this.buf;
    const stack = this.stack;
    for (;;) {
      if (this.pos >= this.end) throw new UnpicklingError("Ran out of input");
      const op = buf[this.pos++]!;
      switch (op) {
        // ---- structure ----------------------------------------------------------------
        case 0x80: {
          // PROTO: any opcode is accepted under any header, as CPython does.
          const proto = this.u8();
          if (proto > HIGHEST_PROTOCOL) throw new UnpicklingError(`unsupported pickle protocol: ${proto}`);
          break;
        }
        case 0x95: {
          // FRAME: a size hint; like CPython's C unpickler, only check the frame is all there.
          const n = this.u64();
          if (n > this.end - this.pos) throw truncated();
          break;
        }
        case 0x2e: // STOP
          return this.finish(this.pop());
        case 0x28: // MARK
          this.marks.push(stack.length);
          this.fence = stack.length;
          break;
        case 0x30: // POP: pops the top mark instead when nothing is above it (CPython)
          if (this.marks.length > 0 && this.marks[this.marks.length - 1] === stack.length) this.popMark();
          else this.pop();
          break;
        case 0x31: // POP_MARK
          stack.length = this.popMark();
          break;
        case 0x32: {
          // DUP
          const v = this.top();
          this.escape(v);
          stack.push(v);
          break;
        }

        // ---- scalars ------------------------------------------------------------------
        case 0x4e: // NONE
          stack.push(null);
          break;
        case 0x88: // NEWTRUE
          stack.push(true);
          break;
        case 0x89: // NEWFALSE
          stack.push(false);
          break;
        case 0x4b: // BININT1
          stack.push(this.u8());
          break;
        case 0x4d: // BININT2
          stack.push(this.u16());
          break;
        case 0x4a: // BININT
          stack.push(this.i32());
          break;
        case 0x8a: {
          // LONG1
          const n = this.u8();
          stack.push(this.long(n));
          break;
        }
        case 0x8b: {
          // LONG4
          const n = this.i32();
          if (n < 0) throw new UnpicklingError("LONG pickle has negative byte count");
          stack.push(this.long(n));
          break;
        }
        case 0x47: // BINFLOAT (big-endian)
          this.need(8);
          this.view ??= new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
          stack.push(this.view.getFloat64(this.pos, false));
          this.pos += 8;
          break;
        case 0x49: // INT
          stack.push(parseIntLine(this.line()));
          break;
        case 0x4c: // LONG
          stack.push(parseLongLine(this.line()));
          break;
        case 0x46: // FLOAT
          stack.push(parseFloatLine(this.line()));
          break;

        // ---- str and bytes ------------------------------------------------------------
        case 0x8c: // SHORT_BINUNICODE
          this.str(this.u8(), "SHORT_BINUNICODE");
          break;
        case 0x58: // BINUNICODE
          this.str(this.u32(), "BINUNICODE");
          break;
        case 0x8d: // BINUNICODE8
          this.str(this.u64(), "BINUNICODE8");
          break;
        case 0x56: {
          // UNICODE (protocol 0): raw-unicode-escape
          const start = this.pos;
          const end = this.lineEnd();
          stack.push(decodeRawUnicodeEscape(buf, start, end));
          break;
        }
        case 0x53: {
          // STRING (Python 2 str, quoted)
          const start = this.pos;
          const end = this.lineEnd();
          stack.push(parseStringLine(buf, start, end));
          break;
        }
        case 0x55: // SHORT_BINSTRING
          this.pyString(this.u8(), "SHORT_BINSTRING");
          break;
        case 0x54: {
          // BINSTRING
          const n = this.i32();
          if (n < 0) throw new UnpicklingError("BINSTRING pickle has negative byte count");
          this.pyString(n, "BINSTRING");
          break;
        }
        case 0x43: // SHORT_BINBYTES
          stack.push(this.bytes(this.u8(), "SHORT_BINBYTES"));
          break;
        case 0x42: // BINBYTES
          stack.push(this.bytes(this.u32(), "BINBYTES"));
          break;
        case 0x8e: // BINBYTES8
          stack.push(this.bytes(this.u64(), "BINBYTES8"));
          break;
        case 0x96: // BYTEARRAY8
          stack.push(this.bytes(this.u64(), "BYTEARRAY8"));
          break;

        // ---- containers ---------------------------------------------------------------
        case 0x5d: // EMPTY_LIST
        case 0x29: // EMPTY_TUPLE
          stack.push([]);
          break;
        case 0x7d: // EMPTY_DICT
          stack.push({});
          break;
        case 0x8f: // EMPTY_SET
          stack.push(new Set());
          break;
        case 0x6c: // LIST
        case 0x74: {
          // TUPLE
          const k = this.popMark();
          const items = stack.slice(k);
          stack.length = k;
          this.created(items, this.deepest(items, 0, items.length));
          stack.push(items);
          break;
        }
        case 0x85: // TUPLE1
        case 0x86: // TUPLE2
        case 0x87: {
          // TUPLE3
          const n = op - 0x84;
          if (stack.length - n < this.fence) throw underflow();
          const items = stack.splice(stack.length - n, n);
          this.created(items, this.deepest(items, 0, n));
          stack.push(items);
          break;
        }
        case 0x91: {
          // FROZENSET
          const k = this.popMark();
          const d = this.deepest(stack, k, stack.length);
          const set = new Set(stack.slice(k));
          stack.length = k;
          this.created(set, d);
          stack.push(set);
          break;
        }
        case 0x64: {
          // DICT
          const k = this.popMark();
          if ((stack.length - k) % 2 !== 0) throw new UnpicklingError("odd number of items for DICT");
          stack.splice(k, 0, {});
          this.fillDict(k, k + 1, stack.length);
          stack.length = k + 1;
          break;
        }
        case 0x61: {
          // APPEND
          const v = this.pop();
          const list = this.top();
          if (!Array.isArray(list)) throw new UnpicklingError(`APPEND to a ${typeName(list)} object: only lists take items`);
          const d = this.depthOf(v);
          list.push(v);
          if (d > 0) this.grew(list, d);
          break;
        }
        case 0x65: {
          // APPENDS
          const k = this.popMark();
          const list = this.below(k);
          if (!Array.isArray(list)) throw new UnpicklingError(`APPENDS to a ${typeName(list)} object: only lists take items`);
          const d = this.deepest(stack, k, stack.length);
          for (let i = k; i < stack.length; i++) list.push(stack[i]);
          stack.length = k;
          if (d > 0) this.grew(list, d);
          break;
        }
        case 0x73: {
          // SETITEM
          if (stack.length - 3 < this.fence) throw underflow();
          this.fillDict(stack.length - 3, stack.length - 2, stack.length);
          stack.length -= 2;
          break;
        }
        case 0x75: {
          // SETITEMS
          const k = this.popMark();
          this.below(k);
          if ((stack.length - k) % 2 !== 0) throw new UnpicklingError("odd number of items for SETITEMS");
          this.fillDict(k - 1, k, stack.length);
          stack.length = k;
          break;
        }
        case 0x90: {
          // ADDITEMS
          const k = this.popMark();
          const set = this.below(k);
          if (!(set instanceof Set)) throw new UnpicklingError(`ADDITEMS to a ${typeName(set)} object: only sets take items`);
          const d = this.deepest(stack, k, stack.length);
          for (let i = k; i < stack.length; i++) set.add(stack[i]);
          stack.length = k;
          if (d > 0) this.grew(set, d);
          break;
        }

        // ---- memo ---------------------------------------------------------------------
        case 0x94: // MEMOIZE
          this.memoPut(this.memoLen);
          break;
        case 0x71: // BINPUT
          this.memoPut(this.u8());
          break;
        case 0x72: // LONG_BINPUT
          this.memoPut(this.u32());
          break;
        case 0x70: // PUT
          this.memoPut(parseIndexLine(this.line(), "PUT"));
          break;
        case 0x68: // BINGET
          this.memoGet(this.u8());
          break;
        case 0x6a: // LONG_BINGET
          this.memoGet(this.u32());
          break;
        case 0x67: // GET
          this.memoGet(parseIndexLine(this.line(), "GET"));
          break;

        // ---- globals: the allow-list only ---------------------------------------------
        case 0x63: {
          // GLOBAL "module\nname\n"
          const module = this.utf8Line();
          const name = this.utf8Line();
          stack.push(resolveGlobal(module, name));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== "string" || typeof name !== "string") {
            throw new UnpicklingError("STACK_GLOBAL requires str");
          }
          stack.push(resolveGlobal(module, name));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = this.pop();
          const fn = this.top();
          if (!(fn instanceof PyGlobal)) {
            throw new UnpicklingError(`REDUCE on a ${typeName(fn)} object is forbidden: only allowed globals may be called`);
          }
          const result = applyGlobal(fn, args);
          this.copyBudget -= copyCost((args as unknown[])[0]);
          if (this.copyBudget < 0) {
            throw new UnpicklingError("REDUCE copies more elements than the pickle has bytes (a memoized argument reused)");
          }
          stack[stack.length - 1] = result;
          // set(list) holds what the list held: same depth as the list.
          if (result instanceof Set) this.created(result, Math.max(0, this.depthOf((args as unknown[])[0]) - 1));
          break;
        }

        // ---- refused: these build class instances or need callbacks --------------------
        case 0x50: // PERSID
        case 0x51: // BINPERSID
          throw new UnpicklingError(
            "A load persistent id instruction was encountered, but no persistent_load function was specified.",
          );
        case 0x97: // NEXT_BUFFER
          throw new UnpicklingError("pickle stream refers to out-of-band data but no *buffers* argument was given");
        case 0x82: // EXT1
        case 0x83: // EXT2
        case 0x84: {
          // EXT4
          const code = op === 0x82 ? this.u8() : op === 0x83 ? this.u16() : this.u32();
          throw new UnpicklingError(`extension code ${code} is forbidden (the copyreg extension registry is not consulted)`);
        }
        case 0x62: // BUILD
        case 0x69: // INST
        case 0x6f: // OBJ
        case 0x81: // NEWOBJ
        case 0x92: // NEWOBJ_EX
        case 0x98: // READONLY_BUFFER
          throw new UnpicklingError(
            `opcode ${opcodeName(op)} is forbidden: it makes objects outside the type table (class instances, buffers)`,
          );
        default: {
          const printable = op >= 0x20 && op <= 0x7e;
          const key = printable ? String.fromCharCode(op) : `\\x${op.toString(16).padStart(2, "0")}`;
          throw new UnpicklingError(`invalid load key, '${key}'.`);
        }
      }
    }
  }

  // ---- reading ----------------------------------------------------------------------

  private need(n: number): void {
    if (n > this.end - this.pos) throw truncated();
  }

  private u8(): number {
    if (this.pos >= this.end) throw truncated();
    return this.buf[this.pos++]!;
  }

  private u16(): number {
    this.need(2);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return b[p]! | (b[p + 1]! << 8);
  }

  private i32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
  }

  private u32(): number {
    return this.i32() >>> 0;
  }

  /** u64le as a number; values past 2^53 round, which is fine: they exceed any input anyway. */
  private u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    return hi * 0x1_0000_0000 + lo;
  }

  /** Checks a declared payload length before anything is allocated for it. */
  private payload(n: number, opname: string): void {
    if (n > this.maxLength) {
      throw new UnpicklingError(`${opname} payload of ${n} bytes exceeds the limit of ${this.maxLength} bytes (maxLength)`);
    }
    if (n > this.end - this.pos) {
      throw new UnpicklingError(
        `pickle data was truncated: ${opname} declares ${n} bytes but only ${this.end - this.pos} remain`,
      );
    }
  }

  private str(n: number, opname: string): void {
    this.payload(n, opname);
    const start = this.pos;
    this.pos += n;
    this.stack.push(decodeUtf8(this.buf, start, start + n));
  }

  private pyString(n: number, opname: string): void {
    this.payload(n, opname);
    const start = this.pos;
    this.pos += n;
    this.stack.push(ascii(this.buf, start, start + n));
  }

  private bytes(n: number, opname: string): Uint8Array {
    this.payload(n, opname);
    const start = this.pos;
    this.pos += n;
    return this.buf.slice(start, start + n);
  }

  private long(n: number): number | bigint {
    this.payload(n, "LONG");
    const start = this.pos;
    this.pos += n;
    return decodeLong(this.buf, start, n);
  }

  /** Consumes one "\n"-terminated line and returns where its text ends. */
  private lineEnd(): number {
    const nl = this.buf.indexOf(0x0a, this.pos);
    if (nl < 0) throw truncated();
    if (nl - this.pos > this.maxLength) {
      throw new UnpicklingError(`text argument of ${nl - this.pos} bytes exceeds the limit of ${this.maxLength} bytes (maxLength)`);
    }
    this.pos = nl + 1;
    return nl;
  }

  private line(): string {
    const start = this.pos;
    return latin1(this.buf, start, this.lineEnd());
  }

  private utf8Line(): string {
    const start = this.pos;
    return decodeUtf8(this.buf, start, this.lineEnd());
  }

  // ---- stack ------------------------------------------------------------------------

  private pop(): unknown {
    if (this.stack.length <= this.fence) throw underflow();
    return this.stack.pop();
  }

  private top(): unknown {
    if (this.stack.length <= this.fence) throw underflow();
    return this.stack[this.stack.length - 1];
  }

  /** Removes the top mark and returns its stack index (where the marked items start). */
  private popMark(): number {
    const k = this.marks.pop();
    if (k === undefined) throw new UnpicklingError("could not find MARK");
    this.fence = this.marks.length > 0 ? this.marks[this.marks.length - 1]! : 0;
    return k;
  }

  /** The object just below a popped mark at `k`: the target of APPENDS/SETITEMS/ADDITEMS. */
  private below(k: number): unknown {
    if (k - 1 < this.fence) throw underflow();
    return this.stack[k - 1];
  }

  // ---- memo -------------------------------------------------------------------------

  private memoPut(idx: number): void {
    if (idx >= this.maxMemo) {
      throw new UnpicklingError(`memo index ${idx} exceeds the limit of ${this.maxMemo} entries (maxMemo)`);
    }
    const v = this.top();
    if (this.memo[idx] === undefined) this.memoLen++;
    this.memo[idx] = v;
  }

  private memoGet(idx: number): void {
    let v = idx < this.memo.length ? this.memo[idx] : undefined;
    if (v === undefined) throw new UnpicklingError(`Memo value not found at index ${idx}`);
    if (this.converted !== null && typeof v === "object" && v !== null) v = this.converted.get(v) ?? v;
    this.escape(v);
    this.stack.push(v);
  }

  // ---- depth bookkeeping ------------------------------------------------------------

  private escape(v: unknown): void {
    if (typeof v === "object" && v !== null) (this.escaped ??= new Set()).add(v);
  }

  /** Nesting depth of a value about to be stored in a container (0 for non-containers). */
  private depthOf(v: unknown): number {
    if (typeof v !== "object" || v === null || v instanceof Uint8Array) return 0;
    if (v instanceof PyGlobal) {
      throw new UnpicklingError(`global '${v.qualname}' may only be called by REDUCE, not stored as a value`);
    }
    return this.depths?.get(v) ?? 1;
  }

  private deepest(items: unknown[], from: number, to: number): number {
    let d = 0;
    for (let i = from; i < to; i++) {
      const v = items[i];
      if (typeof v === "object" && v !== null) {
        const dv = this.depthOf(v);
        if (dv > d) d = dv;
      }
    }
    return d;
  }

  /** Records a container that was just made holding children up to depth `childDepth`. */
  private created(container: object, childDepth: number): void {
    if (childDepth === 0) return;
    (this.depths ??= new Map()).set(container, childDepth + 1);
    if (childDepth + 1 > this.maxDepth && !this.recheck) throw depthError(this.maxDepth);
  }

  /** `container` received children up to depth `childDepth`. */
  private grew(container: object, childDepth: number): void {
    const d = childDepth + 1;
    const depths = (this.depths ??= new Map());
    if (d <= (depths.get(container) ?? 1)) return;
    depths.set(container, d);
    if (this.escaped?.has(container)) this.recheck = true;
    else if (d > this.maxDepth && !this.recheck) throw depthError(this.maxDepth);
  }

  // ---- dicts ------------------------------------------------------------------------

  /** Sets the key/value pairs stack[from, to) into the dict at stack[slot]. */
  private fillDict(slot: number, from: number, to: number): void {
    const stack = this.stack;
    let dict = stack[slot];
    if (this.converted !== null && typeof dict === "object" && dict !== null) {
      const m = this.converted.get(dict);
      if (m !== undefined) stack[slot] = dict = m;
    }
    if (dict instanceof Map) {
      for (let i = from; i < to; i += 2) dict.set(stack[i], stack[i + 1]);
    } else if (typeof dict === "object" && dict !== null && Object.getPrototypeOf(dict) === Object.prototype) {
      let allStr = true;
      for (let i = from; i < to; i += 2) {
        if (typeof stack[i] !== "string") {
          allStr = false;
          break;
        }
      }
      if (allStr) {
        for (let i = from; i < to; i += 2) setOwn(dict as Dict, stack[i] as string, stack[i + 1]);
      } else {
        // Converting before any of this batch goes in keeps Python's key order for every
        // dict CPython writes in one batch (fewer than 1000 items).
        const m = this.toMap(slot, dict as Dict);
        for (let i = from; i < to; i += 2) m.set(stack[i], stack[i + 1]);
        dict = m;
      }
    } else {
      throw new UnpicklingError(`SETITEM on a ${typeName(dict)} object: only dicts take items`);
    }
    const d = this.deepest(stack, from, to);
    if (d > 0) this.grew(dict as object, d);
  }

  private toMap(slot: number, obj: Dict): Map<unknown, unknown> {
    const m = new Map<unknown, unknown>();
    for (const k of Object.keys(obj)) m.set(k, obj[k]);
    (this.converted ??= new Map()).set(obj, m);
    this.stack[slot] = m;
    const d = this.depths?.get(obj);
    if (d !== undefined) this.depths!.set(m, d);
    if (this.escaped?.has(obj)) {
      this.repair = true;
      this.escaped.add(m);
    }
    return m;
  }

  // ---- end --------------------------------------------------------------------------

  private finish(root: unknown): unknown {
    if (root instanceof PyGlobal) throw new UnpicklingError(`global '${root.qualname}' cannot be the result of a pickle`);
    if (this.converted !== null && isContainer(root)) root = this.converted.get(root) ?? root;
    if (this.recheck || this.repair) return repairGraph(root, this.converted, this.maxDepth);
    return root;
  }
}
