// CPython's message framing, as a WebAssembly codec.
//
// Wire format (multiprocessing/connection.py): a 4-byte big-endian signed length, then the
// body; bodies over 0x7fffffff bytes use the length -1 followed by an 8-byte big-endian
// unsigned length. The decoder accepts the 8-byte form for any size, as CPython does.
//
// JavaScript owns every region: it passes byte offsets into this module's memory and the
// module never allocates. Calls are coarse on purpose (one per received chunk, one per
// outgoing batch): a call costs ~2 ns, so the per-frame work stays inside the loop here.

// ---- decoder -------------------------------------------------------------------------
//
// One state record per connection, at an offset chosen by JavaScript (STATE_SIZE bytes):
//   +0  u32 phase      0 = reading the 4-byte header, 1 = reading the 8-byte length, 2 = body
//   +4  u32 have       header bytes gathered so far (0..12), kept across chunks
//   +8  u8[12] header  the header bytes themselves
//   +24 u64 remaining  body bytes still to come (phase 2)
//   +32 u64 length     declared body length of the current frame
//   +40 u32 consumed   bytes of the chunk the last decode() consumed, counted from its `origin`
//                      (JavaScript reads it from memory: no call)
//
// decode() reports what one chunk holds as a table of 8-byte entries:
//   +0 u32 kind << 24 | offset (into the chunk; chunks are at most 16 MiB)
//   +4 u32 length (for BEGIN: min(length, 0xffffffff); declared() has the exact value)

export const STATE_SIZE: u32 = 48;
export const ENTRY_SIZE: u32 = 8;

/** A whole frame: the body is [offset, offset + length) of this chunk. */
export const FRAME: u32 = 0;
/** A frame begins whose body runs past this chunk; declared() is its length. PART/END entries follow. */
export const BEGIN: u32 = 1;
/** Body bytes [offset, offset + length) of the frame begun earlier; more are to come. */
export const PART: u32 = 2;
/** The last body bytes [offset, offset + length) of the frame begun earlier. */
export const END: u32 = 3;
/** A length that is negative but not -1: the stream cannot be trusted. `length` holds its bits. */
export const ERROR: u32 = 4;
/** An 8-byte length past 2^53; declared() has it. */
export const ERROR_LONG: u32 = 5;

const PHASE_HEADER: u32 = 0;
const PHASE_LENGTH: u32 = 1;
const PHASE_BODY: u32 = 2;
// JavaScript sees lengths as f64; anything larger cannot be a real message.
const MAX_LENGTH: u64 = 9007199254740991;

export function reset(state: usize): void {
  memory.fill(state, 0, STATE_SIZE);
}

/** Body bytes the current frame still needs; 0 when between frames. */
export function remaining(state: usize): f64 {
  return load<u32>(state) == PHASE_BODY ? <f64>load<u64>(state, 24) : 0;
}

/** Declared length of the frame in progress (the one a BEGIN entry announced). */
export function declared(state: usize): f64 {
  return <f64>load<u64>(state, 32);
}

/**
 * Consume `n` body bytes without looking at them: JavaScript calls this for a chunk that lies
 * wholly inside a body, so that chunk never needs copying into this memory. Returns 1 when
 * the frame is complete.
 */
export function skipBody(state: usize, n: u32): u32 {
  const left = load<u64>(state, 24) - <u64>n;
  store<u64>(state, left, 24);
  if (left != 0) return 0;
  store<u32>(state, PHASE_HEADER);
  store<u32>(state, 0, 4);
  return 1;
}

/**
 * What an EOF means in the current state, with CPython's answers: 0 = a clean end
 * (EOFError), 1 = a message was cut short ("got end of file during message").
 * CPython reads header, extended length and body with separate calls, each of which treats
 * "nothing read yet" as a clean EOF; so do we.
 */
