// Load: 500 concurrent authenticated clients (4 child processes × 125) × 100 round trips on one
// Listener; and 8 workers × 100,000 messages gathered through wait() in the parent. Nothing may
// be lost, duplicated or reordered: every message carries its sender and sequence number, and
// each worker's running hash is checked against the messages we received. Rates are printed.
import { afterAll, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EOFError, Listener, spawn, wait, type Connection } from "../../src/index.ts";
import { bun } from "../fixtures/run.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const scratch = mkdtempSync(join(tmpdir(), "mpconn-load-"));
const INDEX = JSON.stringify(join(import.meta.dir, "..", "..", "src", "index.ts"));
const children: Array<{ kill(signal?: number | NodeJS.Signals): void }> = [];
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
});

function script(name: string, code: string): string {
  const path = join(scratch, name);
  writeFileSync(path, code.replaceAll('"mpconn"', INDEX));
  return path;
}

/** FNV-1a over 32-bit words: the running hash both sides compute. */
function fnv(hash: number, word: number): number {
  return Math.imul(hash ^ word, 16777619) >>> 0;
}
const FNV = `const fnv = ${fnv.toString()};`;

// ---- many clients on one Listener ------------------------------------------------------------

// argv: address (JSON), authkey, clients, rounds, process number. Opens the clients at once;
// each makes `rounds` round trips, checking every echo. Prints { roundTrips, mismatches }.
const CLIENTS = script(
  "clients.ts",
  `import { Client } from "mpconn";
const [address, authkey, clients, rounds, proc] = [JSON.parse(process.argv[2]), process.argv[3], ...process.argv.slice(4).map(Number)];
let roundTrips = 0;
let mismatches = 0;
await Promise.all(
  Array.from({ length: clients }, async (_, c) => {
    const conn = await Client(address, { authkey });
    for (let r = 0; r < rounds; r++) {
      const msg = { proc, c, r, data: "x".repeat(r % 64) };
      await conn.send(msg);
      const back = await conn.recv();
      if (back.proc !== proc || back.c !== c || back.r !== r || back.data !== msg.data) mismatches++;
      roundTrips++;
    }
    conn.close();
  }),
);
console.log(JSON.stringify({ roundTrips, mismatches }));
`,
);

test("500 concurrent clients (4 processes × 125) × 100 round trips on one Listener with an authkey", async () => {
  const PROCESSES = 4;
  const CLIENTS_EACH = 125;
  const ROUNDS = 100;
  using listener = new Listener(undefined, { authkey: "load" });
  let accepted = 0;
  let echoed = 0;
  const sessions: Promise<void>[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      accepted++;
      sessions.push(
        (async () => {
          // Per connection, the messages must come in order r = 0, 1, 2, …
          let expected = 0;
          for await (const msg of conn as Connection<{ r: number }>) {
            if (msg.r !== expected++) throw new Error(`connection ${accepted}: got r=${msg.r}, expected ${expected - 1}`);
            await conn.send(msg);
            echoed++;
          }
          conn.close();
        })(),
      );
      if (accepted === PROCESSES * CLIENTS_EACH) return;
    }
  })();
  const started = performance.now();
  const procs = Array.from({ length: PROCESSES }, (_, p) => {
    const child = Bun.spawn([bun, CLIENTS, JSON.stringify(listener.address), "load", String(CLIENTS_EACH), String(ROUNDS), String(p)], {
      stdout: "pipe",
      stderr: "inherit",
    });
    children.push(child);
    return child;
  });
  const reports = await Promise.all(
    procs.map(async (child) => {
      const out = await new Response(child.stdout).text();
      expect(await child.exited).toBe(0);
      return JSON.parse(out) as { roundTrips: number; mismatches: number };
    }),
  );
  await serving;
  await Promise.all(sessions);
  const seconds = (performance.now() - started) / 1000;
  const total = PROCESSES * CLIENTS_EACH * ROUNDS;
  console.log(
    `load.test: ${accepted} clients, ${total.toLocaleString("en")} round trips in ${seconds.toFixed(2)} s = ` +
      `${Math.round(total / seconds).toLocaleString("en")} round trips/s (handshakes and process start included)`,
  );
  expect(accepted).toBe(PROCESSES * CLIENTS_EACH);
  expect(reports).toEqual(Array(PROCESSES).fill({ roundTrips: CLIENTS_EACH * ROUNDS, mismatches: 0 }));
  expect(echoed).toBe(total);
}, 120_000);

// ---- many messages through wait() ----------------------------------------------------------------

// argv: worker number, messages. Sends [worker, seq, value] for seq = 0, 1, …, then
// ["done", worker, count, hash] over the values; then closes.
const WORKER = script(
  "worker.ts",
  `import { parentConnection } from "mpconn";
${FNV}
const conn = parentConnection();
const [id, count] = process.argv.slice(2).map(Number);
let hash = 0x811c9dc5;
for (let seq = 0; seq < count; seq++) {
  const value = Math.imul(seq + 1, 2654435761 + id) >>> 0;
  hash = fnv(hash, value);
  await conn.send([id, seq, value]);
}
await conn.send(["done", id, count, hash]);
conn.close();
`,
);

test("8 workers × 100,000 messages through wait(): none lost, duplicated or reordered", async () => {
  const WORKERS = 8;
  const MESSAGES = 100_000;
  const started = performance.now();
  const workers = Array.from({ length: WORKERS }, (_, i) => {
    const spawned = spawn<unknown[]>([bun, WORKER, String(i), String(MESSAGES)]);
    children.push(spawned.process);
    return spawned;
  });
  const next = new Array<number>(WORKERS).fill(0);
  const hashes = new Array<number>(WORKERS).fill(0x811c9dc5);
  const done: Array<unknown[] | null> = new Array(WORKERS).fill(null);
  let live = workers.map((w) => w.conn);
  let waits = 0;
  let received = 0;
  while (live.length > 0) {
    const ready = await wait(live);
    waits++;
    // Python's idiom: one recv() per ready connection, then wait() again.
    for (const conn of ready) {
      let msg: unknown[];
      try {
        msg = await conn.recv();
      } catch (error) {
        if (!(error instanceof EOFError)) throw error;
        live = live.filter((c) => c !== conn);
        conn.close();
        continue;
      }
      if (msg[0] === "done") {
        done[msg[1] as number] = msg;
        continue;
      }
      const [id, seq, value] = msg as [number, number, number];
      if (done[id] !== null) throw new Error(`worker ${id}: a message after its last`);
      if (seq !== next[id]) throw new Error(`worker ${id}: got seq ${seq}, expected ${next[id]} (lost, duplicated or reordered)`);
      next[id]!++;
      hashes[id] = fnv(hashes[id]!, value);
      received++;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `load.test: ${received.toLocaleString("en")} messages from ${WORKERS} workers through ${waits.toLocaleString("en")} wait() calls in ` +
      `${seconds.toFixed(2)} s = ${Math.round(received / seconds).toLocaleString("en")} messages/s (process start included)`,
  );
  expect(next).toEqual(Array(WORKERS).fill(MESSAGES));
  expect(done).toEqual(hashes.map((hash, id) => ["done", id, MESSAGES, hash]));
  for (const w of workers) expect(await w.process.exited).toBe(0);
}, 120_000);
