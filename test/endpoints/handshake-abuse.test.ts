// Abusing the authkey handshake: raw peers (Bun sockets that write exactly the bytes we choose)
// against a Listener with an authkey, one kind at a time and then all at once (50 abusive and
// 20 good clients concurrently, over unix and TCP). None may take the Listener down or delay
// the good clients past the handshake timeout; each abusive peer costs one AuthenticationError
// from accept() and is dropped. Then hostile servers against Client().
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { createHmac } from "node:crypto";
import { AuthenticationError, Client, Listener, type Address, type Connection } from "../../src/index.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const KEY = "abuse-test-key";
const HANDSHAKE_TIMEOUT = 0.5;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function frame(body: Uint8Array | string): Uint8Array {
  const bytes = typeof body === "string" ? utf8(body) : body;
  const out = new Uint8Array(4 + bytes.byteLength);
  new DataView(out.buffer).setInt32(0, bytes.byteLength);
  out.set(bytes, 4);
  return out;
}
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));
const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, "hex"));

/** The correct 3.12+ reply to a challenge frame: "{sha256}" + HMAC-SHA256(key, body after "#CHALLENGE#"). */
function answer(challenge: Uint8Array, key = KEY): Uint8Array {
  const message = challenge.subarray("#CHALLENGE#".length);
  return concat(utf8("{sha256}"), new Uint8Array(createHmac("sha256", key).update(message).digest()));
}

// ---- raw peers ----------------------------------------------------------------------------

interface RawSocket {
  write(data: Uint8Array): number;
  end(): void;
}

/** What an abusive client does: on connect, and on each complete frame the server sends it. */
interface Abuse {
  name: string;
  /** What accept()'s AuthenticationError says about it. */
  expect: RegExp;
  open?(s: RawSocket): void;
  frame?(s: RawSocket, body: Uint8Array, index: number): void;
}

const ABUSES: Abuse[] = [
  { name: "connects and closes at once", expect: /authkey handshake failed/, open: (s) => s.end() },
  { name: "stalls before answering", expect: /timed out after/ },
  { name: "stalls after two bytes of a header", expect: /timed out after/, open: (s) => s.write(hex("0000")) },
  { name: "answers with a 257-byte frame (limit 256)", expect: /bad message length/, frame: (s, _, i) => i === 0 && s.write(frame(new Uint8Array(257))) },
  {
    name: "answers with a header claiming 2^40 bytes",
    expect: /bad message length/,
    frame: (s, _, i) => i === 0 && s.write(concat(hex("ffffffff0000010000000000"), new Uint8Array(4096))),
  },
  { name: "answers with a negative length", expect: /bad message length/, frame: (s, _, i) => i === 0 && s.write(hex("80000000")) },
  { name: "sends 64 KiB of junk before the challenge", expect: /bad message length/, open: (s) => s.write(new Uint8Array(65536).fill(0x41)) },
  {
    name: "answers with an unknown digest prefix {sha512}",
    expect: /unsupported message length, missing digest prefix, or unsupported digest/,
    frame: (s, _, i) => i === 0 && s.write(frame(concat(utf8("{sha512}"), new Uint8Array(64)))),
  },
  {
    name: "echoes the challenge back",
    expect: /unsupported message length, missing digest prefix, or unsupported digest/,
    frame: (s, body, i) => i === 0 && s.write(frame(body)),
  },
  { name: "answers with the wrong key", expect: /digest received was wrong/, frame: (s, body, i) => i === 0 && s.write(frame(answer(body, "wrong"))) },
  {
    name: "answers right, then sends a challenge too short to answer",
    expect: /challenge too short: 5 bytes/,
    frame: (s, body, i) => (i === 0 ? s.write(frame(answer(body))) : i === 1 && s.write(frame("#CHALLENGE#12345"))),
  },
  {
    name: "answers right, then a wrong prefix instead of a challenge",
    expect: /Protocol error, expected challenge/,
    frame: (s, body, i) => (i === 0 ? s.write(frame(answer(body))) : i === 1 && s.write(frame("#CHALLENGX#" + "x".repeat(48)))),
  },
  {
    name: "answers right, then stalls instead of challenging",
    expect: /timed out after/,
    frame: (s, body, i) => i === 0 && s.write(frame(answer(body))),
  },
  {
    name: "answers right, challenges, then rejects the server's reply",
    expect: /digest sent was rejected/,
    frame: (s, body, i) => {
      if (i === 0) s.write(frame(answer(body)));
      else if (i === 1) s.write(frame(concat(utf8("#CHALLENGE#{sha256}"), new Uint8Array(40).fill(9))));
      else if (i === 2) s.write(frame("#FAILURE#"));
    },
  },
];

