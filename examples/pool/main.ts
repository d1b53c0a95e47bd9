// mpconn's Pool in a few lines: run with `bun examples/pool/main.ts`.
import { Pool, RemoteError } from "../../src/index.ts";

await using pool = new Pool<typeof import("./tasks.ts")>(new URL("./tasks.ts", import.meta.url), { processes: 4 });

console.log("apply:", await pool.apply("square", [7]));
console.log("map:", await pool.map("square", [1, 2, 3, 4, 5]));
console.log("starmap:", await pool.starmap("divide", [[1, 2], [9, 3]]));

// CPU-bound work spread over the workers.
const started = performance.now();
const counts = await pool.map("countPrimes", Array.from({ length: 16 }, () => 200_000));
console.log(`countPrimes × 16: ${counts[0]} primes each, ${(performance.now() - started).toFixed(0)} ms on 4 processes`);

// Lazily over an endless input: only a few chunks are read ahead.
function* naturals(): Generator<number> {
  for (let n = 0; ; n++) yield n;
}
for await (const sq of pool.imap("square", naturals())) {
  if (sq > 100) break;
}

// As they finish.
for await (const line of pool.imapUnordered("slowEcho", ["a", "b", "c"])) console.log("imapUnordered:", line);

// A task that throws rejects with RemoteError; the worker serves on.
try {
  await pool.apply("divide", [1, 0]);
} catch (error) {
  if (!(error instanceof RemoteError)) throw error;
  console.log(`RemoteError: ${error.name}: ${error.message}`);
}

console.log("stats:", pool.stats());
