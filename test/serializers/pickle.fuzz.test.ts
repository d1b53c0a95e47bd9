// Property tests for the pickle codec (fast-check, fixed seeds so a failure reproduces):
//  1. loads(dumps(v)) is v, up to the type table's documented normalizations, for random
//     values of the table, every protocol; shared and cyclic references keep their identity.
//  2. Damaged pickles (bit flips, truncation, insertions, opcode splices) either load or
//     throw UnpicklingError: no other error type, no hang, and a result no larger than a
//     small multiple of the input.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import fc from "fast-check";
import { pickle, UnpicklingError } from "../../src/serializers/pickle/index.ts";
import { same } from "../fixtures/assert.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const SEED = 0x5eed;

// ---- the table's values ----------------------------------------------------------------

/** A string of UTF-16 code units: lone surrogates included. */
const units = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 });
const text = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: "binary", maxLength: 12 }), units, fc.constantFrom("__proto__", "constructor", "toString", "0", "1e3"));
const bigOutsideSafe = fc.oneof(
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 700n }),
  fc.bigInt({ min: -(2n ** 700n), max: -(2n ** 53n) }),
);
const number = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(), // NaN, ±Infinity and -0 included
  fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 53 - 1, 2 ** 53),
);
const bytes = fc.uint8Array({ maxLength: 40 });

/** Scalars whose decoded forms are all distinct when the originals are (usable as keys). */
const keyScalar = fc.oneof(fc.constant(null), fc.boolean(), number, bigOutsideSafe, text, bytes);
const scalar = fc.oneof(keyScalar, fc.constant(undefined), fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }));

const { value } = fc.letrec<{ value: unknown; key: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("value"), { maxLength: 5 }),
    fc.array(fc.tuple(text, tie("value")), { maxLength: 5 }).map(ownObject),
    fc.array(fc.tuple(tie("key"), tie("value")), { maxLength: 4 }).map((e) => new Map(e)),
    fc.array(tie("key"), { maxLength: 4 }).map((e) => new Set(e)),
  ),
  // Hashable in Python: arrays become tuples, sets frozensets.
  key: fc.oneof(
    { depthSize: "small" },
    keyScalar,
    fc.array(tie("key"), { maxLength: 3 }),
    fc.array(tie("key"), { maxLength: 3 }).map((e) => new Set(e)),
  ),
}));

function ownObject(entries: [string, unknown][]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  return o;
}

/**
 * What loads(dumps(v)) gives: undefined → null, a bigint in the safe range → number, a Map
 * with only string keys (or none) → plain object. Everything else is itself.
 */
function expected(v: unknown, seen = new Map<object, unknown>()): unknown {
  if (v === undefined) return null;
  if (typeof v === "bigint") return v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n ? Number(v) : v;
  if (typeof v !== "object" || v === null) return v;
  if (seen.has(v)) return seen.get(v);
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    seen.set(v, out);
    for (let i = 0; i < v.length; i++) out.push(expected(v[i], seen));
    return out;
  }
  if (v instanceof Set) {
    const out = new Set<unknown>();
    seen.set(v, out);
    for (const x of v) out.add(expected(x, seen));
    return out;
  }
  const entries: [unknown, unknown][] = v instanceof Map ? [...v] : Object.keys(v).map((k) => [k, (v as Record<string, unknown>)[k]]);
  if (entries.every(([k]) => typeof k === "string")) {
    const out: Record<string, unknown> = {};
    seen.set(v, out);
    for (const [k, x] of entries) Object.defineProperty(out, k as string, { value: expected(x, seen), writable: true, enumerable: true, configurable: true });
    return out;
  }
  const out = new Map<unknown, unknown>();
  seen.set(v, out);
  for (const [k, x] of entries) out.set(expected(k, seen), expected(x, seen));
  return out;
}

const protocol = fc.constantFrom(2 as const, 3 as const, 4 as const, 5 as const);

describe("round trip", () => {
  test("loads(dumps(v)) equals v up to the table's normalizations, protocols 2–5", () => {
    fc.assert(
      fc.property(value, protocol, (v, p) => {
        const out = pickle.loads(pickle.dumps(v, { protocol: p }));
        if (!same(out, expected(v))) {
          throw new Error(`mismatch (protocol ${p}):\n  got      ${Bun.inspect(out)}\n  expected ${Bun.inspect(expected(v))}`);
        }
      }),
      { seed: SEED, numRuns: 1500 },
    );
  });

  test("shared and cyclic references keep their identity", () => {
    fc.assert(
      fc.property(value, protocol, (v, p) => {
        const holder: Record<string, unknown> = { a: [v], b: null };
        holder.b = holder.a; // shared
        const cycle: unknown[] = [holder];
        cycle.push(cycle); // cyclic
        const out = pickle.loads(pickle.dumps(cycle, { protocol: p })) as [Record<string, unknown>, unknown];
        expect(out[1]).toBe(out);
        expect(out[0]!.a).toBe(out[0]!.b);
        if (!same((out[0]!.a as unknown[])[0], expected(v))) throw new Error("value changed");
      }),
      { seed: SEED + 1, numRuns: 300 },
    );
  });

  test("dumps is deterministic and protocol 5 equals protocol 4 after the header", () => {
    fc.assert(
      fc.property(value, (v) => {
        const p4 = pickle.dumps(v, { protocol: 4 });
        const p5 = pickle.dumps(v, { protocol: 5 });
        expect(Buffer.from(pickle.dumps(v, { protocol: 4 })).equals(Buffer.from(p4))).toBe(true);
        expect(Buffer.from(p5.subarray(2)).equals(Buffer.from(p4.subarray(2)))).toBe(true);
      }),
      { seed: SEED + 2, numRuns: 300 },
    );
  });
});

