// mpconn ↔ real CPython, with serializer "pickle" and an authkey: the value table of
// docs/python.md (the value table) in both directions, bytes messages, wrong keys
// on either side, pickles that would run code, a Python worker under spawn(), the examples in
// examples/python/, and (opt-in, MPCONN_HUGE=1) messages over 2 GiB.
//
// Interpreters: every ~/.pyenv/versions/3.1[1-9]*/bin/python3 and the python3 on PATH, one per
// X.Y.Z version. The Python side is test/fixtures/python/peer.py, which uses nothing but
// multiprocessing.connection and checks what it receives with a strict comparison (types,
// -0.0, NaN, dict order, and sharing) against Python expressions sent by this file.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AuthenticationError,
  Client,
  Listener,
  UnpicklingError,
  spawn,
  type Address,
  type Connection,
} from "../../src/index.ts";
import { rejection } from "../fixtures/assert.ts";
import { lineReader } from "../fixtures/lines.ts";
import { PYENV_VERSIONS, pyenvPythons } from "../fixtures/python.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const PEER = join(import.meta.dir, "..", "fixtures", "python", "peer.py");
const EXAMPLES = join(import.meta.dir, "..", "..", "examples", "python");
const scratch = mkdtempSync(join(tmpdir(), "mpconn-python-interop-"));
const children: Array<{ kill(): void }> = [];
afterAll(() => {
  for (const child of children) child.kill();
  rmSync(scratch, { recursive: true, force: true });
});

// ---- interpreters --------------------------------------------------------------------------

interface Interpreter {
  /** Real path of the interpreter's executable. */
  path: string;
  /** "3.12.1" */
  version: string;
  major: number;
  minor: number;
  /** Where it was found: "pyenv" or "PATH". */
  from: string;
  /** It is what `python3` on PATH runs. */
  onPath: boolean;
}

/** The CPython minor versions this suite means to cover; a missing one is reported as skipped. */
const WANTED_MINORS = [11, 12, 13, 14];

function probe(command: string, from: string): Interpreter | null {
  const r = Bun.spawnSync({
    cmd: [command, "-c", "import os, sys; print(os.path.realpath(sys.executable)); print('%d.%d.%d' % sys.version_info[:3])"],
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) return null;
  const [path, version] = r.stdout.toString().trim().split("\n") as [string, string];
  const [major, minor] = version.split(".").map(Number) as [number, number];
  return { path, version, major, minor, from, onPath: from === "PATH" };
}

function findInterpreters(): { found: Interpreter[]; notes: string[] } {
  const notes: string[] = [];
  const candidates: Array<[string, string]> = [];
  if (existsSync(PYENV_VERSIONS)) {
    for (const p of pyenvPythons()) candidates.push([p, "pyenv"]);
  } else {
    notes.push(`no ${PYENV_VERSIONS}`);
  }
  const onPath = Bun.which("python3");
  if (onPath) candidates.push([onPath, "PATH"]);
  else notes.push("no python3 on PATH");

  const found: Interpreter[] = [];
  for (const [command, from] of candidates) {
    const interpreter = probe(command, from);
    if (!interpreter) {
      notes.push(`${command} does not run`);
      continue;
    }
    if (interpreter.major !== 3 || interpreter.minor < 8) {
      notes.push(`${command} is CPython ${interpreter.version}; this suite needs 3.8+`);
      continue;
    }
    // One per real path and per version: the PATH python3 is often a pyenv shim of one above.
    const twin = found.find((i) => i.path === interpreter.path || i.version === interpreter.version);
    if (twin) {
      if (interpreter.onPath && twin.path === interpreter.path) twin.onPath = true;
      continue;
    }
    found.push(interpreter);
  }
  for (const minor of WANTED_MINORS) {
    if (!found.some((i) => i.minor === minor)) notes.push(`CPython 3.${minor} is not installed`);
  }
  return { found, notes };
}

const { found: INTERPRETERS, notes: NOTES } = findInterpreters();
console.log(
  `python-interop: testing ${INTERPRETERS.map((i) => `CPython ${i.version} (${i.path}${i.onPath ? ", python3 on PATH" : ""})`).join(", ") || "no interpreter"}` +
    (NOTES.length ? `; skipped: ${NOTES.join("; ")}` : ""),
);
for (const minor of WANTED_MINORS) {
  if (!INTERPRETERS.some((i) => i.minor === minor)) test.skip(`CPython 3.${minor}: not installed`, () => {});
}

// ---- helpers -------------------------------------------------------------------------------

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const hex = (b: Uint8Array | string): string => Buffer.from(typeof b === "string" ? utf8(b) : b).toString("hex");
const inspect = (v: unknown): string => Bun.inspect(v, { depth: 4, compact: true }).replace(/\s*\n\s*/g, " ").slice(0, 600);

/** n bytes of (i + start) % 251: the same as peer.py's pattern(). */
function pattern(n: number, start = 0): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0, v = start % 251; i < n; i++, v = v === 250 ? 0 : v + 1) out[i] = v;
  return out;
}

