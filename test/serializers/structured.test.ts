// The structured serializer: our codec against bun:jsc's semantics, dumpsInto, the
// bun:jsc fallback, the replace/revive hooks, and corrupt input.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { deserialize, serialize } from "bun:jsc";
import fc from "fast-check";
import { structured } from "../../src/serializers/structured.ts";
import { dumps, dumpsInto, loads, MARKER, type StructuredHooks } from "../../src/serializers/structured/index.ts";
import { MAX_DEPTH } from "../../src/serializers/structured/tags.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const jsc = (v: unknown): unknown => deserialize(serialize(v));
const ours = (v: unknown): unknown => loads(dumps(v));

/**
 * null when `a` and `b` are the same structured-clone result: same types and prototypes,
 * Object.is for primitives, key order, holes, Map/Set order, and the same graph of
 * identities (shared and cyclic references). Typed arrays and DataViews compare kind and
 * viewed bytes, not byteOffset (ours get a buffer of their own: documented). Otherwise the
 * path of the first difference.
 */
function difference(a: unknown, b: unknown, path = "$", ab = new Map<object, object>(), ba = new Map<object, object>()): string | null {
  if (typeof a !== typeof b) return `${path}: ${typeof a} vs ${typeof b}`;
  if (typeof a !== "object" || a === null || b === null) return Object.is(a, b) ? null : `${path}: ${String(a)} vs ${String(b)}`;
  const x = a as object;
  const y = b as object;
  if (ab.has(x) || ba.has(y)) return ab.get(x) === y && ba.get(y) === x ? null : `${path}: identity differs`;
  ab.set(x, y);
  ba.set(y, x);
  if (Object.getPrototypeOf(x) !== Object.getPrototypeOf(y)) return `${path}: prototype ${x.constructor?.name} vs ${y.constructor?.name}`;
  if (ArrayBuffer.isView(x)) {
    const v = y as ArrayBufferView;
    const p = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    const q = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    return p.length === q.length && p.every((c, i) => c === q[i]) ? null : `${path}: view bytes differ`;
  }
  if (x instanceof ArrayBuffer) {
    const p = new Uint8Array(x);
    const q = new Uint8Array(y as ArrayBuffer);
    return p.length === q.length && p.every((c, i) => c === q[i]) ? null : `${path}: buffer bytes differ`;
  }
  if (x instanceof Date) return Object.is(x.getTime(), (y as Date).getTime()) ? null : `${path}: date`;
  if (x instanceof RegExp) {
    const r = y as RegExp;
    return x.source === r.source && x.flags === r.flags && x.lastIndex === r.lastIndex ? null : `${path}: regexp`;
  }
  if (x instanceof Number || x instanceof String || x instanceof Boolean) return Object.is(x.valueOf(), (y as Number).valueOf()) ? null : `${path}: boxed`;
  if (x instanceof Map || x instanceof Set) {
    const p = [...(x as Map<unknown, unknown>)];
    const q = [...(y as Map<unknown, unknown>)];
    if (p.length !== q.length) return `${path}: size ${p.length} vs ${q.length}`;
    for (let i = 0; i < p.length; i++) {
      const d = difference(p[i], q[i], `${path}[entry ${i}]`, ab, ba);
      if (d) return d;
    }
  }
  if (Array.isArray(x) && x.length !== (y as unknown[]).length) return `${path}: length`;
  const kx = Object.keys(x);
  const ky = Object.keys(y);
  if (kx.join("\0") !== ky.join("\0")) return `${path}: keys [${kx}] vs [${ky}]`;
  for (const k of kx) {
    const d = difference((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], `${path}.${k}`, ab, ba);
    if (d) return d;
  }
  return null;
}

/** Round-trips `v` through our codec and through bun:jsc; they must agree. */
function agrees(v: unknown): void {
  expect(difference(ours(v), jsc(v))).toBeNull();
}