export function eofKind(state: usize): u32 {
  const phase = load<u32>(state);
  const have = load<u32>(state, 4);
  if (phase == PHASE_HEADER) return have == 0 ? 0 : 1;
  if (phase == PHASE_LENGTH) return have == 4 ? 0 : 1;
  return load<u64>(state, 24) == load<u64>(state, 32) ? 0 : 1;
}

@inline function entry(table: usize, i: u32, kind: u32, offset: u32, length: u32): void {
  const at = table + (<usize>i << 3);
  store<u32>(at, (kind << 24) | (offset & 0xffffff));
  store<u32>(at, length, 4);
}

@inline function clampU32(n: u64): u32 {
  return n > 0xffffffff ? 0xffffffff : <u32>n;
}

/**
 * Decode a chunk of `total` bytes of which only the first `avail` were copied to `src`:
 * headers must lie in the copied window, bodies need not (a body is only measured, never
 * read, so JavaScript copies just the bytes around headers when frames are large).
 * Writes at most `maxEntries` entries at `table` and returns their count; entry offsets
 * count from `origin` (where `src` lies in JavaScript's slice of the chunk, so that several
 * calls can fill one table), and so does the consumed count left in the state (+40), which
 * tells where the next call must start. Stops after an ERROR.
 */
export function decode(state: usize, src: usize, avail: u32, total: u32, table: usize, maxEntries: u32, origin: u32): u32 {
  let phase = load<u32>(state);
  let have = load<u32>(state, 4);
  let left = load<u64>(state, 24);
  let at: u32 = 0;
  let n: u32 = 0;
  // A new frame may take two entries (BEGIN + PART).
  while (at < total && n + 2 <= maxEntries) {
    if (phase == PHASE_BODY) {
      const rest = total - at;
      if (<u64>rest < left) {
        entry(table, n++, PART, at + origin, rest);
        left -= <u64>rest;
        at = total;
        break;
      }
      entry(table, n++, END, at + origin, <u32>left);
      at += <u32>left;
      left = 0;
      phase = PHASE_HEADER;
      have = 0;
      continue;
    }
    if (phase == PHASE_HEADER && have == 0) {
      if (avail - min(at, avail) < 4) {
        // The header is outside the copied window: let JavaScript copy from here.
        if (avail < total) break;
      } else {
        // Fast path: a whole 4-byte header, and perhaps the whole frame, in this chunk.
        const size = <i32>bswap<u32>(load<u32>(src + at));
        if (size >= 0) {
          const body = at + 4;
          if (<u32>size <= total - body) {
            entry(table, n++, FRAME, body + origin, <u32>size);
            at = body + <u32>size;
            continue;
          }
          entry(table, n++, BEGIN, body + origin, <u32>size);
          store<u64>(state, <u64>size, 32);
          left = <u64>size;
          at = body;
          phase = PHASE_BODY;
          continue;
        }
        if (size != -1) {
          entry(table, n++, ERROR, at + origin, <u32>size);
          break;
        }
        // -1: an 8-byte length follows, gathered below; it too must be in the window.
        if (avail - at < 12 && avail < total) break;
      }
    }
    // Slow path: gather header bytes one at a time, across chunks if need be.
    const want: u32 = phase == PHASE_HEADER ? 4 : 12;
    while (have < want && at < avail) {
      store<u8>(state + 8 + have, load<u8>(src + at));
      have++;
      at++;
    }
    if (have < want) break;
    let size: u64;
    if (phase == PHASE_HEADER) {
      const short = <i32>bswap<u32>(load<u32>(state + 8));
      if (short == -1) {
        phase = PHASE_LENGTH;
        continue;
      }
      if (short < 0) {
        entry(table, n++, ERROR, origin, <u32>short);
        have = 0;
        break;
      }
      size = <u64>short;
    } else {
      size = bswap<u64>(load<u64>(state + 12));
      if (size > MAX_LENGTH) {
        store<u64>(state, size, 32);
        entry(table, n++, ERROR_LONG, origin, 0);
        have = 0;
        break;
      }
    }
    have = 0;
    if (<u64>(total - at) >= size) {
      entry(table, n++, FRAME, at + origin, <u32>size);
      at += <u32>size;
      phase = PHASE_HEADER;
    } else {
      entry(table, n++, BEGIN, at + origin, clampU32(size));
      store<u64>(state, size, 32);
      left = size;
      phase = PHASE_BODY;
    }
  }
  store<u32>(state, phase);
  store<u32>(state, have, 4);
  store<u64>(state, left, 24);
  store<u32>(state, at + origin, 40);
  return n;
}