/**
 * Strict structural equality: same JS types (number vs bigint, -0 vs 0, NaN equal), the exact
 * prototype (Uint8Array, not Buffer; plain objects), Map entry and object key order, sets as
 * unordered, and the same sharing: one object in two places of `a` is one object in the same
 * places of `b` (cycles included).
 */
function same(a: unknown, b: unknown, fwd = new Map<object, object>(), back = new Map<object, object>()): boolean {
  if (typeof a !== typeof b) return false;
  if (typeof a !== "object" || a === null || b === null) return Object.is(a, b);
  const x = a as object;
  const y = b as object;
  if (fwd.has(x)) return fwd.get(x) === y;
  if (back.has(y)) return false;
  fwd.set(x, y);
  back.set(y, x);
  if (Object.getPrototypeOf(x) !== Object.getPrototypeOf(y)) return false;
  if (x instanceof Uint8Array) return Buffer.from(x).equals(Buffer.from(y as Uint8Array));
  if (Array.isArray(x)) {
    const ya = y as unknown[];
    if (x.length !== ya.length) return false;
    for (let i = 0; i < x.length; i++) if (!same(x[i], ya[i], fwd, back)) return false;
    return true;
  }
  if (x instanceof Map) {
    const xs = [...x];
    const ys = [...(y as Map<unknown, unknown>)];
    return xs.length === ys.length && xs.every(([k, v], i) => same(k, ys[i]![0], fwd, back) && same(v, ys[i]![1], fwd, back));
  }
  if (x instanceof Set) {
    // Python writes sets in hash order: compare as unordered.
    const rest = [...(y as Set<unknown>)];
    if (x.size !== rest.length) return false;
    for (const v of x) {
      const i = rest.findIndex((w) => same(v, w, new Map(fwd), new Map(back)));
      if (i < 0) return false;
      same(v, rest[i], fwd, back);
      rest.splice(i, 1);
    }
    return true;
  }
  const xk = Object.keys(x);
  const yk = Object.keys(y);
  if (xk.length !== yk.length || xk.some((k, i) => k !== yk[i])) return false;
  return xk.every((k) => same((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], fwd, back));
}

// ---- the value table -----------------------------------------------------------------------

interface Case {
  name: string;
  /** The JavaScript value. */
  js: () => unknown;
  /** The Python value, as an expression peer.py evaluates. */
  py: string;
}
/** mpconn sends js(); Python must receive exactly py, and echoes it; mpconn must decode `back` (default js()). */
interface ToPython extends Case {
  back?: () => unknown;
}
/** Python sends py; mpconn must decode exactly js(), and sends it back; Python must get `back` (default py). */
interface FromPython extends Case {
  back?: string;
}

const bytes256 = () => Uint8Array.from({ length: 256 }, (_, i) => i);
const nested = (depth: number): unknown[] => {
  let v: unknown[] = [];
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};
const PY_NESTED = "functools.reduce(lambda a, _: [a], range(%d), [])";