const loneSurrogates = fc.string({ unit: fc.integer({ min: 0xd7f0, max: 0xe010 }).map((c) => String.fromCharCode(c)), maxLength: 6 });
const extraLeaves = [
  fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }),
  fc.double(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
  fc.constantFrom(-0, NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 31) - 1, 0.5, 127, 128, -32, -33, 255, 256, 32767, 32768),
  loneSurrogates,
  fc.string({ unit: "binary", minLength: 20, maxLength: 200 }),
  fc.string({ unit: "grapheme-ascii", minLength: 30, maxLength: 300 }),
  fc.date({ noInvalidDate: false }),
  fc.constantFrom(/a+b/g, /x/imsuy, /[\u{1F600}]/u, /(?<y>\d{4})/d, new RegExp("")),
  fc.uint8Array({ maxLength: 40 }).map((u) => u.buffer),
  fc.uint8Array({ maxLength: 40 }).map((u) => new DataView(u.buffer)),
  fc.float64Array({ maxLength: 20 }),
  fc.bigInt64Array({ maxLength: 5 }),
];
const anything = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withSparseArray: true,
  withNullPrototype: true,
  withUnicodeString: true,
  values: [fc.anything(), ...extraLeaves] as fc.Arbitrary<unknown>[],
});

describe("round trips like bun:jsc", () => {
  test("scalars", () => {
    const values: unknown[] = [
      null, undefined, true, false, 0, -0, 1, -1, 127, 128, 255, 256, -32, -33, -128, -129, 32767, 32768, -32768, -32769,
      2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53, -(2 ** 53), 0.5, 0.1, 1 / 3, 1e300, 5e-324, NaN, Infinity, -Infinity,
      0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, -(2n ** 63n) - 1n, 2n ** 64n, 3n ** 500n, -(7n ** 300n),
    ];
    for (const v of values) {
      const back = ours(v);
      expect(Object.is(back, v)).toBe(true);
      expect(dumps(v)[0]).toBe(MARKER);
    }
  });

  test("strings: ASCII, Latin-1, BMP, astral, lone surrogates, every length class", () => {
    const parts = ["a", "é", "ÿ", "日", "😀", "\ud800", "\udfff", "\u0000", "\u007f", "\u0080", "\u07ff", "\u0800", "\uffff"];
    for (const n of [0, 1, 8, 9, 16, 17, 24, 25, 31, 32, 85, 86, 1000, 100_000]) {
      for (const p of parts) {
        const s = ("x".repeat(Math.max(0, n - p.length)) + p).slice(-Math.max(n, p.length));
        expect(ours(s)).toBe(s);
        const mixed = p.repeat(n);
        expect(ours(mixed)).toBe(mixed);
      }
    }
    expect(ours("a\ud800b\udc00c")).toBe("a\ud800b\udc00c");
    expect(ours("\udc00\ud800")).toBe("\udc00\ud800");
  });

  test("plain objects: key order, integer-like keys, __proto__ as an own key", () => {
    agrees({ b: 1, 2: "two", a: [1, 2], 1: null, "": undefined });
    const evil = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}');
    const back = ours(evil) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.keys(back)).toEqual(["__proto__", "x"]);
    expect((back as { polluted?: boolean }).polluted).toBeUndefined();
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    agrees(evil);
    const bare = Object.assign(Object.create(null), { a: 1 });
    expect(Object.getPrototypeOf(ours(bare))).toBe(Object.prototype); // as bun:jsc
    agrees(bare);
  });

  test("arrays: holes, long sparse arrays, length only", () => {
    agrees([1, , 3]); // eslint-disable-line no-sparse-arrays
    agrees([, , ,]); // eslint-disable-line no-sparse-arrays
    const sparse: unknown[] = [];
    sparse[5] = "five";
    sparse[100_000] = "far";
    agrees(sparse);
    expect(dumps(sparse).length).toBeLessThan(100);
    const late: unknown[] = Array.from({ length: 300 }, (_, i) => i);
    delete late[250];
    late[1000] = 1;
    agrees(late);
    const empty: unknown[] = [];
    empty.length = 100_000;
    agrees(empty);
    empty.length = 2 ** 32 - 1; // (bun:jsc takes half a minute over this one; we write 9 bytes)
    expect(dumps(empty).length).toBeLessThan(10);
    expect((ours(empty) as unknown[]).length).toBe(2 ** 32 - 1);
    agrees([undefined, null, [[[]]]]);
    // Documented difference: named properties of a dense array are not carried.
    const named = Object.assign([1, 2], { extra: "x" });
    expect(ours(named)).toEqual([1, 2]);
    expect(Object.keys(ours(named) as object)).toEqual(["0", "1"]);
  });

  test("Map, Set, Date, RegExp, boxed primitives", () => {
    agrees(new Map<unknown, unknown>([[1, "a"], ["1", { b: 2 }], [{ k: 1 }, new Set([1, "1", 1n])], [NaN, -0]]));
    agrees(new Set([undefined, null, 0, -0, NaN, "x", [1]]));
    agrees([new Date(0), new Date(-8.64e15), new Date(8.64e15), new Date(NaN), new Date(1732550400123)]);
    const re = /a(b)+c/dgimsuy;
    re.lastIndex = 3;
    agrees(re);
    agrees([/x/v, new RegExp("a/b", "g"), /\//]);
    agrees([Object(1.5), Object(-0), Object("str"), Object(""), Object(true), Object(false)]);
  });

  test("ArrayBuffer and every typed array kind; views own their memory", () => {
    const kinds = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float16Array, Float32Array, Float64Array];
    for (const K of kinds) {
      const v = new K(9).map((_, i) => i * 3 - 7);
      const back = ours(v) as typeof v;
      expect(back).toBeInstanceOf(K);
      expect(Array.from(back)).toEqual(Array.from(v));
    }
    agrees(new BigInt64Array([-1n, 2n ** 62n]));
    agrees(new BigUint64Array([2n ** 64n - 1n]));
    agrees(new Float64Array([NaN, -0, Infinity]));
    agrees(new ArrayBuffer(0));
    agrees(new Uint8Array([1, 2, 3]).buffer);
    agrees(new DataView(new Uint8Array([1, 2, 3, 4]).buffer, 1, 2));
    // A view into a bigger buffer: its bytes only, at offset 0 of a buffer of its own.
    const big = new Uint8Array(64).map((_, i) => i);
    const view = new Int16Array(big.buffer, 8, 4);
    const back = ours(view) as Int16Array;
    expect(Array.from(back)).toEqual(Array.from(view));
    expect(back.byteOffset).toBe(0);
    expect(back.buffer.byteLength).toBe(8);
    // Decoded views never alias the input.
    const msg = dumps({ a: new Uint8Array([5, 6, 7]), b: new Uint8Array([8]).buffer });
    const got = loads(msg) as { a: Uint8Array; b: ArrayBuffer };
    msg.fill(0);
    expect(Array.from(got.a)).toEqual([5, 6, 7]);
    expect(new Uint8Array(got.b)[0]).toBe(8);
    // Buffer is a Uint8Array, as with bun:jsc.
    const buf = ours(Buffer.from("hi")) as Uint8Array;
    expect(Object.getPrototypeOf(buf)).toBe(Uint8Array.prototype);
    expect(Array.from(buf)).toEqual([104, 105]);
  });

  test("shared and cyclic references keep their identity", () => {
    const shared = { s: 1 };
    const list = [shared, shared, { inner: shared }];
    const back = ours(list) as [object, object, { inner: object }];
    expect(back[0]).toBe(back[1]);
    expect(back[2].inner).toBe(back[0]);
    const cyc: Record<string, unknown> = { name: "root" };
    cyc.self = cyc;
    cyc.list = [cyc, new Map([[cyc, cyc]])];
    const c = ours(cyc) as typeof cyc;
    expect(c.self).toBe(c);
    expect((c.list as unknown[])[0]).toBe(c);
    expect(((c.list as unknown[])[1] as Map<unknown, unknown>).get(c)).toBe(c);
    agrees(cyc);
    const s = new Set<unknown>();
    s.add(s);
    agrees(s);
    const arr: unknown[] = [];
    arr.push(arr, arr);
    agrees(arr);
    // Many objects (past the linear lookup), shared across them.
    const many = Array.from({ length: 100 }, (_, i) => ({ i }));
    agrees([...many, ...many.reverse()]);
    const u8 = new Uint8Array([1]);
    agrees([u8, u8, u8.buffer === u8.buffer]);
    const ab = new ArrayBuffer(4);
    agrees([ab, ab]);
  });

  test("deep nesting beyond MAX_DEPTH goes to bun:jsc and still round-trips", () => {
    let deep: unknown = "bottom";
    for (let i = 0; i < MAX_DEPTH + 10; i++) deep = [deep];
    const bytes = dumps(deep);
    expect(bytes[0]).not.toBe(MARKER);
    let back = loads(bytes);
    for (let i = 0; i < MAX_DEPTH + 10; i++) back = (back as unknown[])[0];
    expect(back).toBe("bottom");
    let ok: unknown = 1;
    for (let i = 0; i < MAX_DEPTH - 5; i++) ok = { d: ok };
    expect(dumps(ok)[0]).toBe(MARKER);
    agrees(ok);
  });

  test("property: any value fast-check makes decodes as bun:jsc decodes it", () => {
    fc.assert(
      fc.property(anything, (v) => {
        const d = difference(ours(v), jsc(v));
        if (d) throw new Error(d);
      }),
      { numRuns: 1500 },
    );
  });

  test("property: shared references inside generated values", () => {
    fc.assert(
      fc.property(fc.array(anything.filter((x) => typeof x === "object" && x !== null), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 12 }), (pool, picks) => {
        const v = { pool, picks: picks.map((i) => pool[i % pool.length]), map: new Map(picks.map((i) => [pool[i % pool.length], i])) };
        const d = difference(ours(v), jsc(v));
        if (d) throw new Error(d);
      }),
      { numRuns: 300 },
    );
  });

  test("the Serializer object and the module functions are the same codec", () => {
    const v = { id: 1, name: "item-1", values: [0.5, 1 / 3] };
    expect(structured.dumps(v)).toEqual(dumps(v));
    expect(structured.loads(structured.dumps(v))).toEqual(v);
  });
});

