// Soak test: mixed traffic for N minutes, checking every message, printing memory over time.
//
//   bun bench/soak.ts [--minutes N]        (default 10; not part of CI)
//
// What runs at once, until the time is up:
//  - workers (spawn): 3 echo workers, objects (recv/send) or raw bytes (recvBytes/sendBytes),
//    fed through a window of 64 outstanding messages each and read back through wait():
//    small objects, rich ones (Map, Set, Date, BigInt, typed arrays), 64–512 KiB and 1–8 MiB
//    buffers. Each worker is restarted now and then, gracefully (it must echo everything first)
//    or by SIGKILL (what it had not echoed is abandoned, but what did come back must be an
//    unbroken prefix);
//  - a Pipe() inside this process, replaced every 2,000 messages, with bursts of un-awaited sends;
//  - Listener/Client: a unix Listener with an authkey and a TCP one, each with a client process
//    that connects, makes 1–200 round trips, sometimes closes abruptly, and reconnects; the
//    client processes are restarted when they end.
// Every 10 s: RSS, heap, and counters. Any lost, duplicated, reordered or corrupted message, or an
// unexpected error, is printed; the exit status is then 1.
import { Client, EOFError, Listener, OSError, Pipe, parentConnection, spawn, wait, type Connection } from "../src/index.ts";

const BUN = process.execPath;
const SELF = import.meta.path;
const MiB = 1 << 20;

// ---- shared: messages and their checks ---------------------------------------------------------

/** A buffer of `size` bytes stamped with `seq` (first and last 4 bytes) and filled with a pattern of it. */
function stamped(seq: number, size: number): Uint8Array {
  const bytes = new Uint8Array(Math.max(8, size)).fill((seq * 31 + 7) & 0xff);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, seq);
  view.setUint32(bytes.byteLength - 4, seq ^ 0x5a5a5a5a);
  return bytes;
}

/** Whether `bytes` is stamped(seq, size); samples the fill rather than comparing every byte. */
function checkStamped(bytes: Uint8Array, seq: number, size: number): string | null {
  const n = Math.max(8, size);
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== n) return `length ${bytes?.byteLength} instead of ${n}`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== seq) return `stamp ${view.getUint32(0)} instead of ${seq}`;
  if (view.getUint32(n - 4) !== (seq ^ 0x5a5a5a5a) >>> 0) return "tail stamp wrong";
  const fill = (seq * 31 + 7) & 0xff;
  for (let i = 4; i < n - 4; i += 997) if (bytes[i] !== fill) return `byte ${i} is ${bytes[i]}, not ${fill}`;
  return null;
}

type Kind = "small" | "rich" | "medium" | "large";
interface Expected {
  seq: number;
  kind: Kind;
  size: number;
  value?: unknown;
}

function pickKind(): Kind {
  const r = Math.random();
  return r < 0.8 ? "small" : r < 0.9 ? "rich" : r < 0.98 ? "medium" : "large";
}
function sizeOf(kind: Kind): number {
  if (kind === "medium") return 65536 + Math.floor(Math.random() * 448 * 1024);
  if (kind === "large") return MiB + Math.floor(Math.random() * 7 * MiB);
  return 0;
}
function objectFor(seq: number, kind: Kind, size: number): unknown {
  if (kind === "small") return { seq, kind, s: "x".repeat(seq % 200), n: seq * 1.5 };
  if (kind === "rich") {
    return {
      seq,
      kind,
      m: new Map<unknown, unknown>([["a", 1], [seq, [seq, { deep: true }]]]),
      set: new Set([seq, "s", null]),
      d: new Date(1_700_000_000_000 + seq),
      b: BigInt(seq) * 12345678901234567890n,
      f: Float64Array.from([seq, -0, Infinity]),
      u: undefined,
    };
  }
  return { seq, kind, bytes: stamped(seq, size) };
}

/** Compare an echoed object with what was sent; null if equal. */
function checkObject(got: unknown, e: Expected): string | null {
  const g = got as { seq?: number; kind?: string; bytes?: Uint8Array };
  if (g?.seq !== e.seq) return `seq ${g?.seq} instead of ${e.seq} (lost, duplicated or reordered)`;
  if (g.kind !== e.kind) return `kind ${g.kind} instead of ${e.kind}`;
  if (e.kind === "medium" || e.kind === "large") return checkStamped(g.bytes!, e.seq, e.size);
  return Bun.deepEquals(got, e.value, true) ? null : "content differs";
}