const TO_PYTHON: ToPython[] = [
  { name: "null", js: () => null, py: "None" },
  { name: "undefined", js: () => undefined, py: "None", back: () => null },
  // eslint-disable-next-line no-sparse-arrays
  { name: "holes and undefined inside", js: () => [, 1, undefined, { a: undefined }], py: "[None, 1, None, {'a': None}]", back: () => [null, 1, null, { a: null }] },
  { name: "booleans", js: () => [true, false], py: "[True, False]" },
  {
    name: "safe integers",
    js: () => [0, 1, -1, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 2 ** 40 + 5, 2 ** 53 - 1, -(2 ** 53 - 1)],
    py: "[0, 1, -1, 255, 256, 65535, 65536, 2**31-1, 2**31, -2**31-1, 2**40+5, 2**53-1, -(2**53-1)]",
  },
  {
    name: "fractions and unsafe-integer numbers are floats",
    js: () => [1.5, -2.25, 0.1, 1e300, 5e-324, 2 ** 53, 2 ** 60, -(2 ** 64)],
    py: "[1.5, -2.25, 0.1, 1e300, 5e-324, 2.0**53, 2.0**60, -2.0**64]",
  },
  { name: "-0", js: () => -0, py: "-0.0" },
  { name: "NaN", js: () => NaN, py: "float('nan')" },
  { name: "±Infinity", js: () => [Infinity, -Infinity], py: "[float('inf'), float('-inf')]" },
  {
    name: "bigints",
    js: () => [0n, -1n, 2n ** 53n, -(2n ** 53n), 2n ** 63n, 2n ** 64n, -(2n ** 64n) - 1n, 10n ** 100n, -(3n ** 500n)],
    py: "[0, -1, 2**53, -2**53, 2**63, 2**64, -2**64-1, 10**100, -(3**500)]",
    // A bigint in the safe range comes back as a number.
    back: () => [0, -1, 2n ** 53n, -(2n ** 53n), 2n ** 63n, 2n ** 64n, -(2n ** 64n) - 1n, 10n ** 100n, -(3n ** 500n)],
  },
  {
    name: "strings",
    js: () => ["", "ascii", "héllo wörld", "日本語", "\u{1f600}", "\0\n\\'\"", "x".repeat(70000), "é".repeat(40000)],
    py: "['', 'ascii', 'héllo wörld', '日本語', '\\U0001f600', '\\x00\\n\\\\\\'\"', 'x' * 70000, 'é' * 40000]",
  },
  { name: "lone surrogates", js: () => ["\ud800", "a\udfffb", "\udc00\ud800", "\ud83d"], py: "['\\ud800', 'a\\udfffb', '\\udc00\\ud800', '\\ud83d']" },
  { name: "Uint8Array", js: () => [new Uint8Array(0), Uint8Array.of(0, 255), bytes256()], py: "[b'', b'\\x00\\xff', bytes(range(256))]" },
  {
    name: "Buffer and ArrayBuffer",
    js: () => [Buffer.from("hi"), Uint8Array.of(1, 2).buffer],
    py: "[b'hi', b'\\x01\\x02']",
    back: () => [ascii("hi"), Uint8Array.of(1, 2)],
  },
  {
    name: "arrays",
    js: () => [[], [1, [2, [3]]], Array.from({ length: 2500 }, (_, i) => i), nested(300)],
    py: `[[], [1, [2, [3]]], list(range(2500)), ${PY_NESTED.replace("%d", "300")}]`,
  },
  {
    name: "plain objects",
    js: () => ({ a: 1, é: [true], nested: { x: null, y: { z: "deep" } }, "with space": 2 }),
    py: "{'a': 1, 'é': [True], 'nested': {'x': None, 'y': {'z': 'deep'}}, 'with space': 2}",
  },
  {
    name: "__proto__ key and null-prototype object",
    js: () => [JSON.parse('{"__proto__": 1, "constructor": 2}'), Object.assign(Object.create(null), { k: "v" })],
    py: "[{'__proto__': 1, 'constructor': 2}, {'k': 'v'}]",
    back: () => [JSON.parse('{"__proto__": 1, "constructor": 2}'), { k: "v" }],
  },
  { name: "Map with int keys", js: () => new Map([[1, "a"], [2, "b"]]), py: "{1: 'a', 2: 'b'}" },
  {
    name: "Map with mixed keys",
    js: () =>
      new Map<unknown, unknown>([
        ["s", 1], [7, 2], [null, 3], [true, 4], [1.5, 5], [2n ** 70n, 6], [ascii("k"), 7], [[1, [2, 3]], 8], [new Set([1]), 9],
      ]),
    py: "{'s': 1, 7: 2, None: 3, True: 4, 1.5: 5, 2**70: 6, b'k': 7, (1, (2, 3)): 8, frozenset({1}): 9}",
  },
  { name: "Map with str keys", js: () => new Map([["a", 1], ["b", 2]]), py: "{'a': 1, 'b': 2}", back: () => ({ a: 1, b: 2 }) },
  // Keys Python finds equal (1 == 1n == true; arrays or bytes with equal contents) merge:
  // the first key stays, the last value wins. Nothing warns.
  {
    name: "Map keys equal in Python merge",
    js: () => new Map<unknown, unknown>([[1, "a"], [true, "b"], [1n, "c"], [[1, 2], "d"], [[1, 2], "e"]]),
    py: "{1: 'c', (1, 2): 'e'}",
    back: () => new Map<unknown, unknown>([[1, "c"], [[1, 2], "e"]]),
  },
  {
    name: "Set elements equal in Python merge",
    js: () => new Set<unknown>([true, 1, 1n, Uint8Array.of(1), Uint8Array.of(1)]),
    py: "{True, b'\\x01'}",
    back: () => new Set<unknown>([true, Uint8Array.of(1)]),
  },
  {
    name: "Sets",
    js: () => [new Set(), new Set([1, "two", 3.5, null, 2n ** 80n]), new Set([[1, 2], new Set(["x"])])],
    py: "[set(), {1, 'two', 3.5, None, 2**80}, {(1, 2), frozenset({'x'})}]",
  },
  {
    name: "shared references",
    js: () => {
      const s = [1];
      const o = { k: s };
      const b = ascii("xy");
      return [s, s, o, o, { x: s }, b, b];
    },
    py: "(lambda s: (lambda o: [s, s, o, o, {'x': s}, b'xy', b'xy'])({'k': s}))([1])",
  },
  {
    name: "cyclic array",
    js: () => {
      const l: unknown[] = [];
      l.push(l);
      return l;
    },
    py: "(lambda l: (l.append(l), l)[1])([])",
  },
  {
    name: "cyclic object",
    js: () => {
      const d: Record<string, unknown> = { n: 1 };
      d.self = d;
      return d;
    },
    py: "(lambda d: (d.__setitem__('self', d), d)[1])({'n': 1})",
  },
  {
    name: "cycle through a Map and a Set's neighbour",
    js: () => {
      const a: unknown[] = [];
      const m = new Map<unknown, unknown>([[1, a]]);
      a.push(m, new Set([1]));
      return a;
    },
    py: "(lambda a: (a.extend([{1: a}, {1}]), a)[1])([])",
  },
  {
    name: "records",
    js: () => Array.from({ length: 300 }, (_, i) => ({ id: i, name: `n${i}`, score: i + 0.5, ok: i % 2 === 0, tags: ["a", "b"] })),
    py: "[{'id': i, 'name': 'n%d' % i, 'score': i + 0.5, 'ok': i % 2 == 0, 'tags': ['a', 'b']} for i in range(300)]",
  },
];

