// The wire format of the fast structured-clone codec.
//
// A message is MARKER, then one value. Every value starts with a one-byte tag:
//
//   0x00–0x7f  the integer 0..127                 0xe0–0xff  the integer -32..-1
//   0x80–0x9f  an ASCII string of 0..31 bytes, which follow
//   0xa0–0xbf  the scalar and structural tags below
//   0xc0–0xcf  objects (containers); 0xd0–0xdf the same object, marked SHARED: a later
//              REF points at it, so the decoder remembers it under its offset
//
// Numbers after a tag are little-endian. "varint" is unsigned LEB128 (at most 8 bytes).
// A REF carries the offset of the referenced object's tag from the MARKER byte.

/** First byte of our messages. bun:jsc output starts with its u32 LE version (14 = 0x0e in Bun 1.4). */
export const MARKER = 0xfb;

export const FIXSTR = 0x80; // | length (0..31), then that many ASCII bytes

export const UNDEFINED = 0xa0;
export const NULL = 0xa1;
export const FALSE = 0xa2;
export const TRUE = 0xa3;
export const INT8 = 0xa4; // i8
export const INT16 = 0xa5; // i16
export const INT32 = 0xa6; // i32
export const FLOAT32 = 0xa7; // f32 (used when it holds the number exactly)
export const FLOAT64 = 0xa8; // f64
export const BIGINT64 = 0xa9; // i64
export const BIGPOS = 0xaa; // varint n, n bytes of magnitude, least significant first
export const BIGNEG = 0xab; // the same, negated
export const STR8 = 0xac; // u8 n, n bytes of UTF-8
export const STR32 = 0xad; // u32 n, n bytes of UTF-8
export const UTF16 = 0xae; // varint n, n UTF-16 code units (strings with lone surrogates)
export const HOLE = 0xaf; // a missing array element
export const END = 0xb0; // ends the entries of an OBJECT, MAP or SET, or SPARSE pairs
export const REF = 0xb1; // varint offset of an object seen before
export const SPARSE = 0xb2; // inside an ARRAY: the remaining elements as key/value pairs up to END
export const UINT8 = 0xb3; // u8 (128..255)
export const ASCII32 = 0xb4; // u32 n, n ASCII bytes

export const OBJECT = 0xc0; // (key, value)* END; keys are string values
export const ARRAY = 0xc1; // varint length, then elements (HOLE for missing ones, or SPARSE …)
export const MAP = 0xc2; // (key, value)* END
export const SET = 0xc3; // value* END
export const DATE = 0xc4; // f64 time value
export const REGEXP = 0xc5; // source string, flags string
export const ARRAYBUFFER = 0xc6; // varint n, n bytes
export const VIEW = 0xc7; // u8 kind (VIEW_KINDS), varint n, n bytes
export const BOXED = 0xc8; // a number, string or boolean value
export const EXTERNAL = 0xc9; // a value from hooks.replace, handed to hooks.revive

export const SHARED = 0x10;

/**
 * Deepest nesting of objects the encoder writes (deeper values go to bun:jsc, which
 * copies iteratively) and the decoder accepts.
 */
export const MAX_DEPTH = 2000;

/** Typed-array kinds by VIEW's kind byte; DataView is the last. Kinds Bun lacks are undefined. */
type ViewConstructor = new (buffer: ArrayBuffer) => ArrayBufferView;
const g = globalThis as unknown as Record<string, ViewConstructor | undefined>;
export const VIEW_KINDS: readonly (ViewConstructor | undefined)[] = [
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  g.Float16Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView,
];
export const VIEW_NAMES = [
  "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array",
  "Float16Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array", "DataView",
] as const;
export const ELEMENT_SIZES = [1, 1, 1, 2, 2, 4, 4, 2, 4, 8, 8, 8, 1];
