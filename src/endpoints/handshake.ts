// CPython's authkey handshake (multiprocessing.connection deliver_challenge / answer_challenge),
// byte-compatible with CPython 3.11 (raw HMAC-MD5) and 3.12+ ("{digest}" negotiation).
// See docs/internals.md ("The authkey handshake") and docs/listener.md (authkey). Transport-independent: it only needs
// something that sends and receives whole frames.

import { createHmac, timingSafeEqual } from "node:crypto";
import { AuthenticationError } from "../errors.ts";

/** The two frame operations the handshake needs from a connection. */
export interface FrameChannel {
  sendBytes(bytes: Uint8Array): Promise<void>;
  /** Rejects with OSError("bad message length") when the frame is longer than `maxlength`. */
  recvBytes(maxlength: number): Promise<Uint8Array>;
}

/** An authkey as users give it: a string (encoded as UTF-8) or bytes. */
export type Authkey = string | Uint8Array;

export interface HandshakeOptions {
  /** Source of the challenge's random bytes; tests inject fixed bytes. Default: crypto.getRandomValues. */
  random?: (n: number) => Uint8Array;
  /**
   * This end speaks the shared-memory lane: its challenge carries a keyed tag in place of half
   * its random bytes, and `peer()` is called once the peer's challenge shows the same tag,
   * before this end answers it (docs/large-messages.md, "Negotiation").
   */
  lane?: { peer: () => void };
}

/** Half of a lane-on end's 40 challenge bytes: the other half is HMAC-SHA256(key, LANE_TAG + these), cut to 20 bytes. */
const LANE_NONCE = 20;
const LANE_TAG = new TextEncoder().encode("mpconn shared-memory lane 1\0");

/** A challenge's 40 bytes for a lane-on end: 20 random bytes, then their keyed tag. */
function laneChallenge(key: Uint8Array, nonce: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(2 * LANE_NONCE);
  bytes.set(nonce.subarray(0, LANE_NONCE));
  bytes.set(createHmac("sha256", key).update(LANE_TAG).update(bytes.subarray(0, LANE_NONCE)).digest().subarray(0, LANE_NONCE), LANE_NONCE);
  return bytes;
}