// ---- child modes ---------------------------------------------------------------------------------

async function echoWorker(mode: string): Promise<void> {
  const conn = parentConnection();
  if (mode === "objects") {
    for await (const msg of conn) {
      if ((msg as { exit?: boolean })?.exit) break;
      await conn.send(msg);
    }
  } else {
    for (;;) {
      let body: Uint8Array;
      try {
        body = await conn.recvBytes();
      } catch (error) {
        if (error instanceof EOFError) break;
        throw error;
      }
      if (body.byteLength === 0) break; // the parent's "exit"
      await conn.sendBytes(body);
    }
  }
  conn.close();
}

/** A client process: connect, 1–200 round trips, close (sometimes abruptly), again, until `deadline`. */
async function clientWorker(addressJson: string, authkey: string, deadline: number): Promise<void> {
  const address = JSON.parse(addressJson);
  const stats = { connections: 0, roundTrips: 0, abrupt: 0, mismatches: 0, errors: [] as string[] };
  while (Date.now() < deadline) {
    let conn: Connection;
    try {
      conn = await Client(address, authkey === "-" ? {} : { authkey });
    } catch (error) {
      stats.errors.push(`connect: ${(error as Error).message}`);
      await Bun.sleep(100);
      continue;
    }
    stats.connections++;
    const rounds = 1 + Math.floor(Math.random() * 200);
    try {
      for (let r = 0; r < rounds && Date.now() < deadline; r++) {
        const big = Math.random() < 0.02;
        const msg = big ? { r, bytes: stamped(r, 256 * 1024) } : { r, s: "y".repeat(r % 100) };
        await conn.send(msg);
        const back = (await conn.recv()) as { r: number; bytes?: Uint8Array; s?: string };
        if (back.r !== r || (big ? checkStamped(back.bytes!, r, 256 * 1024) !== null : back.s !== msg.s)) stats.mismatches++;
        stats.roundTrips++;
      }
      if (Math.random() < 0.1) {
        // Abrupt: a message in flight, then gone without reading the reply.
        stats.abrupt++;
        void conn.send({ r: rounds, s: "bye" }).catch(() => {});
      }
    } catch (error) {
      stats.errors.push((error as Error).message);
    }
    conn.close();
  }
  console.log(JSON.stringify(stats));
}

// ---- the parent ------------------------------------------------------------------------------------

const counters = {
  echoes: 0,
  echoBytes: 0,
  gracefulRestarts: 0,
  killedRestarts: 0,
  abandoned: 0,
  pipeMessages: 0,
  pipes: 0,
  connections: 0,
  roundTrips: 0,
  serverAbrupt: 0,
  clientRuns: 0,
};
const failures: string[] = [];
function fail(what: string): void {
  failures.push(what);
  console.log(`FAILURE: ${what}`);
}

interface Worker {
  id: number;
  mode: "objects" | "bytes";
  conn: Connection;
  process: ReturnType<typeof spawn>["process"];
  nextSeq: number;
  outstanding: Expected[];
  /** "graceful": no more sends, told to exit, must echo everything; "killed": SIGKILLed. */
  ending: null | "graceful" | "killed";
  restartAt: number;
}

const WINDOW = 64;

function startWorker(id: number): Worker {
  const mode = Math.random() < 0.5 ? "objects" : "bytes";
  const { process: child, conn } = spawn([BUN, SELF, "--worker", mode]);
  return { id, mode, conn, process: child, nextSeq: 0, outstanding: [], ending: null, restartAt: Date.now() + 10_000 + Math.random() * 20_000 };
}

async function feed(w: Worker): Promise<void> {
  while (w.ending === null && w.outstanding.length < WINDOW) {
    const seq = w.nextSeq++;
    const kind = pickKind();
    const size = sizeOf(kind);
    const e: Expected = { seq, kind, size };
    if (w.mode === "objects") {
      const value = objectFor(seq, kind, size);
      if (kind === "small" || kind === "rich") e.value = value;
      w.outstanding.push(e);
      await w.conn.send(value);
    } else {
      e.size = kind === "small" || kind === "rich" ? 8 + (seq % 300) : size;
      w.outstanding.push(e);
      await w.conn.sendBytes(stamped(seq, e.size));
    }
  }
}