/** Connect a raw socket that plays `abuse`; `closed` resolves when the server drops it. */
async function abusiveClient(address: Address, abuse: Abuse): Promise<{ closed: Promise<void>; frames: Uint8Array[] }> {
  let buffered: Uint8Array = new Uint8Array(0);
  const frames: Uint8Array[] = [];
  let closed!: () => void;
  const whenClosed = new Promise<void>((resolve) => (closed = resolve));
  const target = typeof address === "string" ? { unix: address } : { hostname: address[0], port: address[1] };
  await Bun.connect({
    ...target,
    socket: {
      open(s) {
        abuse.open?.(s);
      },
      data(s, chunk) {
        buffered = concat(buffered, chunk);
        while (buffered.byteLength >= 4) {
          const length = new DataView(buffered.buffer, buffered.byteOffset).getInt32(0);
          if (buffered.byteLength < 4 + length) break;
          const body = buffered.slice(4, 4 + length);
          buffered = buffered.slice(4 + length);
          frames.push(body);
          abuse.frame?.(s, body, frames.length - 1);
        }
      },
      close: () => closed(),
      end: () => closed(),
      error: () => closed(),
    },
  } as Parameters<typeof Bun.connect>[0]);
  return { closed: whenClosed, frames };
}

/** A good client: authenticates with the key and round-trips one message. */
async function goodClient(address: Address, i: number): Promise<void> {
  const conn = await Client(address, { authkey: KEY });
  await conn.send({ hello: i });
  expect(await conn.recv()).toEqual({ hello: i, echoed: true });
  conn.close();
}

/**
 * Accept until `good` connections were served and `bad` handshakes failed. Accepted
 * connections echo one message.
 */
async function serve(listener: Listener, good: number, bad: number): Promise<{ failures: AuthenticationError[]; log: string[] }> {
  const failures: AuthenticationError[] = [];
  /** "good" or "timeout", in the order accept() settled. */
  const log: string[] = [];
  const echoes: Promise<void>[] = [];
  let served = 0;
  while (served < good || failures.length < bad) {
    let conn: Connection;
    try {
      conn = await listener.accept();
    } catch (error) {
      if (!(error instanceof AuthenticationError)) throw error;
      failures.push(error);
      if (/timed out/.test(error.message)) log.push("timeout");
      continue;
    }
    served++;
    log.push("good");
    echoes.push(
      (async () => {
        const msg = (await conn.recv()) as object;
        await conn.send({ ...msg, echoed: true });
        conn.close();
      })(),
    );
  }
  await Promise.all(echoes);
  return { failures, log };
}

