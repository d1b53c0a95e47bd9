// Arguments of the protocol 0/1 text opcodes (INT, LONG, FLOAT, STRING, UNICODE, GET, PUT),
// parsed the way CPython's C unpickler does, minus the parts no pickler emits (base-0
// prefixes such as "0x10" are refused). Lines arrive without their trailing "\n".

import { UnpicklingError } from "./errors.ts";
import { normalizeInt } from "./ints.ts";

/** Python refuses to convert longer decimal strings (sys.int_info.default_max_str_digits). */
export const MAX_INT_DIGITS = 4300;

/** The bytes of a line as Latin-1 text (every byte is one character). */
export function latin1(buf: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i += 4096) {
    // apply() takes any array-like, so the bytes go in without a copy.
    s += String.fromCharCode.apply(null, buf.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  }
  return s;
}

const DECIMAL = /^[+-]?[0-9]+$/;

function parseDecimal(text: string, what: string): number | bigint {
  const t = text.trim();
  if (!DECIMAL.test(t)) throw new UnpicklingError(`invalid literal for ${what}: ${quote(t)}`);
  const digits = t.length - (t[0] === "+" || t[0] === "-" ? 1 : 0);
  if (digits > MAX_INT_DIGITS) {
    throw new UnpicklingError(
      `Exceeds the limit (${MAX_INT_DIGITS} digits) for integer string conversion: value has ${digits} digits`,
    );
  }
  if (digits <= 15) return Number(t); // < 2^53: exact
  return normalizeInt(BigInt(t));
}

/** INT ('I'): "01"/"00" are True/False (protocol 0/1 bools), anything else an int. */
export function parseIntLine(line: string): number | bigint | boolean {
  if (line === "01") return true;
  if (line === "00") return false;
  return parseDecimal(line, "int() with base 10");
}

/** LONG ('L'): a decimal with an optional trailing "L" (Python 2's repr). */
export function parseLongLine(line: string): number | bigint {
  return parseDecimal(line.endsWith("L") ? line.slice(0, -1) : line, "int() with base 10");
}

const FLOAT = /^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)$/i;

/** FLOAT ('F'): Python's float repr, including "inf", "-inf" and "nan". */
export function parseFloatLine(line: string): number {
  const t = line.trim();
  if (!FLOAT.test(t)) throw new UnpicklingError(`could not convert string to float: ${quote(t)}`);
  const lower = t.toLowerCase().replace(/^\+/, "");
  if (lower === "nan" || lower === "-nan") return NaN;
  if (lower === "inf" || lower === "infinity") return Infinity;
  if (lower === "-inf" || lower === "-infinity") return -Infinity;
  return Number(t);
}

/** GET/PUT ('g'/'p') index. */
export function parseIndexLine(line: string, opname: string): number {
  if (!/^[+-]?[0-9]{1,15}$/.test(line.trim())) throw new UnpicklingError(`invalid ${opname} argument: ${quote(line)}`);
  const idx = Number(line);
  if (idx < 0) throw new UnpicklingError(`negative ${opname} argument`);
  return idx;
}

/**
 * UNICODE ('V'): raw-unicode-escape. Bytes are Latin-1 characters; only \uXXXX and
 * \UXXXXXXXX are escapes (CPython's pickler writes "\", "\n", "\r", "\0" that way too).
 */