describe("what goes to bun:jsc", () => {
  test("class instances, Errors, Blobs, Maps with properties, views sharing a buffer", () => {
    class Point {
      constructor(public x: number, public y: number) {}
      get norm() {
        return Math.hypot(this.x, this.y);
      }
    }
    const withProps = Object.assign(new Map([[1, 2]]), { note: "kept by bun:jsc" });
    const buffer = new ArrayBuffer(8);
    const cases: unknown[] = [
      new Point(3, 4),
      { nested: [new Point(1, 2)] },
      new Error("boom", { cause: { code: 7 } }),
      new TypeError("t"),
      withProps,
      new Set<unknown>([1]).add(Object.assign(new Set(), { x: 1 })),
      [new Uint8Array(buffer, 0, 4), new Uint16Array(buffer, 4, 2)],
      [buffer, new Uint8Array(buffer)],
      new ArrayBuffer(4, { maxByteLength: 16 }),
      new Uint8Array(new SharedArrayBuffer(4)),
      new (class Sub extends Map<number, number> {})([[1, 2]]),
    ];
    for (const v of cases) {
      const bytes = dumps(v);
      expect(bytes[0]).not.toBe(MARKER);
      expect(difference(loads(bytes), jsc(v))).toBeNull();
    }
    const err = loads(dumps(new RangeError("r"))) as Error;
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toBe("r");
    // Views of one buffer still share it after the trip, as with bun:jsc.
    const [a, b] = loads(dumps([new Uint8Array(buffer, 0, 4), new Uint16Array(buffer, 4, 2)])) as [Uint8Array, Uint16Array];
    expect(a.buffer).toBe(b.buffer);
  });

  test("bun:jsc messages from elsewhere still load", () => {
    const v = { m: new Map([[1, new Date(5)]]) };
    expect(difference(loads(new Uint8Array(serialize(v))), v)).toBeNull();
    expect(difference(structured.loads(serialize(v, { binaryType: "nodebuffer" })), v)).toBeNull();
  });

  test("functions and symbols: TypeError, as before", () => {
    for (const v of [() => 1, function named() {}, Symbol("s"), { a: { b: [1, () => 2] } }, new Map([[1, Symbol.iterator]]), [class {}]]) {
      expect(() => dumps(v)).toThrow(TypeError);
      expect(() => dumpsInto(v, new Uint8Array(100), 0)).toThrow(TypeError);
    }
    expect(() => dumps({ f() {} })).toThrow("cannot serialize object of type 'Object' (or something inside it): it holds function f, and structured clone cannot copy functions");
    expect(() => dumps(Symbol("q"))).toThrow("structured clone cannot copy symbols");
    // An uncloneable object inside a fallback message: bun:jsc's DataCloneError, as a TypeError.
    expect(() => dumps([new Error("e"), new WeakMap()])).toThrow(TypeError);
  });

  test("a throwing getter: TypeError with the cause", () => {
    const v = {
      get bad(): number {
        throw new Error("getter says no");
      },
    };
    expect(() => dumps(v)).toThrow("getter says no");
    expect(() => dumps(v)).toThrow(TypeError);
  });

  test("re-entrant use from a getter", () => {
    const v = {
      get inner() {
        return loads(dumps({ nested: [1, 2, 3] }));
      },
      after: "x",
    };
    expect(ours(v)).toEqual({ inner: { nested: [1, 2, 3] }, after: "x" });
  });
});