const FROM_PYTHON: FromPython[] = [
  { name: "None", py: "None", js: () => null },
  { name: "bool", py: "[True, False]", js: () => [true, false] },
  { name: "ints", py: "[0, -1, 255, 2**31, -2**31-1, 2**53-1, -(2**53-1)]", js: () => [0, -1, 255, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1, -(2 ** 53 - 1)] },
  {
    name: "big ints",
    py: "[2**53, -2**53, 2**63, -2**63, 2**64, 10**40, -(7**200)]",
    js: () => [2n ** 53n, -(2n ** 53n), 2n ** 63n, -(2n ** 63n), 2n ** 64n, 10n ** 40n, -(7n ** 200n)],
  },
  {
    name: "floats",
    py: "[1.5, -0.0, float('nan'), float('inf'), float('-inf'), 1e-310, 2.0**53, 0.1]",
    js: () => [1.5, -0, NaN, Infinity, -Infinity, 1e-310, 2 ** 53, 0.1],
  },
  // Integral floats are JS integers, which go back as int.
  { name: "integral floats", py: "[2.0, -7.0, 0.0]", js: () => [2, -7, 0], back: "[2, -7, 0]" },
  {
    name: "str",
    py: "['', 'héllo', '日本語', '\\U0001f600', '\\ud800', 'a\\udfffb', '\\udfff\\ud800', 'z' * 100000]",
    js: () => ["", "héllo", "日本語", "\u{1f600}", "\ud800", "a\udfffb", "\udfff\ud800", "z".repeat(100000)],
  },
  // Two lone surrogates that pair up are one character in JS.
  { name: "surrogate halves that pair", py: "'\\ud83d\\ude00'", js: () => "\u{1f600}", back: "'\\U0001f600'" },
  { name: "bytes", py: "[b'', b'\\x00', bytes(range(256))]", js: () => [new Uint8Array(0), new Uint8Array(1), bytes256()] },
  { name: "1 MiB bytes object", py: "bytes(range(256)) * 4096", js: () => Uint8Array.from({ length: 1 << 20 }, (_, i) => i & 255) },
  { name: "bytearray", py: "[bytearray(b'ab'), bytearray()]", js: () => [ascii("ab"), new Uint8Array(0)], back: "[b'ab', b'']" },
  { name: "tuples", py: "[(), (1,), (1, (2, 'three'))]", js: () => [[], [1], [1, [2, "three"]]], back: "[[], [1], [1, [2, 'three']]]" },
  { name: "list", py: "[[], [1, [2, [3]]], list(range(3000))]", js: () => [[], [1, [2, [3]]], Array.from({ length: 3000 }, (_, i) => i)] },
  { name: "frozenset", py: "frozenset({1, 2})", js: () => new Set([1, 2]), back: "{1, 2}" },
  {
    name: "sets",
    py: "[set(), {1, 2, 3}, {'a', 'b'}, {(1, 2)}, {frozenset({3})}, set(range(1500))]",
    js: () => [new Set(), new Set([1, 2, 3]), new Set(["a", "b"]), new Set([[1, 2]]), new Set([new Set([3])]), new Set(Array.from({ length: 1500 }, (_, i) => i))],
  },
  { name: "dict with str keys", py: "{'a': 1, 'b': [2], 'c': {'d': None}}", js: () => ({ a: 1, b: [2], c: { d: null } }) },
  { name: "dict with int keys", py: "{1: 'a', 2: 'b'}", js: () => new Map([[1, "a"], [2, "b"]]) },
  {
    name: "dict with mixed keys",
    py: "{'s': 1, 2: 'x', None: 3, (1, 2): 4, b'k': 5, 2**70: 6, 1.5: 7, frozenset({8}): 8, False: 9}",
    js: () =>
      new Map<unknown, unknown>([["s", 1], [2, "x"], [null, 3], [[1, 2], 4], [ascii("k"), 5], [2n ** 70n, 6], [1.5, 7], [new Set([8]), 8], [false, 9]]),
  },
  // A float key that is integral is a JS integer: it goes back as an int key.
  { name: "integral float key", py: "{1.0: 'a'}", js: () => new Map([[1, "a"]]), back: "{1: 'a'}" },
  // A JS Map or Set holds -0 as 0: a -0.0 key or element goes back as the int 0.
  { name: "-0.0 as a key and an element", py: "[{-0.0: 'a'}, {-0.0}]", js: () => [new Map([[0, "a"]]), new Set([0])], back: "[{0: 'a'}, {0}]" },
  // JS objects list integer-like keys first.
  { name: "integer-like str keys", py: "{'b': 1, '1': 2}", js: () => ({ 1: 2, b: 1 }), back: "{'1': 2, 'b': 1}" },
  {
    name: "__proto__ key is an own property",
    py: "{'__proto__': {'polluted': True}, 'constructor': 1}",
    js: () => JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1}'),
  },
  {
    name: "shared references",
    py: "(lambda s: [s, s, {'x': s}, (s,)])([1])",
    js: () => {
      const s = [1];
      return [s, s, { x: s }, [s]];
    },
    back: "(lambda s: [s, s, {'x': s}, [s]])([1])",
  },
  {
    name: "cyclic list",
    py: "(lambda l: (l.append(l), l)[1])([])",
    js: () => {
      const l: unknown[] = [];
      l.push(l);
      return l;
    },
  },
  {
    name: "cyclic dict",
    py: "(lambda d: (d.__setitem__('self', d), d)[1])({})",
    js: () => {
      const d: Record<string, unknown> = {};
      d.self = d;
      return d;
    },
  },
  {
    name: "cycle through a tuple",
    py: "(lambda l: (l.append((l,)), l)[1])([])",
    js: () => {
      const l: unknown[] = [];
      l.push([l]);
      return l;
    },
    back: "(lambda l: (l.append([l]), l)[1])([])",
  },
  {
    name: "records with a shared tuple",
    py: "[{'id': i, 'name': 'n%d' % i, 'tags': ('a', 'b'), 'score': i / 2} for i in range(300)]",
    // ('a', 'b') is one constant: one shared array. i / 2 is a float; even i make integral ones.
    js: () => {
      const tags = ["a", "b"];
      return Array.from({ length: 300 }, (_, i) => ({ id: i, name: `n${i}`, tags, score: i / 2 }));
    },
    back: "(lambda t: [{'id': i, 'name': 'n%d' % i, 'tags': t, 'score': i // 2 if i % 2 == 0 else i / 2} for i in range(300)])(['a', 'b'])",
  },
  { name: "deep nesting", py: PY_NESTED.replace("%d", "500"), js: () => nested(500) },
];