/** `work`, or a failure after `seconds` (a hang is a failure, not a test timeout). */
async function bounded<R>(seconds: number, work: Promise<R>): Promise<R> {
  let timer: Timer | undefined;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no result within ${seconds} s`)), seconds * 1000)));
  try {
    return await Promise.race([work, hang]);
  } finally {
    clearTimeout(timer);
  }
}

const listeners: Listener[] = [];
afterAll(() => {
  for (const l of listeners) l.close();
});
function listen(tcp: boolean, handshakeTimeout = HANDSHAKE_TIMEOUT): Listener {
  const listener = new Listener(tcp ? ["127.0.0.1", 0] : undefined, { authkey: KEY, handshakeTimeout });
  listeners.push(listener);
  return listener;
}

// ---- one kind at a time -----------------------------------------------------------------------

describe("each abuse, next to a good client", () => {
  for (const abuse of ABUSES) {
    test(abuse.name, async () => {
      const listener = listen(false);
      const [{ failures }, raw] = await bounded(
        10,
        Promise.all([serve(listener, 1, 1), abusiveClient(listener.address, abuse), goodClient(listener.address, 0)]),
      );
      expect(failures).toHaveLength(1);
      expect(failures[0]!.message).toMatch(abuse.expect);
      // The listener dropped the abusive peer.
      await bounded(5, raw.closed);
      listener.close();
    });
  }
});

// ---- all at once --------------------------------------------------------------------------------

for (const tcp of [false, true]) {
  test(`50 abusive + 20 good clients at once (${tcp ? "TCP" : "unix"}): every good client served, every abuser dropped`, async () => {
    // Stallers are dropped after 2 s; the good clients must not wait for that.
    const listener = listen(tcp, 2);
    const started = performance.now();
    const abusers = Array.from({ length: 50 }, (_, i) => ABUSES[i % ABUSES.length]!);
    const [{ failures, log }, raws] = await bounded(
      30,
      Promise.all([
        serve(listener, 20, abusers.length),
        Promise.all(abusers.map((abuse) => abusiveClient(listener.address, abuse))),
        Promise.all(Array.from({ length: 20 }, (_, i) => goodClient(listener.address, i))),
      ]),
    );
    const elapsed = (performance.now() - started) / 1000;
    expect(failures).toHaveLength(abusers.length);
    // Served while the stallers were still stalling: all 20 good ones before the first timeout.
    expect(log.indexOf("timeout")).toBeGreaterThan(log.lastIndexOf("good"));
    // Each kind failed for its own reason (the counts match the mix).
    for (const abuse of ABUSES) {
      const expected = abusers.filter((a) => a === abuse).length;
      const matching = failures.filter((f) => abuse.expect.test(f.message)).length;
      expect(matching).toBeGreaterThanOrEqual(expected);
    }
    await bounded(5, Promise.all(raws.map((r) => r.closed)));
    console.log(`handshake-abuse.test: ${tcp ? "TCP" : "unix"} storm of 70 clients settled in ${elapsed.toFixed(2)} s`);
    // Still serving afterwards.
    await bounded(10, Promise.all([serve(listener, 1, 0), goodClient(listener.address, 99)]));
    listener.close();
  });
}

// ---- hostile servers against Client() ---------------------------------------------------------

describe("Client() against a hostile server: AuthenticationError, never a hang", () => {
  const servers: Array<{ name: string; expect: RegExp; open?(s: RawSocket): void }> = [
    { name: "closes at once", expect: /authkey handshake failed/, open: (s) => s.end() },
    { name: "never speaks", expect: /timed out after/ },
    { name: "sends a challenge frame claiming 2^40 bytes", expect: /bad message length/, open: (s) => s.write(hex("ffffffff0000010000000000")) },
    { name: "sends a 300-byte challenge", expect: /bad message length/, open: (s) => s.write(frame(concat(utf8("#CHALLENGE#"), new Uint8Array(289)))) },
    { name: "sends #WELCOME# instead of a challenge", expect: /Protocol error, expected challenge/, open: (s) => s.write(frame("#WELCOME#")) },
    { name: "sends half a challenge, then stalls", expect: /timed out after/, open: (s) => s.write(frame(concat(utf8("#CHALLENGE#{sha256}"), new Uint8Array(40))).subarray(0, 30)) },
  ];
  for (const server of servers) {
    test(server.name, async () => {
      const listening = Bun.listen({
        hostname: "127.0.0.1",
        port: 0,
        socket: { open: (s) => server.open?.(s), data() {} },
      });
      try {
        const error = await bounded(10, Client(["127.0.0.1", listening.port], { authkey: KEY, handshakeTimeout: HANDSHAKE_TIMEOUT }).then(
          () => new Error("authenticated a hostile server"),
          (e: Error) => e,
        ));
        expect(error).toBeInstanceOf(AuthenticationError);
        expect(error.message).toMatch(server.expect);
      } finally {
        listening.stop(true);
      }
    });
  }
});
