// The default serializer: structured clone, as Bun's bun:jsc does it (Map, Set, Date, RegExp,
// BigInt, typed arrays, undefined, -0, NaN, holes, shared and cyclic references kept
// exactly), through our own codec in ./structured/, which is 3-5× faster than bun:jsc's
// serialize/deserialize on everyday messages (bench/structured.ts).
//
// Messages start with MARKER (0xfb); bun:jsc's start with its u32 LE version (14 = 0x0e in
// Bun 1.4), and loads() hands those to bun:jsc's deserialize, so both kinds always load.
//
// What our codec writes itself: primitives (ints in 1-5 bytes, doubles in 5 or 9), strings
// (ASCII, UTF-8, or UTF-16 code units when there are lone surrogates), plain objects (own
// enumerable string keys in order; a "__proto__" key stays an own property; a null prototype
// becomes Object.prototype, as with bun:jsc), arrays (holes kept), Map, Set, Date, RegExp
// (source and flags; lastIndex is not copied), ArrayBuffer, every typed array kind, DataView,
// boxed numbers, strings and booleans, and shared/cyclic references.
//
// What goes to bun:jsc, for the whole message (so it round-trips exactly as before):
//   - objects with any other prototype that the replace hook (if any) declines: class
//     instances (bun:jsc copies their own enumerable properties into a plain object), Error
//     objects, Blob/File, subclasses of Map/Set/…, boxed BigInt;
//   - Maps and Sets with enumerable own properties (bun:jsc keeps those);
//   - views whose buffer appears elsewhere in the same message (bun:jsc keeps them sharing
//     one buffer), views of SharedArrayBuffers, resizable or detached buffers;
//   - objects nested deeper than MAX_DEPTH (2000).
// Functions and symbols anywhere throw TypeError, as bun:jsc refuses them.
//
// Where we differ from bun:jsc, on purpose:
//   - A typed array or DataView carries only the bytes it views: it decodes with a fresh
//     buffer of its own, byteOffset 0 and buffer.byteLength = byteLength (bun:jsc copies
//     the whole underlying buffer and keeps the offset; a small view of a big buffer would
//     send all of it). Decoded views and ArrayBuffers never alias the input bytes.
//   - Named (non-index) properties of arrays are kept only for arrays with more than 64
//     elements after their first hole (those are written sparsely); bun:jsc keeps them always.
//   - Proxies and `arguments` objects are copied like the plain objects or arrays they look
//     like (bun:jsc refuses them).
//
// Hooks, for objects that travel as something else (live connections): see StructuredHooks.
// dumps returns a buffer the caller owns; dumpsInto writes into the caller's buffer.
import type { Serializer } from "./serializer.ts";
import { dumps, dumpsInto, loads, type StructuredHooks } from "./structured/index.ts";

export { describe } from "./structured/hooks.ts";
export type { StructuredHooks } from "./structured/hooks.ts";

export interface StructuredSerializer extends Serializer {
  /**
   * The message bytes for `value`, in a buffer of its own. TypeError for functions and
   * symbols; errors thrown by `hooks.replace` pass through unchanged.
   */
  dumps(value: unknown, hooks?: StructuredHooks): Uint8Array;
  /**
   * The value of a message from dumps, dumpsInto or bun:jsc's serialize. Corrupt input: an
   * Error whose message starts "structured: "; errors from `hooks.revive` pass through.
   */
  loads(bytes: Uint8Array, hooks?: StructuredHooks): unknown;
  /**
   * Encodes `value` straight into `target` from byte `offset`: the number of bytes written,
   * or -1 when they do not fit (the bytes after `offset` are then unspecified).
   */
  dumpsInto(value: unknown, target: Uint8Array, offset: number, hooks?: StructuredHooks): number;
}

export const structured: StructuredSerializer = { dumps, loads, dumpsInto };