/** One value in every protocol Python has: pickle.dumps(v, p) sent raw with send_bytes. */
const PROTOCOLS_PY = "[1, 2**70, -0.0, 'é\\ud800', b'\\x00\\xff', bytearray(b'z'), (1, 2), {1: {'k': frozenset({2})}}, {'a': [None]}, True, None]";
const PROTOCOLS_JS = () => [1, 2n ** 70n, -0, "é\ud800", Uint8Array.of(0, 255), ascii("z"), [1, 2], new Map([[1, { k: new Set([2]) }]]), { a: [null] }, true, null];

/** What peer.py's refused() sends, in order: the error each one must give. */
const REFUSED = [
  "global 'posix.system' is forbidden",
  "global 'posix.system' is forbidden",
  "global 'posix.system' is forbidden",
  "global 'builtins.eval' is forbidden",
  "global 'subprocess.Popen' is forbidden",
  "global 'builtins.getattr' is forbidden",
  "global 'builtins.complex' is forbidden",
  "global 'datetime.date' is forbidden",
  "global 'decimal.Decimal' is forbidden",
  "global 'collections.OrderedDict' is forbidden",
  "global '__main__.Pair' is forbidden",
  "global '__main__.Point' is forbidden",
  "nests deeper than 1000 levels",
];

/** JS values pickle cannot carry: send() rejects with a TypeError and sends nothing. */
const UNPICKLABLE: Array<[string, () => unknown]> = [
  ["Date", () => new Date(0)],
  ["function", () => () => 1],
  ["symbol", () => Symbol("s")],
  ["Int16Array", () => new Int16Array(2)],
  ["class instance", () => new (class Point { x = 1; })()],
  ["object as a Map key", () => new Map([[{}, 1]])],
  ["nesting deeper than 1000", () => nested(1001)],
];

const MiB = 1 << 20;

// ---- Python processes ----------------------------------------------------------------------

const PY_ENV = { ...process.env, PYTHONDONTWRITEBYTECODE: "1", PYTHONHASHSEED: "0", PYTHONUNBUFFERED: "1" };