// ---- damaged input ---------------------------------------------------------------------

/** Every opcode byte, and lengths that make declared sizes interesting. */
const OPCODES = [..."(.0123FIJKLMNPQRSTUVXabcd}eghijl]oqprst)uGBC"].map((c) => c.charCodeAt(0)).concat(
  Array.from({ length: 0x99 - 0x80 }, (_, i) => 0x80 + i),
);
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.oneof(fc.constantFrom(...OPCODES), fc.constantFrom(0, 0xff, 0x7f, 0x80)) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.array(fc.oneof(fc.constantFrom(...OPCODES), fc.nat(255)), { minLength: 1, maxLength: 12 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 24 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(input: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = [...input];
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    switch (m.kind) {
      case "flip":
        if (at < b.length) b[at] = b[at]! ^ (1 << m.bit);
        break;
      case "set":
        if (at < b.length) b[at] = m.byte;
        break;
      case "truncate":
        b = b.slice(0, at);
        break;
      case "insert":
        b.splice(at, 0, ...m.bytes);
        break;
      case "delete":
        b.splice(at, m.count);
        break;
      case "duplicate": // repeat a run: repeated memo reads, MARKs, APPENDs…
        b.splice(at, 0, ...b.slice(at, at + m.count));
        break;
    }
  }
  return new Uint8Array(b);
}

/** Elements in the result: container entries plus bytes lengths, each object counted once. */
function size(v: unknown, seen = new Set<object>()): number {
  if (typeof v !== "object" || v === null || seen.has(v)) return 0;
  seen.add(v);
  if (v instanceof Uint8Array) return v.length;
  let n = 0;
  const items: unknown[] = Array.isArray(v) ? v : v instanceof Set ? [...v] : v instanceof Map ? [...v].flat() : Object.values(v);
  for (const x of items) n += 1 + size(x, seen);
  return n;
}

describe("damaged pickles", () => {
  test("load or throw UnpicklingError, quickly, with a result proportional to the input", () => {
    let loaded = 0;
    let refused = 0;
    fc.assert(
      fc.property(value, protocol, fc.array(mutation, { minLength: 1, maxLength: 4 }), (v, p, ms) => {
        const input = mutate(pickle.dumps(v, { protocol: p }), ms);
        const t0 = performance.now();
        try {
          const out = pickle.loads(input);
          loaded++;
          expect(size(out)).toBeLessThanOrEqual(2 * input.length + 16);
        } catch (e) {
          if (!(e instanceof UnpicklingError)) throw new Error(`loads threw ${String(e)} for ${Buffer.from(input).toString("hex")}`);
          refused++;
        }
        expect(performance.now() - t0).toBeLessThan(250);
      }),
      { seed: SEED + 3, numRuns: 4000 },
    );
    // Both outcomes occur, so the mutations are neither all harmless nor all fatal.
    expect(loaded).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });

  test("random bytes, with and without a PROTO header: UnpicklingError or a value", () => {
    fc.assert(
      fc.property(fc.constantFrom([], [0x80, 2], [0x80, 4], [0x80, 5]), fc.array(fc.oneof(fc.constantFrom(...OPCODES), fc.nat(255)), { maxLength: 64 }), (head, body) => {
        const input = new Uint8Array([...head, ...body]);
        try {
          expect(size(pickle.loads(input))).toBeLessThanOrEqual(2 * input.length + 16);
        } catch (e) {
          if (!(e instanceof UnpicklingError)) throw new Error(`loads threw ${String(e)} for ${Buffer.from(input).toString("hex")}`);
        }
      }),
      { seed: SEED + 4, numRuns: 5000 },
    );
  });

  test("every truncation of a valid pickle is refused with UnpicklingError", () => {
    fc.assert(
      fc.property(value, protocol, (v, p) => {
        const full = pickle.dumps(v, { protocol: p });
        for (let n = 0; n < full.length; n++) {
          // Strictly shorter than the pickle: STOP is missing, so it can never load.
          expect(() => pickle.loads(full.subarray(0, n))).toThrow(UnpicklingError);
        }
      }),
      { seed: SEED + 5, numRuns: 200 },
    );
  });
});
