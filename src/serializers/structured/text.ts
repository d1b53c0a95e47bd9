// String helpers shared by the encoder and the decoder. Bun's Buffer has native, copy-free
// latin1/UTF-8/UTF-16 writers and readers (`utf8Slice` etc.) that take any Uint8Array as
// `this` and a byte range, so no subarray view is made; TextEncoder/TextDecoder stand in
// where they are missing.

interface NativeText {
  utf8Slice(this: Uint8Array, start: number, end: number): string;
  latin1Slice(this: Uint8Array, start: number, end: number): string;
  ucs2Slice(this: Uint8Array, start: number, end: number): string;
  ucs2Write(this: Uint8Array, text: string, offset: number, length: number): number;
  utf8Write(this: Uint8Array, text: string, offset: number, length: number): number;
}

const native = (globalThis as { Buffer?: { prototype: Partial<NativeText> } }).Buffer?.prototype;
const encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8");

/** UTF-8 bytes [start, end) of `buf` as a string (invalid sequences become U+FFFD). */
export const utf8Slice: (buf: Uint8Array, start: number, end: number) => string = native?.utf8Slice
  ? ((f) => (buf, start, end) => f.call(buf, start, end))(native.utf8Slice)
  : (buf, start, end) => utf8Decoder.decode(buf.subarray(start, end));

/** Bytes [start, end) of `buf` as Latin-1 code units. */
export const latin1Slice: (buf: Uint8Array, start: number, end: number) => string = native?.latin1Slice
  ? ((f) => (buf, start, end) => f.call(buf, start, end))(native.latin1Slice)
  : (buf, start, end) => {
      let s = "";
      for (let i = start; i < end; i += 4096) s += String.fromCharCode.apply(null, Array.from(buf.subarray(i, Math.min(end, i + 4096))));
      return s;
    };

/** UTF-16LE code units in bytes [start, end) of `buf`, lone surrogates kept. */
export const utf16Slice: (buf: Uint8Array, start: number, end: number) => string = native?.ucs2Slice
  ? ((f) => (buf, start, end) => f.call(buf, start, end))(native.ucs2Slice)
  : (buf, start, end) => {
      // TextDecoder("utf-16le") would replace lone surrogates, so by hand.
      const units: number[] = [];
      let s = "";
      for (let i = start; i + 1 < end; i += 2) {
        units.push(buf[i]! | (buf[i + 1]! << 8));
        if (units.length === 4096) s += String.fromCharCode(...units.splice(0));
      }
      return s + String.fromCharCode(...units);
    };

/** Writes the code units of `text` as UTF-16LE at `offset` (the caller made room: 2 bytes each). */
export const utf16Write: (buf: Uint8Array, text: string, offset: number) => void = native?.ucs2Write
  ? ((f) => (buf, text, offset) => void f.call(buf, text, offset, text.length * 2))(native.ucs2Write)
  : (buf, text, offset) => {
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        buf[offset++] = c & 0xff;
        buf[offset++] = c >> 8;
      }
    };

/**
 * Writes well-formed `text` as UTF-8 at `offset`, at most `length` bytes and only whole
 * characters; returns the bytes written.
 */
export const utf8Write: (buf: Uint8Array, text: string, offset: number, length: number) => number = native?.utf8Write
  ? ((f) => (buf, text, offset, length) => f.call(buf, text, offset, length))(native.utf8Write)
  : (buf, text, offset, length) => encoder.encodeInto(text, buf.subarray(offset, offset + length)).written ?? 0;

const byteLength = (globalThis as { Buffer?: { byteLength(text: string, encoding: "utf8"): number } }).Buffer?.byteLength;

/** The UTF-8 length of well-formed `text`. */
export const utf8Length: (text: string) => number = byteLength ? (text) => byteLength(text, "utf8") : (text) => encoder.encode(text).length;
