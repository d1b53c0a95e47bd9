// The lane's notices: the small frames that travel on the socket in place of a large message.
//
// On the wire a notice is a frame whose 4-byte big-endian length field holds -2, a value
// CPython never writes (it writes a length ≥ 0, or -1 followed by an 8-byte length):
//
//   FF FF FF FE | u32 big-endian n | n bytes of body
//
// Notices are only ever written once both ends have shown they speak the lane, so a peer
// that does not (CPython) never sees one. The body (little-endian):
//
//   @0 u8 kind   @1 u8 flags   @2 u16 region   @4 u32 zero   then, by kind:
//   PIECE    @8 u64 offset  @16 u64 length  @24 u64 message length (FIRST only, else 0)
//   RELEASE  @8 u64 pieces consumed so far (cumulative)
//   OFFER    @8 u64 region size  @16 ticket (how the peer fetches the region's descriptor)
//   RETIRE   (nothing more): the sender will not use this region again
//   HELLO    (nothing more): this end speaks the lane (negotiation: docs/large-messages.md)
//   OFF      (nothing more): this end is leaving (its connection moves): write it no more notices
//   DONE     (nothing more): the answer to OFF: no notice follows from this end
//
// Everything in a notice is untrusted: decodeNotice() checks shape only, the lane checks meaning.
import { OSError } from "../errors.ts";

export const NOTICE_MARKER = -2;
export const NOTICE_HEADER_SIZE = 8;

export const PIECE = 1;
export const RELEASE = 2;
export const OFFER = 3;
export const RETIRE = 4;
export const HELLO = 5;
export const OFF = 6;
export const DONE = 7;

/** PIECE flags: the first piece of a message (it carries the message's length), the last one. */
export const FIRST = 1;
export const LAST = 2;

export const MAX_TICKET = 256;

export type Notice =
  | { kind: typeof PIECE; region: number; flags: number; offset: number; length: number; total: number }
  | { kind: typeof RELEASE; count: number }
  | { kind: typeof OFFER; region: number; size: number; ticket: Uint8Array }
  | { kind: typeof RETIRE; region: number }
  | { kind: typeof HELLO }
  | { kind: typeof OFF }
  | { kind: typeof DONE };

const BODY_SIZE: Record<number, number> = { [PIECE]: 32, [RELEASE]: 16, [RETIRE]: 8, [HELLO]: 8, [OFF]: 8, [DONE]: 8 };
const TWO_32 = 2 ** 32;

function frame(bodySize: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(NOTICE_HEADER_SIZE + bodySize);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, NOTICE_MARKER);
  view.setUint32(4, bodySize);
  return { bytes, view };
}

function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(NOTICE_HEADER_SIZE + at, value >>> 0, true);
  view.setUint32(NOTICE_HEADER_SIZE + at + 4, Math.floor(value / TWO_32), true);
}

function getU64(view: DataView, at: number): number {
  const hi = view.getUint32(at + 4, true);
  if (hi >= 2 ** 21) throw new OSError("shared-memory lane: a notice holds a number past 2**53", "EPROTO");
  return hi * TWO_32 + view.getUint32(at, true);
}

/** The whole frame (header included) of a notice, ready to write. */
export function encodeNotice(notice: Notice): Uint8Array {
  if (notice.kind === OFFER) {
    const { bytes, view } = frame(16 + notice.ticket.byteLength);
    bytes[NOTICE_HEADER_SIZE] = OFFER;
    view.setUint16(NOTICE_HEADER_SIZE + 2, notice.region, true);
    setU64(view, 8, notice.size);
    bytes.set(notice.ticket, NOTICE_HEADER_SIZE + 16);
    return bytes;
  }
  const { bytes, view } = frame(BODY_SIZE[notice.kind]!);
  bytes[NOTICE_HEADER_SIZE] = notice.kind;
  if (notice.kind === PIECE) {
    bytes[NOTICE_HEADER_SIZE + 1] = notice.flags;
    view.setUint16(NOTICE_HEADER_SIZE + 2, notice.region, true);
    setU64(view, 8, notice.offset);
    setU64(view, 16, notice.length);
    setU64(view, 24, notice.total);
  } else if (notice.kind === RELEASE) {
    setU64(view, 8, notice.count);
  } else if (notice.kind === RETIRE) {
    view.setUint16(NOTICE_HEADER_SIZE + 2, notice.region, true);
  }
  return bytes;
}

function malformed(why: string): OSError {
  return new OSError(`shared-memory lane: malformed notice (${why})`, "EPROTO");
}

/** Parse a notice body (the bytes after the 8-byte header). Throws OSError on anything malformed. */
export function decodeNotice(body: Uint8Array): Notice {
  if (body.byteLength < 8) throw malformed(`${body.byteLength} bytes`);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const kind = body[0]!;
  const flags = body[1]!;
  const region = view.getUint16(2, true);
  if (view.getUint32(4, true) !== 0) throw malformed("reserved bytes set");
  if (kind === OFFER) {
    const ticketSize = body.byteLength - 16;
    if (ticketSize < 0 || ticketSize > MAX_TICKET) throw malformed(`offer of ${body.byteLength} bytes`);
    return { kind, region, size: getU64(view, 8), ticket: body.slice(16) };
  }
  const expected = BODY_SIZE[kind];
  if (expected === undefined) throw malformed(`unknown kind ${kind}`);
  if (body.byteLength !== expected) throw malformed(`kind ${kind} with ${body.byteLength} bytes`);
  if (kind !== PIECE && (flags !== 0 || (kind !== RETIRE && region !== 0))) throw malformed(`kind ${kind} with flags or region set`);
  if (kind === PIECE) {
    if ((flags & ~(FIRST | LAST)) !== 0) throw malformed(`flags 0x${flags.toString(16)}`);
    return { kind, region, flags, offset: getU64(view, 8), length: getU64(view, 16), total: getU64(view, 24) };
  }
  if (kind === RELEASE) return { kind, count: getU64(view, 8) };
  if (kind === HELLO) return { kind };
  if (kind === OFF) return { kind };
  if (kind === DONE) return { kind };
  return { kind: RETIRE, region };
}