describe("dumpsInto", () => {
  test("writes the bytes dumps returns, at an offset, and reports what does not fit", () => {
    const v = { id: 3, name: "item-3", values: Array.from({ length: 10 }, (_, k) => k / 3), s: "é".repeat(50), big: "x".repeat(500) };
    const expected = dumps(v);
    const target = new Uint8Array(4096).fill(0xee);
    const n = dumpsInto(v, target, 17);
    expect(n).toBe(expected.length);
    expect([...target.subarray(17, 17 + n)]).toEqual([...expected]);
    expect(target[16]).toBe(0xee);
    expect(target[17 + n]).toBe(0xee);
    expect(loads(target.subarray(17, 17 + n))).toEqual(v);
    for (const room of [0, 1, 10, expected.length - 1]) expect(dumpsInto(v, new Uint8Array(room + 5), 5)).toBe(-1);
    expect(dumpsInto(v, new Uint8Array(expected.length), 0)).toBe(expected.length);
    // Into a view at an offset of a bigger buffer, and after a dumps in between.
    const outer = new Uint8Array(8192);
    const view = outer.subarray(100, 3000);
    expect(dumpsInto(v, view, 0)).toBe(expected.length);
    expect([...outer.subarray(100, 100 + expected.length)]).toEqual([...expected]);
    dumps([1, 2, 3]);
    expect(dumpsInto(v, view, 1000)).toBe(expected.length);
    expect(loads(view.subarray(1000, 1000 + expected.length))).toEqual(v);
    expect(() => dumpsInto(v, view, -1)).toThrow(RangeError);
    expect(() => dumpsInto(v, view, view.length + 1)).toThrow(RangeError);
  });

  test("fallback messages too", () => {
    const v = { e: new Error("x") };
    const expected = dumps(v);
    const target = new Uint8Array(expected.length + 10);
    expect(dumpsInto(v, target, 10)).toBe(expected.length);
    expect((loads(target.subarray(10)) as { e: Error }).e.message).toBe("x");
    expect(dumpsInto(v, new Uint8Array(expected.length - 1), 0)).toBe(-1);
  });

  test("a long string and a large typed array at the edge of the room", () => {
    for (const v of ["y".repeat(3000), "ü".repeat(3000), new Float64Array(500).fill(1.5)]) {
      const expected = dumps(v);
      expect(dumpsInto(v, new Uint8Array(expected.length), 0)).toBe(expected.length);
      expect(dumpsInto(v, new Uint8Array(expected.length - 1), 0)).toBe(-1);
    }
  });
});