/**
 * Whole frames at guessed places, when frames keep one size: JavaScript copied the 4 bytes at
 * each of `count` positions `stride` apart (the first at `origin`, where the chunk's unread
 * part starts) as u32 words at `heads`, without reading them. Each guess is checked before it
 * is used: it must lie where the frame before it ends, hold a plain 4-byte length, and its
 * body must end inside the `total` bytes. The first guess that fails stops the call (decode()
 * then takes over from there). Bodies never enter this memory. Entries and the consumed count
 * as for decode(); only between frames (no header bytes gathered), else nothing is done.
 *
 * Every frame but the last found is `stride - 4` bytes (else the next guess would not lie where
 * it ends), so those are found by comparing each word with that length's header bytes, as they
 * lie, and JavaScript may compute their places itself: with `listAll` 0 only the last frame's
 * entry is written (at its index), else all of them.
 */
export function decodeGuessed(state: usize, heads: usize, count: u32, stride: u32, total: u32, table: usize, maxEntries: u32, origin: u32, listAll: u32): u32 {
  let n: u32 = 0;
  let at: u32 = 0;
  if (load<u32>(state) == PHASE_HEADER && load<u32>(state, 4) == 0 && stride >= 4) {
    // The run of frames of the guessed size that end inside the chunk.
    const size = stride - 4;
    const want = bswap<u32>(size);
    const limit = min(min(count, total / stride), maxEntries);
    while (n < limit && load<u32>(heads + (<usize>n << 2)) == want) n++;
    if (listAll != 0) {
      let offset = origin + 4;
      for (let k: u32 = 0; k < n; k++) {
        entry(table, k, FRAME, offset, size);
        offset += stride;
      }
    }
    at = n * stride;
    // The next guess lies where the run ends: any whole frame there is the last one found.
    if (n < count && n < maxEntries && total - at >= 4) {
      const other = <i32>bswap<u32>(load<u32>(heads + (<usize>n << 2)));
      const body = at + 4;
      if (other >= 0 && <u32>other <= total - body) {
        entry(table, n++, FRAME, body + origin, <u32>other);
        at = body + <u32>other;
        listAll = 1;
      }
    }
    if (n > 0 && listAll == 0) entry(table, n - 1, FRAME, at - size + origin, size);
  }
  store<u32>(state, at + origin, 40);
  return n;
}

// ---- encoder -------------------------------------------------------------------------

/**
 * Write the headers of a batch of frames whose bodies JavaScript already placed, each
 * 4 bytes after the end of the previous one, starting at dst + 4. `lengths` holds n u32
 * body lengths (each at most 0x7fffffff). Returns the end of the batch.
 */
export function encodeBatch(lengths: usize, n: u32, dst: usize): usize {
  let at = dst;
  for (let i: u32 = 0; i < n; i++) {
    const size = load<u32>(lengths + (<usize>i << 2));
    store<u32>(at, bswap<u32>(size));
    at += 4 + <usize>size;
  }
  return at;
}

/** Write the header of one frame of `size` bytes at dst; returns the header's size (4 or 12). */
export function encodeHeader(dst: usize, size: f64): u32 {
  if (size <= 2147483647) {
    store<u32>(dst, bswap<u32>(<u32>size));
    return 4;
  }
  store<u32>(dst, 0xffffffff);
  store<u64>(dst, bswap<u64>(<u64>size), 4);
  return 12;
}
