// The only globals a pickle may name, and what REDUCE makes of them. These are exactly the
// callables CPython's pickler uses to encode the type table's values under protocols 0–4
// (sets and bytes had no opcodes before protocols 4 and 3). They are interpreted as data
// constructors here, never looked up or called, so a pickle cannot run code.

import { UnpicklingError } from "./errors.ts";
import { quote } from "./text.ts";

export type GlobalKind = "set" | "frozenset" | "bytes" | "bytearray" | "encode";

/** A resolved, allowed global on the unpickler's stack; only REDUCE may consume it. */
export class PyGlobal {
  constructor(
    readonly qualname: string,
    readonly kind: GlobalKind,
  ) {}
}

const ALLOWED = new Map<string, PyGlobal>();
for (const module of ["builtins", "__builtin__"]) {
  for (const kind of ["set", "frozenset", "bytes", "bytearray"] as const) {
    ALLOWED.set(`${module}\n${kind}`, new PyGlobal(`${module}.${kind}`, kind));
  }
}
ALLOWED.set("_codecs\nencode", new PyGlobal("_codecs.encode", "encode"));

/** The names, for messages and docs. */
export const ALLOWED_GLOBALS: readonly string[] = [...ALLOWED.values()].map((g) => g.qualname);

/** GLOBAL / STACK_GLOBAL: the allowed global, or an UnpicklingError naming the refused one. */
export function resolveGlobal(module: string, name: string): PyGlobal {
  const g = ALLOWED.get(`${module}\n${name}`);
  if (g !== undefined) return g;
  const full = quote(`${module}.${name}`);
  throw new UnpicklingError(
    `global ${full} is forbidden: only builtins.set, frozenset, bytes, bytearray and _codecs.encode may appear in a pickle`,
  );
}

/** Encoding names Python's codec registry resolves to Latin-1 (after its normalization). */
const LATIN1_NAMES = new Set(["latin1", "latin_1", "iso8859_1", "iso_8859_1", "l1", "8859", "cp819", "latin"]);

function isLatin1(name: unknown): boolean {
  return typeof name === "string" && LATIN1_NAMES.has(name.toLowerCase().replace(/[^a-z0-9.]+/g, "_"));
}

/** `str.encode('latin-1')`, with Python's error for characters above U+00FF. */
function latin1Encode(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) {
      throw new UnpicklingError(
        `'latin-1' codec can't encode character '\\u${c.toString(16).padStart(4, "0")}' in position ${i}: ordinal not in range(256)`,
      );
    }
    out[i] = c;
  }
  return out;
}

/**
 * REDUCE on an allowed global: the data that CPython's call would have produced, for the
 * argument shapes CPython's own reductions use. Anything else is refused rather than guessed
 * (`bytes(10**9)` would allocate a gigabyte, for instance).
 */
export function applyGlobal(g: PyGlobal, args: unknown): Uint8Array | Set<unknown> {
  if (!Array.isArray(args)) throw new UnpicklingError(`REDUCE arguments of ${g.qualname} must be a tuple`);
  const [a, b] = args as unknown[];
  switch (g.kind) {
    case "set":
    case "frozenset":
      // set() / set(list) / frozenset(list); a tuple or set argument is data of the same kind.
      if (args.length === 0) return new Set();
      if (args.length === 1 && (Array.isArray(a) || a instanceof Set)) return new Set(a as Iterable<unknown>);
      break;
    case "bytes":
      // bytes() for b'' under protocol 2; bytes(b'..') is a copy.
      if (args.length === 0) return new Uint8Array(0);
      if (args.length === 1 && a instanceof Uint8Array) return a.slice();
      break;
    case "bytearray":
      // bytearray(b'..') (3.x), bytearray('latin-1 text', 'latin-1') (older 3.x and 2.7, protocol 2).
      if (args.length === 0) return new Uint8Array(0);
      if (args.length === 1 && a instanceof Uint8Array) return a.slice();
      if (args.length === 2 && typeof a === "string" && isLatin1(b)) return latin1Encode(a);
      break;
    case "encode":
      // _codecs.encode('latin-1 text', 'latin1'): protocol 2 bytes.
      if (args.length === 2 && typeof a === "string") {
        if (!isLatin1(b)) throw new UnpicklingError(`_codecs.encode with encoding ${describe(b)} is forbidden: only latin1`);
        return latin1Encode(a);
      }
      break;
  }
  throw new UnpicklingError(`${g.qualname}(${args.map(describe).join(", ")}) is not a form CPython's pickler emits`);
}

function describe(v: unknown): string {
  if (typeof v === "string") return quote(v);
  if (v === null) return "None";
  if (Array.isArray(v)) return "list";
  if (v instanceof Uint8Array) return "bytes";
  if (v instanceof Set) return "set";
  if (v instanceof Map) return "dict";
  if (typeof v === "object") return v instanceof PyGlobal ? v.qualname : "dict";
  return typeof v === "number" || typeof v === "bigint" ? "int" : typeof v;
}