describe("hooks", () => {
  class Handle {
    constructor(readonly fd: number) {}
  }
  const replaced: object[] = [];
  const hooks: StructuredHooks = {
    replace(obj) {
      if (!(obj instanceof Handle)) return undefined;
      replaced.push(obj);
      return { fd: obj.fd };
    },
    revive(value) {
      return new Handle((value as { fd: number }).fd * 10);
    },
  };

  test("replace → EXTERNAL → revive, once per object, identity kept", () => {
    replaced.length = 0;
    const h = new Handle(3);
    const msg = { conn: h, again: h, other: new Handle(4), data: [1, { x: new Map([[1, 2]]) }], when: new Date(1) };
    const bytes = dumps(msg, hooks);
    expect(bytes[0]).toBe(MARKER);
    expect(replaced).toEqual([h, msg.other]);
    const back = loads(bytes, hooks) as { conn: Handle; again: Handle; other: Handle; data: unknown[] };
    expect(back.conn).toBeInstanceOf(Handle);
    expect(back.conn.fd).toBe(30);
    expect(back.again).toBe(back.conn);
    expect(back.other.fd).toBe(40);
    expect(back.data).toEqual([1, { x: new Map([[1, 2]]) }]);
  });

  test("replace is not offered plain data", () => {
    const seen: object[] = [];
    const spy: StructuredHooks = {
      replace(obj) {
        seen.push(obj);
        return undefined;
      },
    };
    dumps({ a: [1, "s", new Map([[{}, new Set([new Date(), /r/, new Uint8Array(2), new ArrayBuffer(1), new DataView(new ArrayBuffer(1)), Object(1)])]])] }, spy);
    expect(seen).toEqual([]);
  });

  test("without a receiver: a clear error", () => {
    const bytes = dumps([new Handle(1)], hooks);
    expect(() => loads(bytes)).toThrow("message contains a transferred object but no receiver for it");
    expect(() => loads(bytes, {})).toThrow("no receiver");
  });

  test("an object replace declines goes to bun:jsc; mixed with a replaced one: TypeError", () => {
    const bytes = dumps({ e: new Error("declined") }, hooks);
    expect(bytes[0]).not.toBe(MARKER);
    expect((loads(bytes) as { e: Error }).e.message).toBe("declined");
    replaced.length = 0;
    // The error object comes first: the Handle after it is still offered (and found).
    expect(() => dumps([new Error("x"), new Handle(1)], hooks)).toThrow(TypeError);
    expect(replaced.length).toBe(1);
    expect(() => dumps([new Handle(1), new Error("x")], hooks)).toThrow(/cannot carry the transferred objects/);
  });

  test("errors from the hooks pass through unchanged", () => {
    class Refused extends Error {}
    const refusing: StructuredHooks = {
      replace() {
        throw new Refused("cannot move a TCP connection");
      },
      revive() {
        throw new Refused("cannot revive");
      },
    };
    expect(() => dumps({ h: new Handle(1) }, refusing)).toThrow(Refused);
    expect(() => loads(dumps({ h: new Handle(1) }, hooks), refusing)).toThrow(Refused);
  });

  test("through dumpsInto", () => {
    const target = new Uint8Array(256);
    const n = dumpsInto({ h: new Handle(2) }, target, 3, hooks);
    expect(n).toBeGreaterThan(0);
    expect((loads(target.subarray(3, 3 + n), hooks) as { h: Handle }).h.fd).toBe(20);
  });
});

