// mpconn's Pool in the pool benchmark; also the 16 MiB argument as plain sendBytes on a
// spawn() connection, the speed a pool argument should travel at.
//   bun bench/systems/pool-mpconn.ts '<spec json>'
import { Pool, spawn } from "../../src/index.ts";
import { bigInput, checkTiny, emitPool, readSpec, timeReps, tinyInput } from "./pool-common.ts";

if (process.argv[2] === "child") {
  // The sendBytes baseline's child: answers each message with its length.
  const { parentConnection } = await import("../../src/index.ts");
  const conn = parentConnection();
  for (;;) {
    let body: Uint8Array;
    try {
      body = await conn.recvBytes();
    } catch {
      break;
    }
    await conn.send(body.byteLength / 8);
  }
  process.exit(0);
}

const spec = readSpec();
const pool = new Pool<typeof import("./pool-tasks.ts")>(new URL("./pool-tasks.ts", import.meta.url), { processes: spec.processes });
const items = tinyInput(spec);
const tinyMs = await timeReps(spec.tiny, async () => checkTiny(await pool.map("square", items, { chunksize: spec.tiny.chunksize }), items.length));
const spins = Array.from({ length: spec.cpu.count }, () => spec.cpu.ms);
const cpuWorkMs: number[] = [];
const cpuMs = await timeReps(spec.cpu, () => pool.map("spin", spins, { chunksize: spec.cpu.chunksize }), cpuWorkMs);
const big = bigInput(spec);
const bigMs = await timeReps(spec.big, async () => {
  if ((await pool.apply("length", [big])) !== big.length) throw new Error("pool bench: wrong length");
});
pool.close();
await pool.join();

const { process: child, conn } = spawn([process.execPath, import.meta.path, "child", "{}"]);
const bigBytesMs = await timeReps(spec.big, async () => {
  await conn.sendBytes(big);
  if ((await conn.recv()) !== big.length) throw new Error("pool bench: wrong length");
});
conn.close();
await child.exited;
emitPool({ tinyMs, cpuMs, cpuWorkMs, bigMs, bigBytesMs });