/** Whether a challenge body ("{sha256}" + 40 bytes) came from a lane-on mpconn end with this key. */
function hasLaneTag(key: Uint8Array, message: Uint8Array): boolean {
  let payload: Uint8Array;
  try {
    payload = digestNameAndPayload(message).payload;
  } catch {
    return false;
  }
  if (payload.byteLength !== 2 * LANE_NONCE) return false;
  return timingSafeEqual(laneChallenge(key, payload).subarray(LANE_NONCE), payload.subarray(LANE_NONCE));
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

const CHALLENGE = utf8("#CHALLENGE#");
/** Added to CPython's texts where a different or missing key is the likely cause. */
const KEY_DIFFERS = " (the peer's authkey is different)";
const KEY_MISSING = " (did the peer connect without the authkey?)";
const WELCOME = utf8("#WELCOME#");
const FAILURE = utf8("#FAILURE#");

/** CPython caps every handshake read at 256 bytes so a hostile peer can't make it buffer a huge frame. */
const MAX_HANDSHAKE_FRAME = 256;
/** Random bytes after the "{sha256}" prefix of a modern challenge (CPython's MESSAGE_LENGTH). */
const CHALLENGE_RANDOM_LENGTH = 40;
/** The digest a 3.12+ Listener advertises; we always send it as server. */
const SERVER_DIGEST = "sha256";
/** A legacy (≤ 3.11) challenge body is 20 bytes; a legacy reply is a raw 16-byte MD5. */
const MD5ONLY_MESSAGE_LENGTH = 20;
const MD5_DIGEST_LENGTH = 16;

/** CPython's _ALLOWED_DIGESTS, mapped to node:crypto's algorithm names. */
const ALLOWED_DIGESTS: ReadonlyMap<string, string> = new Map([
  ["md5", "md5"],
  ["sha256", "sha256"],
  ["sha384", "sha384"],
  ["sha3_256", "sha3-256"],
  ["sha3_384", "sha3-384"],
]);
/** Longest allowed name ("sha3_384"): CPython looks for "}" only this far into a message. */
const MAX_DIGEST_NAME_LENGTH = 8;

/** Normalises a user-supplied authkey to bytes, as Listener/Client do before authenticating. */
export function toAuthkey(key: unknown): Uint8Array {
  if (typeof key === "string") return utf8(key);
  // Copy, so that later changes to the caller's buffer can't change the key (Python keys are immutable bytes).
  if (key instanceof Uint8Array) return new Uint8Array(key);
  throw new TypeError("authkey should be a byte string");
}

/** Python's repr() of a bytes object, e.g. b'ab\x00' or b"it's"; CPython puts it in handshake errors. */
export function pyBytesRepr(bytes: Uint8Array): string {
  // Python switches to double quotes only when that avoids escaping: a ' and no ".
  const quote = bytes.includes(0x27) && !bytes.includes(0x22) ? 0x22 : 0x27;
  let out = "b" + String.fromCharCode(quote);
  for (const c of bytes) {
    if (c === quote || c === 0x5c) out += "\\" + String.fromCharCode(c);
    else if (c === 0x09) out += "\\t";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c < 0x20 || c >= 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += String.fromCharCode(c);
  }
  return out + String.fromCharCode(quote);
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.byteLength >= prefix.byteLength && prefix.every((b, i) => bytes[i] === b);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && startsWith(a, b);
}

function hmac(pythonDigest: string, key: Uint8Array, message: Uint8Array): Uint8Array {
  const algorithm = ALLOWED_DIGESTS.get(pythonDigest);
  if (algorithm === undefined) throw new Error(`unexpected digest ${pythonDigest}`);
  return new Uint8Array(createHmac(algorithm, key).update(message).digest());
}

/**
 * CPython's _get_digest_name_and_payload: splits a challenge body or a response into its digest
 * name ("" = legacy raw MD5) and payload. The order of the tests matters for compatibility: the
 * length test comes first, so a 20-byte "{sha256}…" is legacy, as in CPython.
 */
function digestNameAndPayload(message: Uint8Array): { name: string; payload: Uint8Array } {
  if (message.byteLength === MD5ONLY_MESSAGE_LENGTH || message.byteLength === MD5_DIGEST_LENGTH) {
    return { name: "", payload: message };
  }
  if (message[0] === 0x7b /* { */) {
    // Python: message.find(b'}', 1, _MAX_DIGEST_LEN + 2), i.e. the first "}" at index 1..9.
    const end = Math.min(message.byteLength, MAX_DIGEST_NAME_LENGTH + 2);
    const curly = message.subarray(0, end).indexOf(0x7d /* } */, 1);
    if (curly > 0) {
      // One char per byte, so a non-ASCII name can't collide with an allowed one.
      const name = String.fromCharCode(...message.subarray(1, curly));
      if (ALLOWED_DIGESTS.has(name)) return { name, payload: message.subarray(curly + 1) };
    }
  }
  throw new AuthenticationError(
    "unsupported message length, missing digest prefix, or unsupported digest: " +
      `message=${pyBytesRepr(message)}`,
  );
}

/**
 * CPython's _create_response: the reply to a challenge body. Legacy (16/20-byte) bodies get a raw
 * HMAC-MD5; prefixed ones get "{name}" + HMAC-name over the whole body, prefix included.
 */
export function createResponse(key: Uint8Array, message: Uint8Array): Uint8Array {
  const { name } = digestNameAndPayload(message);
  if (name === "") return hmac("md5", key, message);
  return Buffer.concat([utf8(`{${name}}`), hmac(name, key, message)]);
}

/**
 * CPython's _verify_challenge: checks a peer's response to our challenge body `message`.
 * Any allowed digest is accepted whatever we advertised (the MAC covers our "{sha256}" prefix,
 * so the peer can't tamper with it); a raw 16-byte response means MD5.
 */
export function verifyChallenge(key: Uint8Array, message: Uint8Array, response: Uint8Array): void {
  let parsed: { name: string; payload: Uint8Array };
  try {
    parsed = digestNameAndPayload(response);
  } catch (error) {
    // What a peer without a key sends first is its first message, not a response.
    throw new AuthenticationError(`${(error as Error).message}${KEY_MISSING}`);
  }
  const name = parsed.name || "md5";
  let expected: Uint8Array;
  try {
    expected = hmac(name, key, message);
  } catch {
    // CPython's text when hashlib refuses the digest (e.g. MD5 under FIPS).
    throw new AuthenticationError(`response_digest='${name}' unsupported`);
  }
  const mac = parsed.payload;
  if (expected.byteLength !== mac.byteLength) {
    throw new AuthenticationError(`expected '${name}' of length ${expected.byteLength} got ${mac.byteLength}${KEY_MISSING}`);
  }
  // Constant time, so response timing doesn't leak how many leading bytes were right.
  if (!timingSafeEqual(expected, mac)) throw new AuthenticationError(`digest received was wrong${KEY_DIFFERS}`);
}

function requireKey(key: Uint8Array): void {
  // The type says Uint8Array, but plain-JS callers could pass anything; an undefined key must not
  // silently become "no key".
  if (!(key instanceof Uint8Array)) throw new TypeError("authkey should be a byte string");
}

function defaultRandom(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/**
 * Server half of one direction: send "#CHALLENGE#{sha256}" + 40 random bytes, check the reply,
 * then send #WELCOME#, or #FAILURE# and throw AuthenticationError.
 */
export async function deliverChallenge(
  ch: FrameChannel,
  key: Uint8Array,
  opts: HandshakeOptions = {},
): Promise<void> {
  requireKey(key);
  let random = (opts.random ?? defaultRandom)(CHALLENGE_RANDOM_LENGTH);
  if (random.byteLength !== CHALLENGE_RANDOM_LENGTH) {
    throw new RangeError(`random(${CHALLENGE_RANDOM_LENGTH}) returned ${random.byteLength} bytes`);
  }
  if (opts.lane) random = laneChallenge(key, random);
  // Legacy clients treat the whole thing, prefix included, as the challenge and answer raw HMAC-MD5.
  const message = Buffer.concat([utf8(`{${SERVER_DIGEST}}`), random]);
  await ch.sendBytes(Buffer.concat([CHALLENGE, message]));
  const response = await ch.recvBytes(MAX_HANDSHAKE_FRAME);
  try {
    verifyChallenge(key, message, response);
  } catch (err) {
    if (err instanceof AuthenticationError) {
      // Tell the peer, but report the authentication failure even if the peer has already gone
      // (CPython raises the BrokenPipeError then; Listener callers want AuthenticationError).
      try {
        await ch.sendBytes(FAILURE);
      } catch {
        // The peer is gone; the authentication failure is the error that matters.
      }
    }
    throw err;
  }
  await ch.sendBytes(WELCOME);
}

/** Client half of one direction: answer the peer's challenge and expect #WELCOME#. */
export async function answerChallenge(ch: FrameChannel, key: Uint8Array, opts: HandshakeOptions = {}): Promise<void> {
  requireKey(key);
  const frame = await ch.recvBytes(MAX_HANDSHAKE_FRAME);
  if (!startsWith(frame, CHALLENGE)) {
    throw new AuthenticationError(`Protocol error, expected challenge: message=${pyBytesRepr(frame)}`);
  }
  const message = frame.subarray(CHALLENGE.byteLength);
  // Even a legacy server sends 20 random bytes; anything shorter is too weak to answer.
  if (message.byteLength < MD5ONLY_MESSAGE_LENGTH) {
    throw new AuthenticationError(`challenge too short: ${message.byteLength} bytes`);
  }
  // The peer writes nothing more until it has our answer, so the lane is in place before its first notice.
  if (opts.lane && hasLaneTag(key, message)) opts.lane.peer();
  await ch.sendBytes(createResponse(key, message));
  const verdict = await ch.recvBytes(MAX_HANDSHAKE_FRAME);
  if (!bytesEqual(verdict, WELCOME)) throw new AuthenticationError(`digest sent was rejected${KEY_DIFFERS}`);
}

/**
 * The error for a message that could not be decoded when it is a Listener's challenge: a
 * connection made without an authkey to a Listener that wants one gets the challenge as its
 * first message (CPython then fails to unpickle it). Null when `body` is not a challenge.
 */
export function unexpectedChallenge(body: Uint8Array, cause: unknown): AuthenticationError | null {
  if (!startsWith(body, CHALLENGE)) return null;
  const error = new AuthenticationError(
    "received an authkey challenge: the Listener requires an authkey and this connection has none (pass Client(address, { authkey }))",
  );
  error.cause = cause;
  return error;
}

/** What Listener.accept() runs: challenge the client first, then answer its challenge. */
export async function serverHandshake(ch: FrameChannel, key: Uint8Array, opts?: HandshakeOptions): Promise<void> {
  await deliverChallenge(ch, key, opts);
  await answerChallenge(ch, key, opts);
}

/** What Client() runs: answer the server's challenge first, then challenge the server. */
export async function clientHandshake(ch: FrameChannel, key: Uint8Array, opts?: HandshakeOptions): Promise<void> {
  await answerChallenge(ch, key, opts);
  await deliverChallenge(ch, key, opts);
}
