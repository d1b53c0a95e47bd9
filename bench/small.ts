// Per-message CPU of the 64 B path, in one process, with the socket and the other process taken
// out: what the receive and send sides cost in JavaScript, step by step, beside the same work
// done by hand (the raw Bun system's framing). Minimum over repetitions (the machine is shared;
// the minimum is the run least disturbed). What this explains is in docs/internals.md, "Small
// messages: where the time goes".
//   bun bench/small.ts [size]
import { Pipe, type Connection } from "../src/index.ts";
import { Outbox } from "../src/messages/outbox.ts";
import { FrameBatch } from "../src/frames/encoder.ts";

const SIZE = Number(process.argv[2] ?? 64);
/** Bun hands the 64 B stream over in chunks of ~220 KiB (measured): as many frames per chunk here. */
const PER = Math.max(1, Math.floor((220 * 1024) / (SIZE + 4)));
const CHUNKS = Math.max(8, Math.round(1_000_000 / PER));
const N = PER * CHUNKS;
const REPS = 11;

function chunk(): Uint8Array {
  const out = new Uint8Array(PER * (SIZE + 4));
  const view = new DataView(out.buffer);
  for (let i = 0; i < PER; i++) view.setUint32(i * (SIZE + 4), SIZE);
  return out;
}
const template = chunk();
/** A fresh copy of the chunk, as Bun hands every data() callback a fresh buffer (the copy is timed on both sides). */
const fresh = (): Uint8Array => template.slice();

const best = new Map<string, number>();
function record(name: string, start: number): void {
  const ns = (Bun.nanoseconds() - start) / N;
  best.set(name, Math.min(best.get(name) ?? Infinity, ns));
}

/** What the connection's socket would call with a received chunk (kept off the public surface). */
const feed = (conn: Connection): ((chunk: Uint8Array) => void) => {
  const link = (conn as unknown as { link: { onData(chunk: Uint8Array): void } }).link;
  return (c) => link.onData(c);
};

let seen = 0;
async function receiving(conn: Connection): Promise<void> {
  const push = feed(conn);
  let start = Bun.nanoseconds();
  for (let c = 0; c < CHUNKS; c++) {
    push(fresh());
    for (let i = 0; i < PER; i++) seen += (await conn.recvBytes()).byteLength;
  }
  record("recv: await conn.recvBytes()", start);
  start = Bun.nanoseconds();
  for (let c = 0; c < CHUNKS; c++) {
    push(fresh());
    for (let i = 0; i < PER; i++) void conn.recvBytes();
  }
  record("recv: conn.recvBytes(), not awaited", start);
}

/** The raw system's receive: one view per frame, handed to a callback. */
function rawReceiving(): void {
  const start = Bun.nanoseconds();
  const onMessage = (body: Uint8Array): void => void (seen += body.byteLength);
  for (let c = 0; c < CHUNKS; c++) {
    const data = fresh();
    const end = data.byteLength;
    for (let at = 0; at < end; ) {
      const size = ((data[at]! << 24) | (data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!) >>> 0;
      at += 4;
      onMessage(data.subarray(at, at + size));
      at += size;
    }
  }
  record("recv: raw (view + callback)", start);
}

async function sending(conn: Connection): Promise<void> {
  const msg = new Uint8Array(SIZE).fill(7);
  let start = Bun.nanoseconds();
  for (let i = 0; i < N; i++) await conn.sendBytes(msg);
  record("send: await conn.sendBytes()", start);
  start = Bun.nanoseconds();
  for (let i = 0; i < N; i++) void conn.sendBytes(msg);
  record("send: conn.sendBytes(), not awaited", start);
  const batch = new FrameBatch();
  start = Bun.nanoseconds();
  for (let i = 0; i < N; i++) {
    if (!batch.add(msg)) {
      batch.seal();
      batch.clear();
      batch.add(msg);
    }
  }
  record("send: FrameBatch.add()", start);
  batch.release();
}

/** The raw system's send: a 4-byte header by hand and the body copied, into one reused buffer. */
function rawSending(): void {
  const msg = new Uint8Array(SIZE).fill(7);
  const out = new Uint8Array(256 * 1024);
  let used = 0;
  const start = Bun.nanoseconds();
  for (let i = 0; i < N; i++) {
    const size = msg.byteLength;
    if (used + 4 + size > out.byteLength) used = 0;
    out[used] = size >>> 24;
    out[used + 1] = size >>> 16;
    out[used + 2] = size >>> 8;
    out[used + 3] = size;
    out.set(msg, used + 4);
    used += 4 + size;
  }
  record("send: raw (header + set)", start);
}

async function awaiting(): Promise<void> {
  const resolved = Promise.resolve();
  let start = Bun.nanoseconds();
  for (let i = 0; i < N; i++) await resolved;
  record("await of a resolved promise", start);
  const value = new Uint8Array(1);
  start = Bun.nanoseconds();
  for (let i = 0; i < N; i++) seen += (await Promise.resolve(value)).byteLength;
  record("await Promise.resolve(x)", start);
}

async function main(): Promise<void> {
  // The spawn() ↔ parentConnection() pair the benchmark measures has the shared-memory lane on.
  const [a, b] = Pipe(true, { sharedMemory: true });
  await b.poll(0);
  await a.sendBytes(new Uint8Array(1));
  await b.recvBytes();
  // Writes go nowhere: the kernel and the peer are not what this measures.
  (a as unknown as { outbox: Outbox }).outbox = new Outbox({ write: (_data, _offset, length) => length }, () => -1);
  for (let r = 0; r < REPS; r++) {
    await receiving(b);
    rawReceiving();
    await sending(a);
    rawSending();
    await awaiting();
    await Bun.sleep(0);
  }
  a.close();
  b.close();
  console.log(`${SIZE} B messages, ${PER} per chunk, ${N} per repetition; ns per message, best of ${REPS}`);
  for (const [name, ns] of best) console.log(`  ${name.padEnd(40)} ${ns.toFixed(1).padStart(7)}`);
  if (seen === 0) console.log("(nothing seen)");
}

await main();
