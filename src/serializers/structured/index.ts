// A structured-clone codec faster than bun:jsc for everyday messages, with bun:jsc as the
// fallback for what it does not copy itself. loads() tells the two apart by the first byte.

import { deserialize, serialize } from "bun:jsc";
import { Decoder } from "./decode.ts";
import { Encoder, FALLBACK, NO_ROOM, Uncloneable, uncloneable, Unsendable } from "./encode.ts";
import { describe, type StructuredHooks } from "./hooks.ts";
import { MARKER } from "./tags.ts";

export type { StructuredHooks } from "./hooks.ts";
export { describe } from "./hooks.ts";
export { MARKER } from "./tags.ts";

// One encoder and one decoder, reused; a nested call (from a getter or a hook) gets its own.
const encoder = new Encoder();
const decoder = new Decoder();

/**
 * The message bytes for `value`, in a buffer of their own. Throws TypeError for what
 * structured clone refuses (functions, symbols); errors thrown by `hooks.replace` pass
 * through unchanged.
 */
export function dumps(value: unknown, hooks?: StructuredHooks): Uint8Array {
  const enc = encoder.busy ? new Encoder() : encoder;
  enc.busy = true;
  try {
    enc.run(value, hooks);
    return enc.result();
  } catch (e) {
    return failed(enc, value, e);
  } finally {
    enc.reset();
  }
}

// dumpsInto keeps a DataView per target buffer.
let lastTarget: Uint8Array | null = null;
let lastBuffer: ArrayBufferLike | null = null;
let lastView: DataView | null = null;

/**
 * Encodes `value` straight into `target` from byte `offset`. Returns the number of bytes
 * written, or -1 when the message does not fit (target's contents past `offset` are then
 * unspecified). Errors as for dumps.
 */
export function dumpsInto(value: unknown, target: Uint8Array, offset: number, hooks?: StructuredHooks): number {
  if (!Number.isInteger(offset) || offset < 0 || offset > target.length) throw new RangeError(`offset ${offset} is outside the target (length ${target.length})`);
  const enc = encoder.busy ? new Encoder() : encoder;
  enc.busy = true;
  try {
    if (target !== lastTarget || target.buffer !== lastBuffer) {
      lastTarget = target;
      lastBuffer = target.buffer;
      lastView = new DataView(target.buffer, target.byteOffset, target.byteLength);
    }
    return enc.run(value, hooks, target, lastView!, offset) - offset;
  } catch (e) {
    if (e === NO_ROOM) return -1;
    const bytes = failed(enc, value, e);
    if (bytes.length > target.length - offset) return -1;
    target.set(bytes, offset);
    return bytes.length;
  } finally {
    enc.reset();
  }
}

/** What dumps does when the encoder stops: bun:jsc's bytes, or the error to throw. */
function failed(enc: Encoder, value: unknown, e: unknown): Uint8Array {
  if (e instanceof Uncloneable) throw new TypeError(uncloneable(value, e.value));
  if (e instanceof Unsendable) throw new TypeError(e.reason);
  if (enc.hookThrew) throw e;
  if (e !== FALLBACK && !(e instanceof RangeError && /call stack/i.test(e.message))) {
    // A getter threw, say.
    throw new TypeError(`cannot serialize ${describe(value)}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  if (enc.replaced > 0) {
    throw new TypeError(
      `cannot serialize ${describe(value)}: ${describe(enc.unsupported ?? value)} needs bun:jsc's serializer, which cannot carry the transferred objects in the same message`,
    );
  }
  try {
    return new Uint8Array(serialize(value));
  } catch (cause) {
    throw new TypeError(`cannot serialize ${describe(value)}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * The value of a message made by dumps (or by bun:jsc's serialize). Corrupt input throws an
 * Error saying what is wrong; errors thrown by `hooks.revive` pass through unchanged.
 */
export function loads(bytes: Uint8Array, hooks?: StructuredHooks): unknown {
  if (bytes.length === 0) throw new Error("structured: empty message");
  if (bytes[0] !== MARKER) return deserialize(bytes);
  const dec = decoder.busy ? new Decoder() : decoder;
  dec.busy = true;
  try {
    return dec.run(bytes, hooks);
  } catch (e) {
    if (e instanceof RangeError && /call stack/i.test(e.message)) throw new Error("structured: nesting too deep for the stack", { cause: e });
    throw e;
  } finally {
    dec.reset();
  }
}
