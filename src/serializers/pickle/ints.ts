// Python ints in pickle's LONG1/LONG4 form: little-endian two's complement of minimal
// length, the same length CPython's `_PyLong_AsByteArray` dance ends with.

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Python int → JS: a number inside the safe range, a bigint outside it. */
export function normalizeInt(v: bigint): number | bigint {
  return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v;
}

/** Decodes the `n`-byte LONG1/LONG4 payload at `buf[start]`. */
export function decodeLong(buf: Uint8Array, start: number, n: number): number | bigint {
  if (n === 0) return 0;
  const negative = (buf[start + n - 1]! & 0x80) !== 0;
  if (n <= 6) {
    // ≤ 48 bits: exact in a double, no bigint needed.
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + buf[start + i]!;
    return negative ? v - 2 ** (8 * n) : v;
  }
  // Hex is a power-of-two radix, so the bigint parse is linear in the length.
  const parts: string[] = new Array<string>(n);
  for (let i = 0; i < n; i++) parts[i] = HEX[buf[start + n - 1 - i]!]!;
  let v = BigInt("0x" + parts.join(""));
  if (negative) v -= 1n << BigInt(8 * n);
  return normalizeInt(v);
}

/** Minimal two's complement byte count of a safe integer (CPython's LONG1 length). */
export function longLengthOfNumber(v: number): number {
  let n = 1;
  while (v >= 2 ** (8 * n - 1) || v < -(2 ** (8 * n - 1))) n++;
  return n;
}

/** Writes the `n`-byte little-endian two's complement of safe integer `v` at `out[pos]`. */
export function writeLongNumber(v: number, n: number, out: Uint8Array, pos: number): void {
  for (let i = 0; i < n; i++) {
    const b = ((v % 256) + 256) % 256;
    out[pos + i] = b;
    v = (v - b) / 256; // exact: v - b is a multiple of 256 below 2^53
  }
}

/**
 * The LONG payload of a bigint: its byte count and a writer. For a negative v the bytes are
 * those of ~v = -v - 1 inverted, which saves computing 2^(8n) + v.
 */
export function bigintLong(v: bigint): { length: number; write(out: Uint8Array, pos: number): void } {
  const negative = v < 0n;
  const magnitude = negative ? -v - 1n : v;
  const hex = magnitude.toString(16);
  const top = parseInt(hex[0]!, 16);
  const bits = (hex.length - 1) * 4 + (32 - Math.clz32(top));
  const length = (bits >> 3) + 1;
  const flip = negative ? 0xff : 0;
  return {
    length,
    write(out, pos) {
      let h = hex.length;
      for (let i = 0; i < length; i++, h -= 2) {
        const lo = h - 1 >= 0 ? nibble(hex.charCodeAt(h - 1)) : 0;
        const hi = h - 2 >= 0 ? nibble(hex.charCodeAt(h - 2)) : 0;
        out[pos + i] = ((hi << 4) | lo) ^ flip;
      }
    },
  };
}

function nibble(c: number): number {
  return c <= 57 ? c - 48 : c - 87; // '0'–'9', 'a'–'f' (toString(16) is lower case)
}