/** One message back from `w`; false when its stream ended. */
async function collect(w: Worker): Promise<boolean> {
  let got: unknown;
  try {
    got = w.mode === "objects" ? await w.conn.recv() : await w.conn.recvBytes();
  } catch (error) {
    if (!(error instanceof EOFError || error instanceof OSError)) {
      fail(`worker ${w.id} (${w.mode}): unexpected ${(error as Error).name}: ${(error as Error).message}`);
      return false;
    }
    if (w.ending === "killed") counters.abandoned += w.outstanding.length;
    else if (w.outstanding.length > 0) fail(`worker ${w.id} (${w.mode}): stream ended with ${w.outstanding.length} messages not echoed (lost): ${error.message}`);
    else if (w.ending !== "graceful") fail(`worker ${w.id} (${w.mode}) ended by itself: ${error.message}`);
    return false;
  }
  const e = w.outstanding.shift();
  if (!e) {
    fail(`worker ${w.id}: an echo nobody sent (duplicated)`);
    return true;
  }
  const problem = w.mode === "objects" ? checkObject(got, e) : checkStamped(got as Uint8Array, e.seq, e.size);
  if (problem) fail(`worker ${w.id} (${w.mode}) message ${e.seq} (${e.kind}): ${problem}`);
  counters.echoes++;
  counters.echoBytes += e.size;
  return true;
}

async function runWorkers(deadline: number): Promise<void> {
  const workers = [0, 1, 2].map(startWorker);
  let nextId = 3;
  for (;;) {
    const now = Date.now();
    for (const w of workers) {
      if (w.ending === null && (now >= w.restartAt || now >= deadline)) {
        if (now < deadline && Math.random() < 0.4) {
          w.ending = "killed";
          w.process.kill("SIGKILL");
        } else {
          w.ending = "graceful";
          if (w.mode === "objects") await w.conn.send({ exit: true });
          else await w.conn.sendBytes(new Uint8Array(0));
        }
      }
    }
    await Promise.all(workers.map(feed));
    const ready = await wait(workers.map((w) => w.conn), 1);
    for (const conn of ready) {
      const at = workers.findIndex((w) => w.conn === conn);
      const w = workers[at]!;
      if (await collect(w)) continue;
      w.conn.close();
      await w.process.exited;
      if (w.ending === "killed") counters.killedRestarts++;
      else counters.gracefulRestarts++;
      if (Date.now() < deadline) workers[at] = startWorker(nextId++);
      else workers.splice(at, 1);
    }
    if (workers.length === 0) return;
  }
}

async function runPipes(deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const [a, b] = Pipe();
    counters.pipes++;
    let expected = 0;
    const consumer = (async () => {
      for await (const msg of b) {
        const m = msg as { i: number; s: string };
        if (m.i !== expected) fail(`pipe: message ${m.i} instead of ${expected}`);
        expected = m.i + 1;
        counters.pipeMessages++;
      }
    })();
    for (let i = 0; i < 2000; ) {
      if (Math.random() < 0.05) {
        // A burst of un-awaited sends; they must stay in order.
        const burst = Math.min(2000 - i, 500);
        let last: Promise<void> = Promise.resolve();
        for (let k = 0; k < burst; k++, i++) last = a.send({ i, s: "z".repeat(i % 50) });
        await last;
      } else {
        await a.send({ i, s: "z".repeat(i % 50) });
        i++;
      }
      if (i % 50 === 0) await Bun.sleep(1); // leave the CPU to the other traffic
    }
    a.close();
    await consumer;
    if (expected !== 2000) fail(`pipe: ${expected} of 2000 messages arrived`);
    b.close();
  }
}

async function serve(listener: Listener): Promise<void> {
  for await (const conn of listener) {
    counters.connections++;
    void (async () => {
      let expected = 0;
      try {
        for await (const msg of conn) {
          const m = msg as { r: number };
          if (m.r !== expected) fail(`listener ${JSON.stringify(listener.address)}: round ${m.r} instead of ${expected}`);
          expected = m.r + 1;
          await conn.send(msg);
          counters.roundTrips++;
        }
      } catch (error) {
        // A client that left abruptly: its last send fails (EPIPE) or reading sees a reset.
        if (error instanceof OSError) counters.serverAbrupt++;
        else fail(`listener session: ${(error as Error).name}: ${(error as Error).message}`);
      }
      conn.close();
    })();
  }
}