/** `fn`'s promise, made on the first call (a stream can be read once). */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let promise: Promise<T> | undefined;
  return () => (promise ??= fn());
}

/** A Python process with its stdout read line by line. */
function python(interpreter: Interpreter, args: string[]) {
  const child = Bun.spawn([interpreter.path, ...args], { stdout: "pipe", stderr: "pipe", env: PY_ENV });
  children.push(child);
  return lines(child);
}

function lines(child: Bun.Subprocess<"ignore" | "pipe" | "inherit", "pipe", "pipe">) {
  return {
    child,
    line: lineReader(child.stdout),
    stderr: once(() => new Response(child.stderr).text()),
  };
}

const KEY = "clé-🔑-interop";
/** The address line a Python Listener prints: a path, or [host, port]. */
const toAddress = (json: string): Address => JSON.parse(json) as Address;

/** A connected pair: mpconn's end and the Python peer. */
interface Peer {
  conn: Connection;
  /** Resolves with the peer's exit code, after "bye". */
  finish(): Promise<number>;
  /** The peer's stderr (after it exited), for failure messages. */
  stderr(): Promise<string>;
  kill(): void;
}

type Setup = "python-listener-unix" | "python-listener-tcp" | "mpconn-listener-unix" | "mpconn-listener-tcp" | "spawn";

async function connect(interpreter: Interpreter, setup: Setup): Promise<Peer> {
  if (setup === "spawn") {
    // Literally spawn(["python3", …]) for the interpreter PATH gives.
    const { process: child, conn } = spawn([interpreter.onPath ? "python3" : interpreter.path, PEER, "child"], {
      serializer: "pickle",
      stdout: "pipe",
      stderr: "pipe",
      env: PY_ENV,
    });
    children.push(child);
    return {
      conn,
      finish: () => child.exited,
      stderr: once(() => new Response(child.stderr as ReadableStream).text()),
      kill: () => child.kill(),
    };
  }
  if (setup.startsWith("python-listener")) {
    const py = python(interpreter, [PEER, "listen", setup.endsWith("tcp") ? "tcp" : "unix", hex(KEY)]);
    const address = toAddress(await py.line());
    const conn = await Client(address, { authkey: KEY, serializer: "pickle" });
    return { conn, finish: () => py.child.exited, stderr: py.stderr, kill: () => py.child.kill() };
  }
  const listener = new Listener(setup.endsWith("tcp") ? ["127.0.0.1", 0] : undefined, { authkey: KEY, serializer: "pickle" });
  try {
    const py = python(interpreter, [PEER, "connect", hex(KEY), JSON.stringify(listener.address)]);
    const conn = await listener.accept();
    return { conn, finish: () => py.child.exited, stderr: py.stderr, kill: () => py.child.kill() };
  } finally {
    listener.close();
  }
}

/** Asserts a verdict ["ok"] from the peer. */
function expectOk(verdict: unknown, what: string): void {
  const v = verdict as [string, string?];
  if (v[0] !== "ok") throw new Error(`${what}: Python says ${v[1]}`);
}

// ---- the conversation ----------------------------------------------------------------------