export function decodeRawUnicodeEscape(buf: Uint8Array, start: number, end: number): string {
  let out = "";
  let run = start; // start of the pending run of plain bytes
  let i = start;
  while (i < end) {
    if (buf[i] !== 0x5c || i + 1 >= end) {
      i++;
      continue;
    }
    const kind = buf[i + 1];
    if (kind !== 0x75 && kind !== 0x55) {
      i += 2; // "\x" for another x stays as both characters
      continue;
    }
    const count = kind === 0x75 ? 4 : 8;
    out += latin1(buf, run, i);
    let cp = 0;
    for (let k = 0; k < count; k++) {
      const h = i + 2 + k < end ? hexValue(buf[i + 2 + k]!) : -1;
      if (h < 0) {
        throw new UnpicklingError(
          `'rawunicodeescape' codec can't decode bytes in position ${i - start}-${Math.min(end, i + 2 + k) - start - 1}: truncated \\${count === 4 ? "uXXXX" : "UXXXXXXXX"} escape`,
        );
      }
      cp = cp * 16 + h;
    }
    if (cp > 0x10ffff) {
      throw new UnpicklingError(`'rawunicodeescape' codec can't decode bytes in position ${i - start}: \\Uxxxxxxxx out of range`);
    }
    out += cp > 0xffff ? String.fromCodePoint(cp) : String.fromCharCode(cp);
    i += 2 + count;
    run = i;
  }
  return out + latin1(buf, run, end);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

const SIMPLE_ESCAPES: Record<number, number> = {
  0x5c: 0x5c, 0x27: 0x27, 0x22: 0x22, 0x61: 7, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9, 0x76: 11,
};

/**
 * STRING ('S'): a quoted Python 2 str literal. Unquoted with `codecs.escape_decode`
 * semantics, then decoded as ASCII, which is what Python 3's `pickle.loads` does by default.
 */
export function parseStringLine(buf: Uint8Array, start: number, end: number): string {
  // Python tolerates trailing whitespace after the closing quote.
  while (end > start && (buf[end - 1] === 0x20 || buf[end - 1] === 0x0d || buf[end - 1] === 0x09)) end--;
  const q = buf[start];
  if (end - start < 2 || (q !== 0x27 && q !== 0x22) || buf[end - 1] !== q) {
    throw new UnpicklingError("the STRING opcode argument must be quoted");
  }
  const bytes: number[] = [];
  for (let i = start + 1; i < end - 1; ) {
    const c = buf[i++]!;
    if (c !== 0x5c) {
      bytes.push(c);
      continue;
    }
    if (i >= end - 1) throw new UnpicklingError("Trailing \\ in string");
    const e = buf[i++]!;
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      bytes.push(simple);
    } else if (e === 0x0a) {
      // backslash-newline: line continuation, produces nothing
    } else if (e >= 0x30 && e <= 0x37) {
      let v = e - 0x30;
      for (let k = 0; k < 2 && i < end - 1 && buf[i]! >= 0x30 && buf[i]! <= 0x37; k++) v = v * 8 + (buf[i++]! - 0x30);
      bytes.push(v & 0xff);
    } else if (e === 0x78) {
      const h1 = i < end - 1 ? hexValue(buf[i]!) : -1;
      const h2 = i + 1 < end - 1 ? hexValue(buf[i + 1]!) : -1;
      if (h1 < 0 || h2 < 0) throw new UnpicklingError(`invalid \\x escape at position ${i - start - 3}`);
      bytes.push(h1 * 16 + h2);
      i += 2;
    } else {
      bytes.push(0x5c, e);
    }
  }
  return ascii(Uint8Array.from(bytes), 0, bytes.length);
}

/** BINSTRING/SHORT_BINSTRING payloads: Python 3 decodes Python 2 str as ASCII by default. */
export function ascii(buf: Uint8Array, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    if (buf[i]! >= 0x80) {
      throw new UnpicklingError(
        `'ascii' codec can't decode byte 0x${buf[i]!.toString(16)} in position ${i - start}: ordinal not in range(128)`,
      );
    }
  }
  return latin1(buf, start, end);
}

/** Python-style repr of a short piece of text for messages, clipped so errors stay small. */
export function quote(s: string): string {
  const clipped = s.length > 80 ? s.slice(0, 77) + "..." : s;
  return `'${clipped.replace(/[\\']/g, (c) => "\\" + c).replace(/[\x00-\x1f\x7f]/g, (c) => "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0"))}'`;
}
