// Large typed arrays beside the message: with the structured serializer, a typed array of at
// least LARGE bytes that is itself an argument (or a map item, or a result) is not encoded into
// the task's message but sent right after it with sendBytes, from the caller's own memory, and
// received with recvBytes without a copy where its alignment allows. Encoding it would copy it
// into fresh memory on both sides, and fresh memory is what costs most here (a first touch of a
// page is ~5-10 µs on a Firecracker VM: 2.7 ms per MiB). Values deeper inside arguments and all
// other serializers go through the serializer as usual.
import type { Connection } from "../../connection/connection.ts";

/** Arrays from this size (bytes) travel beside the message. */
export const LARGE = 1024 * 1024;

/** Where a large array was taken out: [item index, argument index or -1, constructor name]. */
export type Hole = [item: number, arg: number, kind: ViewKind];

const KINDS = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
};
type ViewKind = keyof typeof KINDS;

/** A plain (not shared, not resizable, not subclassed) typed array or DataView of LARGE bytes or more. */
function largeKind(value: unknown): ViewKind | null {
  if (!ArrayBuffer.isView(value) || value.byteLength < LARGE) return null;
  const kind = value.constructor.name as ViewKind;
  if (KINDS[kind] !== value.constructor) return null;
  const buffer = value.buffer as ArrayBuffer & { resizable?: boolean };
  if (!(buffer instanceof ArrayBuffer) || buffer.resizable) return null;
  return kind;
}

/**
 * Take the large arrays out of `items` (argument lists when `star`): a copy with null in their
 * places, where they were, and the arrays, in order. Null when there are none.
 */
export function takeLarge(items: unknown[], star: boolean): { items: unknown[]; holes: Hole[]; parts: ArrayBufferView[] } | null {
  let out: unknown[] | null = null;
  const holes: Hole[] = [];
  const parts: ArrayBufferView[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (!star) {
      const kind = largeKind(item);
      if (!kind) continue;
      out ??= items.slice();
      out[i] = null;
      holes.push([i, -1, kind]);
      parts.push(item as ArrayBufferView);
      continue;
    }
    const args = item as unknown[];
    let copy: unknown[] | null = null;
    for (let j = 0; j < args.length; j++) {
      const kind = largeKind(args[j]);
      if (!kind) continue;
      copy ??= args.slice();
      copy[j] = null;
      holes.push([i, j, kind]);
      parts.push(args[j] as ArrayBufferView);
    }
    if (copy) {
      out ??= items.slice();
      out[i] = copy;
    }
  }
  return out ? { items: out, holes, parts } : null;
}

/** Send the parts that takeLarge took, after their message. */
export function sendParts(conn: Connection<unknown>, parts: ArrayBufferView[]): Promise<unknown> {
  return Promise.all(parts.map((part) => conn.sendBytes(part)));
}

/** Receive the parts of `holes` and put them back into `items`, in place. */
export async function receiveParts(conn: Connection<unknown>, items: unknown[], holes: Hole[]): Promise<void> {
  for (const [i, j, kind] of holes) {
    const value = view(kind, await conn.recvBytes());
    if (j < 0) items[i] = value;
    else (items[i] as unknown[])[j] = value;
  }
}

/** The received bytes as a `kind`, over the same memory when the alignment allows, else over a copy. */
function view(kind: ViewKind, bytes: Uint8Array): ArrayBufferView {
  const Kind = KINDS[kind];
  if (Kind === DataView) return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = (Kind as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  const source = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return new (Kind as Float64ArrayConstructor)(source.buffer as ArrayBuffer, source.byteOffset, source.byteLength / size);
}