function conversation(interpreter: Interpreter, setup: Setup): void {
  describe(`CPython ${interpreter.version}, ${setup}`, () => {
    let peer: Peer | undefined;
    const conn = (): Connection => {
      if (!peer) throw new Error("not connected");
      return peer.conn;
    };
    beforeAll(async () => {
      peer = await connect(interpreter, setup);
    });
    afterAll(() => {
      peer?.kill();
      peer?.conn.close();
    });
    /** A failure also shows what the Python peer wrote to stderr (its traceback, if it died). */
    const guarded = (body: () => Promise<void>) => async () => {
      try {
        await body();
      } catch (error) {
        const p = peer;
        const stderr = p ? await Promise.race([p.stderr(), Bun.sleep(2000).then(() => "(the peer is still running)")]) : "(no peer)";
        (error as Error).message += `\n--- Python peer's stderr:\n${stderr}`;
        throw error;
      }
    };

    test("mpconn → Python: every row of the value table arrives as exactly the Python value, and Python's echo decodes back", guarded(async () => {
      const c = conn();
      const bad: string[] = [];
      for (const row of TO_PYTHON) {
        await c.send(["check", row.name, row.py]);
        await c.send(row.js());
        const verdict = (await c.recv()) as [string, string?];
        if (verdict[0] !== "ok") bad.push(`${row.name}: Python ${verdict[1]}`);
        const echo = await c.recv();
        const back = (row.back ?? row.js)();
        if (!same(echo, back)) bad.push(`${row.name}: echo decoded as ${inspect(echo)}, expected ${inspect(back)}`);
      }
      expect(bad).toEqual([]);
    }));

    test("Python → mpconn: Python's values decode as the table says, and go back to Python as expected", guarded(async () => {
      const c = conn();
      const bad: string[] = [];
      for (const row of FROM_PYTHON) {
        await c.send(["give", row.name, row.py, row.back ?? null]);
        const got = await c.recv();
        const want = row.js();
        if (!same(got, want)) bad.push(`${row.name}: decoded as ${inspect(got)}, expected ${inspect(want)}`);
        await c.send(got);
        const verdict = (await c.recv()) as [string, string?];
        if (verdict[0] !== "ok") bad.push(`${row.name}: in Python it ${verdict[1]}`);
      }
      expect(bad).toEqual([]);
      // The "__proto__" row did not touch Object.prototype.
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }));

    test("Python pickles of protocols 0–5, sent raw with send_bytes, decode the same", guarded(async () => {
      const c = conn();
      const protocols = [0, 1, 2, 3, 4, 5];
      await c.send(["give_protocols", PROTOCOLS_PY, protocols]);
      for (const p of protocols) {
        const got = await c.recv();
        if (!same(got, PROTOCOLS_JS())) throw new Error(`protocol ${p}: ${inspect(got)}`);
      }
    }));

    test("bytes messages both ways: empty, 1 byte, 1 MiB; recvBytesInto; sendBytes with offset and size", guarded(async () => {
      const c = conn();
      const sizes = [0, 1, MiB];
      await c.send(["bytes_out", sizes]);
      for (const n of sizes) expect(Buffer.from(await c.recvBytes()).equals(Buffer.from(pattern(n, n)))).toBe(true);

      await c.send(["bytes_out", [MiB]]);
      const into = new Uint8Array(MiB + 32);
      expect(await c.recvBytesInto(into, 16)).toBe(MiB);
      expect(Buffer.from(into.subarray(16, 16 + MiB)).equals(Buffer.from(pattern(MiB, MiB)))).toBe(true);

      // The last two: from an ArrayBuffer, and a slice of a larger buffer (offset 7, size n).
      await c.send(["bytes_in", [0, 1, MiB, 5, MiB]]);
      await c.sendBytes(new Uint8Array(0));
      await c.sendBytes(pattern(1, 1));
      await c.sendBytes(pattern(MiB, MiB));
      await c.sendBytes(pattern(5, 5).buffer);
      await c.sendBytes(pattern(MiB + 10, MiB - 7), 7, MiB);
      expectOk(await c.recv(), "bytes_in");
    }));

    test("pickles that would run code (or name any other global, or nest too deep) are refused by name; nothing runs; the next message arrives; unpicklable JS values are not sent", guarded(async () => {
      const c = conn();
      const marker = join(scratch, `pwned-${interpreter.version}-${setup}`);
      await c.send(["refused", `touch ${marker}`]);
      for (const [i, message] of REFUSED.entries()) {
        const error = await rejection(c.recv());
        expect(error).toBeInstanceOf(UnpicklingError);
        expect(error.message).toContain(message);
        expect(await c.recv()).toEqual(["after", i]);
      }
      expect(existsSync(marker)).toBe(false);
      // The other way: what pickle cannot carry is refused before anything is sent.
      for (const [what, value] of UNPICKLABLE) {
        const error = await rejection(c.send(value()));
        if (!(error instanceof TypeError)) throw new Error(`${what}: ${error}`);
      }
      // Still in step: an ordinary exchange.
      await c.send(["version"]);
      expect((await c.recv()) as number[]).toEqual(interpreter.version.split(".").map(Number));
    }));

    test("bye: the peer exits cleanly", guarded(async () => {
      const p = peer!;
      await p.conn.send(["bye"]);
      const code = await p.finish();
      if (code !== 0) throw new Error(`peer exited ${code}:\n${await p.stderr()}`);
      p.conn.close();
    }));
  });
}

const SETUPS: Setup[] = ["python-listener-unix", "mpconn-listener-tcp", "python-listener-tcp", "mpconn-listener-unix", "spawn"];

for (const interpreter of INTERPRETERS) {
  for (const setup of SETUPS) conversation(interpreter, setup);

  describe(`CPython ${interpreter.version}: wrong authkey`, () => {
    test("Python Listener, mpconn Client with the wrong key: AuthenticationError on both sides", async () => {
      const py = python(interpreter, [PEER, "listen", "unix", hex(KEY)]);
      const address = toAddress(await py.line());
      const error = await rejection(Client(address, { authkey: "not the key", serializer: "pickle" }));
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(error.message).toBe("digest sent was rejected (the peer's authkey is different)");
      expect(await py.line()).toBe("auth-error: multiprocessing.context.AuthenticationError digest received was wrong");
      expect(await py.child.exited).toBe(3);
    });

    test("mpconn Listener, Python Client with the wrong key: AuthenticationError on both sides; the listener stays usable", async () => {
      using listener = new Listener(["127.0.0.1", 0], { authkey: KEY, serializer: "pickle" });
      const wrong = python(interpreter, [PEER, "connect", hex("not the key"), JSON.stringify(listener.address)]);
      const error = await rejection(listener.accept());
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(error.message).toBe("digest received was wrong (the peer's authkey is different)");
      expect(await wrong.line()).toBe("auth-error: multiprocessing.context.AuthenticationError digest sent was rejected");
      expect(await wrong.child.exited).toBe(3);

      const right = python(interpreter, [PEER, "connect", hex(KEY), JSON.stringify(listener.address)]);
      const conn = await listener.accept();
      await conn.send(["version"]);
      expect((await conn.recv()) as number[]).toEqual(interpreter.version.split(".").map(Number));
      await conn.send(["bye"]);
      expect(await right.line()).toBe("done");
      expect(await right.child.exited).toBe(0);
      conn.close();
    });
  });
}

