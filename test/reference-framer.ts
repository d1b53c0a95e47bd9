// The test oracle: CPython's framing (multiprocessing/connection.py) written the plain way,
// with DataView and whole-buffer copies. It favours being obviously right over being fast.

/** Largest body a 4-byte header can describe; longer ones need the 12-byte form. */
export const SHORT_MAX = 0x7fffffff;

export interface EncodeOptions {
  /** `long[i]` forces the 12-byte header (-1, then a u64 length) on body i, whatever its size. */
  long?: readonly boolean[];
}

/** CPython's `_send_bytes` for each body in turn, all into one buffer. */
export function encodeFrames(bodies: readonly Uint8Array[], options: EncodeOptions = {}): Uint8Array {
  const isLong = (i: number): boolean => bodies[i]!.byteLength > SHORT_MAX || options.long?.[i] === true;
  let total = 0;
  for (let i = 0; i < bodies.length; i++) total += (isLong(i) ? 12 : 4) + bodies[i]!.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (let i = 0; i < bodies.length; i++) {
    const body = bodies[i]!;
    if (isLong(i)) {
      view.setInt32(at, -1);
      view.setBigUint64(at + 4, BigInt(body.byteLength));
      at += 12;
    } else {
      view.setInt32(at, body.byteLength);
      at += 4;
    }
    out.set(body, at);
    at += body.byteLength;
  }
  return out;
}

/**
 * Offsets of each frame's header in what encodeFrames writes for frames of these body sizes,
 * `long` being its option for that frame (12-byte header rather than 4).
 */
export function headerStarts(frames: ReadonlyArray<{ size: number; long: boolean }>): number[] {
  const starts: number[] = [];
  let at = 0;
  for (const f of frames) {
    starts.push(at);
    at += (f.long ? 12 : 4) + f.size;
  }
  return starts;
}

/** What one push() found: complete bodies, and the bad length if the stream just broke. */
export interface DecodeResult {
  bodies: Uint8Array[];
  invalid?: number;
}

/** A header as read from the front of the buffered bytes. */
type Header = { size: number; headerBytes: number } | { invalid: number } | "incomplete";

/**
 * CPython's `_recv_bytes`, fed chunk by chunk. Unconsumed bytes are buffered as they are; each
 * body is returned as a fresh copy. One deliberate addition to CPython: a 12-byte length past
 * 2^53 - 1 is invalid, since JavaScript cannot represent it (mpconn's codec rejects it too).
 */
export class ReferenceDecoder {
  private buffer = new Uint8Array(64);
  private start = 0;
  private end = 0;
  /** The invalid length that broke the stream; nothing is decoded after it. */
  invalid: number | undefined;

  push(chunk: Uint8Array): DecodeResult {
    const bodies: Uint8Array[] = [];
    if (this.invalid !== undefined) return { bodies };
    this.append(chunk);
    for (;;) {
      const header = this.header();
      if (header === "incomplete") break;
      if ("invalid" in header) {
        this.invalid = header.invalid;
        return { bodies, invalid: header.invalid };
      }
      const bodyAt = this.start + header.headerBytes;
      if (this.end - bodyAt < header.size) break;
      bodies.push(this.buffer.slice(bodyAt, bodyAt + header.size));
      this.start = bodyAt + header.size;
    }
    return { bodies };
  }

  /**
   * CPython reads the header, the extended length and the body with three separate reads,
   * and each read calls an EOF before its first byte clean (EOFError); anywhere else the
   * message was cut short (OSError "got end of file during message").
   */
  eof(): "clean" | "truncated" {
    const held = this.end - this.start;
    if (this.invalid !== undefined) return "truncated";
    if (held === 0) return "clean";
    if (held < 4) return "truncated";
    const short = this.view().getInt32(this.start);
    if (short !== -1) return held === 4 ? "clean" : "truncated";
    return held === 4 || held === 12 ? "clean" : "truncated";
  }

  private header(): Header {
    const held = this.end - this.start;
    if (held < 4) return "incomplete";
    const short = this.view().getInt32(this.start);
    if (short >= 0) return { size: short, headerBytes: 4 };
    if (short !== -1) return { invalid: short };
    if (held < 12) return "incomplete";
    const size = this.view().getBigUint64(this.start + 4);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) return { invalid: Number(size) };
    return { size: Number(size), headerBytes: 12 };
  }

  private view(): DataView {
    return new DataView(this.buffer.buffer);
  }

  /** Buffer `chunk` after what is held; when full, move the held bytes to a buffer twice their size. */
  private append(chunk: Uint8Array): void {
    const held = this.end - this.start;
    if (this.end + chunk.byteLength > this.buffer.byteLength) {
      const next = new Uint8Array(Math.max(64, 2 * (held + chunk.byteLength)));
      next.set(this.buffer.subarray(this.start, this.end));
      this.buffer = next;
      this.start = 0;
      this.end = held;
    }
    this.buffer.set(chunk, this.end);
    this.end += chunk.byteLength;
  }
}
