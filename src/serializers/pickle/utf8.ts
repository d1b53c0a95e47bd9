// UTF-8 with Python's "surrogatepass" error handler, which is how pickle stores `str`:
// a lone surrogate (legal in both a JS string and a Python str) becomes its 3-byte
// generalized UTF-8 form (U+D800 → ED A0 80) instead of U+FFFD, so it survives both ways.
// TextEncoder/TextDecoder replace lone surrogates, so they are only used on the fast path
// where the input is known to hold none.

import { UnpicklingError } from "./errors.ts";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Exact byte length of `s` in UTF-8/surrogatepass. A lone surrogate takes 3 bytes, the
 * same as the U+FFFD that `Buffer.byteLength` counts for it, so the native count is exact.
 */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/**
 * Writes `s` into `out` at `pos` (capacity for `3 * s.length` bytes is the caller's job)
 * and returns the position after it.
 */
export function encodeUtf8Into(s: string, out: Uint8Array, pos: number): number {
  const n = s.length;
  // Native encoding wins for long strings, but only when nothing needs surrogatepass.
  if (n > 48 && s.isWellFormed()) {
    return pos + encoder.encodeInto(s, out.subarray(pos)).written;
  }
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      out[pos++] = c;
    } else if (c < 0x800) {
      out[pos++] = 0xc0 | (c >> 6);
      out[pos++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          out[pos++] = 0xf0 | (cp >> 18);
          out[pos++] = 0x80 | ((cp >> 12) & 0x3f);
          out[pos++] = 0x80 | ((cp >> 6) & 0x3f);
          out[pos++] = 0x80 | (cp & 0x3f);
          i++;
          continue;
        }
      }
      // BMP character, or a lone surrogate written as if it were one (surrogatepass).
      out[pos++] = 0xe0 | (c >> 12);
      out[pos++] = 0x80 | ((c >> 6) & 0x3f);
      out[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}

/** Bun's native Buffer slicers, when present (taken from the prototype, applied to any Uint8Array). */
type Slicer = (this: Uint8Array, start: number, end: number) => string;
const bufferProto = Buffer.prototype as unknown as { utf8Slice?: Slicer; latin1Slice?: Slicer };
/** Replacing UTF-8 decoder: the fastest for all but tiny strings. */
const nativeSlice = bufferProto.utf8Slice;
const nativeLatin1 = bufferProto.latin1Slice;

/** Decodes `buf[start, end)` as UTF-8/surrogatepass; any other malformation is an UnpicklingError. */
export function decodeUtf8(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= TINY) return decodeTiny(buf, start, end);
  if (nativeSlice !== undefined) {
    // The native decoder replaces what it cannot decode with U+FFFD; seeing one, let the
    // exact decoder decide (an encoded surrogate, a real U+FFFD, or garbage).
    const s = nativeSlice.call(buf, start, end);
    return s.indexOf("\ufffd") < 0 ? s : decodeSlow(buf, start, end);
  }
  try {
    return strictDecoder.decode(buf.subarray(start, end));
  } catch {
    return decodeSlow(buf, start, end);
  }
}

// Tiny ASCII strings (dict keys, mostly) come from a cache: the same key decoded again is
// the same string object, which skips building it and, more to the point, lets the engine
// reuse the atomized property key when it becomes an object property (a fresh string must
// be atomized on every store; that was a third of decoding time for records). Entries are
// compared byte for byte before use, so the cache can only change speed, never results.
const TINY = 12;
const CACHE_BITS = 12;
const cache: (string | undefined)[] = new Array<string | undefined>(1 << CACHE_BITS).fill(undefined);

function decodeTiny(buf: Uint8Array, start: number, end: number): string {
  let h = end - start;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b >= 0x80) return decodeSlow(buf, start, end);
    h = (Math.imul(h, 31) + b) | 0;
  }
  const slot = (h ^ (h >>> CACHE_BITS)) & ((1 << CACHE_BITS) - 1);
  const hit = cache[slot];
  if (hit !== undefined && hit.length === end - start) {
    let i = 0;
    while (i < hit.length && hit.charCodeAt(i) === buf[start + i]) i++;
    if (i === hit.length) return hit;
  }
  // A flat string: a concatenated (rope) one would be flattened by every later comparison.
  let s: string;
  if (nativeLatin1 !== undefined) {
    s = nativeLatin1.call(buf, start, end);
  } else {
    s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]!);
  }
  cache[slot] = s;
  return s;
}

const CHUNK = 4096;

function decodeSlow(buf: Uint8Array, start: number, end: number): string {
  let out = "";
  const units: number[] = [];
  let i = start;
  while (i < end) {
    const b = buf[i]!;
    if (b < 0x80) {
      units.push(b);
      i++;
    } else {
      let cp: number;
      let len: number;
      let lo = 0x80;
      let hi = 0xbf;
      if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
        cp = b & 0x1f;
      } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        cp = b & 0x0f;
        if (b === 0xe0) lo = 0xa0; // no overlongs; 0xED keeps A0–BF: those are the surrogates
      } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        cp = b & 0x07;
        if (b === 0xf0) lo = 0x90;
        else if (b === 0xf4) hi = 0x8f;
      } else {
        throw badUtf8(b, i - start, "invalid start byte");
      }
      if (i + len > end) throw badUtf8(b, i - start, "unexpected end of data");
      for (let k = 1; k < len; k++) {
        const c = buf[i + k]!;
        if (c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) {
          throw badUtf8(b, i - start, "invalid continuation byte");
        }
        cp = (cp << 6) | (c & 0x3f);
      }
      i += len;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
      } else {
        units.push(cp);
      }
    }
    if (units.length >= CHUNK) {
      out += String.fromCharCode.apply(null, units);
      units.length = 0;
    }
  }
  return out + String.fromCharCode.apply(null, units);
}

function badUtf8(byte: number, position: number, reason: string): UnpicklingError {
  const hex = byte.toString(16).padStart(2, "0");
  return new UnpicklingError(`'utf-8' codec can't decode byte 0x${hex} in position ${position}: ${reason}`);
}

/** `encodeUtf8Into` into a fresh array (used for names and tests). */
export function encodeUtf8(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 3);
  return out.slice(0, encodeUtf8Into(s, out, 0));
}