async function runClients(listener: Listener, authkey: string, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    // Each client process runs for up to 30 s, then a new one starts.
    const until = Math.min(deadline, Date.now() + 30_000);
    const child = Bun.spawn([BUN, SELF, "--worker", "clients", JSON.stringify(listener.address), authkey, String(until)], {
      stdout: "pipe",
      stderr: "inherit",
    });
    const out = await new Response(child.stdout).text();
    const code = await child.exited;
    counters.clientRuns++;
    if (code !== 0) {
      fail(`client process exited with ${code}`);
      continue;
    }
    const stats = JSON.parse(out) as { connections: number; roundTrips: number; abrupt: number; mismatches: number; errors: string[] };
    if (stats.mismatches > 0) fail(`client process saw ${stats.mismatches} mismatched echoes`);
    for (const e of stats.errors) fail(`client process: ${e}`);
  }
}

function report(started: number): void {
  const m = process.memoryUsage();
  const c = counters;
  const t = ((Date.now() - started) / 1000).toFixed(0).padStart(5);
  console.log(
    `[${t} s] rss ${(m.rss / MiB).toFixed(0)} MiB, heap ${(m.heapUsed / MiB).toFixed(0)} MiB | ` +
      `workers: ${c.echoes.toLocaleString("en")} echoes, ${(c.echoBytes / MiB).toFixed(0)} MiB, restarts ${c.gracefulRestarts} graceful / ${c.killedRestarts} killed (${c.abandoned} abandoned) | ` +
      `pipe: ${c.pipeMessages.toLocaleString("en")} msgs, ${c.pipes} pipes | ` +
      `listeners: ${c.connections.toLocaleString("en")} connections, ${c.roundTrips.toLocaleString("en")} round trips, ${c.serverAbrupt} abrupt, ${c.clientRuns} client runs | ` +
      `failures ${failures.length}`,
  );
}

async function main(): Promise<void> {
  const at = process.argv.indexOf("--minutes");
  const minutes = at > 0 ? Number(process.argv[at + 1]) : 10;
  if (!(minutes > 0)) throw new Error("--minutes needs a positive number");
  const started = Date.now();
  const deadline = started + minutes * 60_000;
  console.log(`soak: ${minutes} min of mixed traffic, pid ${process.pid}, Bun ${Bun.version}`);
  process.on("unhandledRejection", (reason) => fail(`unhandled rejection: ${String((reason as Error)?.stack ?? reason)}`));
  process.on("uncaughtException", (error) => fail(`uncaught exception: ${error.stack ?? error}`));
  report(started);
  const ticker = setInterval(() => report(started), 10_000);
  const unix = new Listener(undefined, { authkey: "soak" });
  const tcp = new Listener(["127.0.0.1", 0]);
  void serve(unix);
  void serve(tcp);
  const peak = { rss: 0 };
  const sampler = setInterval(() => (peak.rss = Math.max(peak.rss, process.memoryUsage().rss)), 1000);
  await Promise.all([
    runWorkers(deadline).catch((e: Error) => fail(`workers: ${e.stack}`)),
    runPipes(deadline).catch((e: Error) => fail(`pipes: ${e.stack}`)),
    runClients(unix, "soak", deadline).catch((e: Error) => fail(`unix clients: ${e.stack}`)),
    runClients(tcp, "-", deadline).catch((e: Error) => fail(`tcp clients: ${e.stack}`)),
  ]);
  clearInterval(ticker);
  clearInterval(sampler);
  unix.close();
  tcp.close();
  report(started);
  console.log(`soak: peak RSS ${(peak.rss / MiB).toFixed(0)} MiB; ${failures.length === 0 ? "OK: nothing lost, duplicated, reordered or corrupted" : `${failures.length} FAILURES`}`);
  process.exit(failures.length === 0 ? 0 : 1);
}

if (process.argv[2] === "--worker") {
  const mode = process.argv[3]!;
  if (mode === "clients") await clientWorker(process.argv[4]!, process.argv[5]!, Number(process.argv[6]));
  else await echoWorker(mode);
} else {
  await main();
}