if (INTERPRETERS.length === 0) test.skip("no CPython 3.8+ found (pyenv or PATH)", () => {});

// ---- examples/python -----------------------------------------------------------------------

// The README says "python3": run the examples with the one on PATH when it is usable.
const EXAMPLE_PYTHON = INTERPRETERS.find((i) => i.onPath) ?? INTERPRETERS.at(-1);
describe("examples/python", () => {
  if (!EXAMPLE_PYTHON) {
    test.skip("no CPython to run the examples with", () => {});
    return;
  }
  const python3 = EXAMPLE_PYTHON.path;

  test(`bun examples/python/parent.ts (starts worker.py with CPython ${EXAMPLE_PYTHON.version})`, async () => {
    const child = Bun.spawn([process.execPath, join(EXAMPLES, "parent.ts")], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...PY_ENV, PYTHON: python3 },
    });
    children.push(child);
    const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    if (code !== 0) throw new Error(`parent.ts exited ${code}:\n${out}\n${err}`);
    expect(out).toContain("square(12) = 144");
    expect(out).toContain("factorial(30) = 265252859812191058636308480000000n");
    expect(out).toContain("worker exited with 0");
  });

  test(`python3 examples/python/server.py + bun examples/python/client.ts (CPython ${EXAMPLE_PYTHON.version})`, async () => {
    const server = lines(
      Bun.spawn([python3, join(EXAMPLES, "server.py"), "127.0.0.1:0"], { stdout: "pipe", stderr: "pipe", env: { ...PY_ENV, MPCONN_AUTHKEY: "example-key" } }),
    );
    children.push(server.child);
    const banner = await server.line();
    const address = /listening on (\S+)/.exec(banner)?.[1];
    if (!address) throw new Error(`server.py said ${JSON.stringify(banner)}:\n${await server.stderr()}`);
    const client = Bun.spawn([process.execPath, join(EXAMPLES, "client.ts"), address], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, MPCONN_AUTHKEY: "example-key" },
    });
    children.push(client);
    const [out, err, code] = await Promise.all([new Response(client.stdout).text(), new Response(client.stderr).text(), client.exited]);
    server.child.kill();
    if (code !== 0) throw new Error(`client.ts exited ${code}:\n${out}\n${err}`);
    expect(out).toContain("stats  → { ok: true, mean: 5, stdev: 2, sorted: [ 2, 4, 4, 4, 5, 5, 7, 9 ] }");
    expect(out).toContain("value === 2n ** 100n: true");
  });
});

// ---- over 2 GiB (opt-in) -------------------------------------------------------------------

describe("messages over 2 GiB (Python's -1 + 8-byte header)", () => {
  const huge = INTERPRETERS.at(-1);
  if (process.env.MPCONN_HUGE !== "1" || !huge) {
    const why = !huge ? "no CPython found" : "set MPCONN_HUGE=1 to run (needs about 10 GB of memory)";
    console.log(`python-interop: messages over 2 GiB skipped: ${why}`);
    test.skip(`skipped: ${why}`, () => {});
    return;
  }
  const n = 2 ** 31 + 5;
  const samples = [0, 1, 12345, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, n - 1];
  const mark = (at: number) => (at * 7 + 1) % 256;

  test(`CPython ${huge.version} → mpconn and mpconn → CPython, ${n} bytes each way`, async () => {
    const peer = await connect(huge, "python-listener-unix");
    try {
      await peer.conn.send(["huge_out", n, samples]);
      let got: Uint8Array | undefined = await peer.conn.recvBytes();
      expect(got.byteLength).toBe(n);
      for (const at of samples) expect(got[at]).toBe(mark(at));
      expect(got[2]).toBe(0);
      expect(got[n - 2]).toBe(0);
      got = undefined;

      const out = new Uint8Array(n);
      for (const at of samples) out[at] = mark(at);
      await peer.conn.send(["huge_in", n, samples]);
      await peer.conn.sendBytes(out);
      expectOk(await peer.conn.recv(), "huge_in");
      await peer.conn.send(["bye"]);
      expect(await peer.finish()).toBe(0);
    } finally {
      peer.kill();
      peer.conn.close();
    }
  }, 600_000);
});