describe("corrupt input", () => {
  const sample = dumps({
    id: 1, name: "item", values: [0.5, 1 / 3, -7, 300, 70000, 2n, 2n ** 70n], m: new Map([["k", new Set([1])]]),
    d: new Date(3), r: /x/g, t: new Float64Array([1, 2]), ab: new ArrayBuffer(3), b: Object(true), s: "é".repeat(40), long: "z".repeat(40),
    h: [1, , 2], u: "\ud800", shared: [] as unknown[],
  });

  function clearError(f: () => unknown): void {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(Error);
      expect((e as Error).message).toMatch(/^structured: /);
    }
  }

  test("every truncation: 'truncated data'", () => {
    for (let n = 1; n < sample.length; n++) expect(() => loads(sample.subarray(0, n))).toThrow("structured: truncated data");
    expect(() => loads(new Uint8Array(0))).toThrow("structured: empty message");
  });

  test("bad tags, trailing bytes, huge claimed lengths, references to nothing", () => {
    expect(() => loads(new Uint8Array([MARKER, 0xbf]))).toThrow("structured: invalid tag 0xbf");
    expect(() => loads(new Uint8Array([MARKER, 0xcf]))).toThrow("invalid tag 0xcf");
    expect(() => loads(new Uint8Array([MARKER, 1, 2]))).toThrow("structured: 1 bytes after the value");
    expect(() => loads(new Uint8Array([MARKER, 0xc6, 0xff, 0xff, 0xff, 0xff, 0x0f]))).toThrow("truncated");
    expect(() => loads(new Uint8Array([MARKER, 0xc7, 9, 0xff, 0xff, 0xff, 0xff, 0x0f]))).toThrow("truncated");
    expect(() => loads(new Uint8Array([MARKER, 0xad, 0xff, 0xff, 0xff, 0x7f]))).toThrow("truncated");
    expect(() => loads(new Uint8Array([MARKER, 0xae, 0xff, 0xff, 0xff, 0x7f]))).toThrow("truncated");
    expect(() => loads(new Uint8Array([MARKER, 0xaa, 0xff, 0xff, 0xff, 0x7f]))).toThrow("truncated");
    expect(() => loads(new Uint8Array([MARKER, 0xc6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toThrow("length out of range");
    expect(() => loads(new Uint8Array([MARKER, 0xb1, 1]))).toThrow("reference to unknown object");
    expect(() => loads(new Uint8Array([MARKER, 0xc7, 99, 0]))).toThrow("unknown typed array kind");
    expect(() => loads(new Uint8Array([MARKER, 0xc7, 9, 3, 1, 2, 3]))).toThrow("do not make whole Float64Array elements");
    expect(() => loads(new Uint8Array([MARKER, 0xc0, 1, 2, 0xb0]))).toThrow("object key is a number");
    expect(() => loads(new Uint8Array([MARKER, 0xc5, 0x81, 0x28, 0x80]))).toThrow("invalid regular expression");
    expect(() => loads(new Uint8Array([MARKER, 0xc8, 0xa0]))).toThrow("boxed value");
    // A claimed array length far beyond the input allocates nothing.
    const a = loads(new Uint8Array([MARKER, 0xc1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xb2, 0xb0])) as unknown[];
    expect(a.length).toBe(2 ** 32 - 1);
    expect(() => loads(new Uint8Array([MARKER, 0xc1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1]))).toThrow("truncated");
  });

  test("nesting deeper than MAX_DEPTH: a clear error", () => {
    const bytes = new Uint8Array(2 + 2 * (MAX_DEPTH + 5));
    bytes[0] = MARKER;
    for (let i = 0; i < MAX_DEPTH + 5; i++) bytes.set([0xc1, 1], 1 + 2 * i);
    bytes[bytes.length - 1] = 0;
    expect(() => loads(bytes)).toThrow(`structured: nesting deeper than ${MAX_DEPTH}`);
  });

  test("decodes from views at any offset, in Buffers and SharedArrayBuffers", () => {
    const v = { x: [1.5, 2.5], s: "text", t: new Float32Array([1, 2]) };
    const bytes = dumps(v);
    for (let off = 0; off < 9; off++) {
      const host = new Uint8Array(bytes.length + 20);
      host.set(bytes, off);
      expect(loads(host.subarray(off, off + bytes.length))).toEqual(v);
      expect(loads(Buffer.from(host.buffer, off, bytes.length))).toEqual(v);
    }
    const shared = new Uint8Array(new SharedArrayBuffer(bytes.length));
    shared.set(bytes);
    const back = loads(shared) as typeof v;
    expect(back).toEqual(v);
    expect(back.t.buffer).toBeInstanceOf(ArrayBuffer);
  });

  test("fuzz: mutated messages decode or fail with a clear error", () => {
    const corpus = [sample, ...[{ a: [1, 2, { b: "c" }] }, new Map([[1, [2, 3]]]), [1.5, "x", null, undefined, true]].map((v) => dumps(v))];
    fc.assert(
      fc.property(
        fc.constantFrom(...corpus),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.option(fc.nat()),
        (base, edits, cut) => {
          const bytes = base.slice(0, cut === null ? base.length : 1 + (cut % base.length));
          for (const [at, b] of edits) if (bytes.length > 1) bytes[1 + (at % (bytes.length - 1))] = b;
          clearError(() => loads(bytes));
        },
      ),
      { numRuns: 5000 },
    );
  });

  test("fuzz: random bytes after the marker", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (tail) => {
        const bytes = new Uint8Array(tail.length + 1);
        bytes[0] = MARKER;
        bytes.set(tail, 1);
        clearError(() => loads(bytes));
      }),
      { numRuns: 5000 },
    );
  });
});
