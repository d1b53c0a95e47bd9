// mpconn, through its public API only: spawn() / parentConnection(), and
// `await conn.sendBytes()` / `await conn.recvBytes()` (variant "bytes") or
// `await conn.send()` / `await conn.recv()` / `for await` (variant = a serializer name).
// Variant "nolane": bytes with the shared-memory lane off (on by default between spawn() and
// parentConnection()).
// Workload "burst": a phase's sendBytes calls all fired without await, then one await;
// "into": the child receives with recvBytesInto into one reused buffer.
import { existsSync } from "node:fs";
import { EOFError, parentConnection, spawn, type Connection } from "../../src/index.ts";
import {
  MemoryMeter,
  checkItem,
  emitChild,
  emitResult,
  item,
  payload,
  phases,
  readArgs,
  roundTrips,
  timeRoundTrips,
  timeStream,
  type Rep,
  type Spec,
} from "./common.ts";

const { role, spec } = readArgs();
const variant = spec.variant ?? "bytes";
// "nolane": bytes with the shared-memory lane off (spawn() turns it on by default).
const sharedMemory = variant !== "nolane";
const serializer = variant === "bytes" || variant === "nolane" ? undefined : (variant as "structured" | "json" | "pickle");
if (serializer === "pickle") {
  // Registers "pickle" with the connection options (a no-op when index.ts already exports it).
  const module = new URL("../../src/serializers/pickle/index.ts", import.meta.url);
  if (existsSync(module)) await import(module.href);
}
const meter = new MemoryMeter();
const ACK = new Uint8Array([1]);

if (role === "parent") await parent(spec);
else await child(spec);

async function parent(spec: Spec): Promise<void> {
  const { process: proc, conn } = spawn([process.execPath, import.meta.path, "child", JSON.stringify(spec)], {
    serializer,
    sharedMemory,
    stdout: "inherit",
    stderr: "inherit",
  });
  let reps: Rep[];
  if (spec.workload === "pingpong" || spec.workload === "objpingpong") {
    const objects = spec.workload === "objpingpong";
    const msg = payload(spec.size);
    const obj = item(0);
    reps = await timeRoundTrips(spec, meter, async (i) => {
      if (objects) {
        obj.id = i;
        await conn.send(obj);
        checkItem(await conn.recv());
      } else {
        await conn.sendBytes(msg);
        await conn.recvBytes();
      }
    });
  } else {
    const objects = spec.workload === "objstream";
    const msg = payload(spec.size);
    const obj = item(0);
    reps = await timeStream(spec, meter, async (n) => {
      if (objects) {
        for (let i = 0; i < n; i++) {
          obj.id = i;
          await conn.send(obj);
        }
        await conn.recv();
      } else if (spec.workload === "burst") {
        const sent: Promise<void>[] = [];
        for (let i = 0; i < n; i++) sent.push(conn.sendBytes(msg));
        await Promise.all(sent);
        await conn.recvBytes();
      } else {
        for (let i = 0; i < n; i++) await conn.sendBytes(msg);
        await conn.recvBytes();
      }
    });
  }
  conn.close();
  const code = await proc.exited;
  if (code !== 0) throw new Error(`mpconn child exited with ${code}`);
  emitResult(reps, meter.read());
}

async function child(spec: Spec): Promise<void> {
  const conn: Connection = parentConnection({ serializer, sharedMemory });
  let received = 0;
  switch (spec.workload) {
    case "pingpong":
      for (let i = roundTrips(spec); i > 0; i--) {
        await conn.sendBytes(await conn.recvBytes());
        received++;
      }
      break;
    case "objpingpong":
      for await (const obj of conn) {
        await conn.send(obj);
        if (++received === roundTrips(spec)) break;
      }
      break;
    case "objstream": {
      const counts = phases(spec);
      let phase = 0;
      let i = 0;
      for await (const obj of conn) {
        checkItem(obj);
        received++;
        if (++i < counts[phase]!) continue;
        if (phase === 0) meter.mark();
        await conn.send(received);
        i = 0;
        if (++phase === counts.length) break;
      }
      break;
    }
    default: {
      // stream, rss, burst, into
      const into = spec.workload === "into" ? new Uint8Array(spec.size) : null;
      for (const [p, n] of phases(spec).entries()) {
        for (let i = 0; i < n; i++) {
          const size = into ? await conn.recvBytesInto(into) : (await conn.recvBytes()).byteLength;
          if (size !== spec.size) throw new Error(`mpconn child: got ${size} B, expected ${spec.size}`);
          received++;
        }
        if (p === 0) meter.mark();
        await conn.sendBytes(ACK);
      }
    }
  }
  // The parent closes when it is done: wait for that EOF.
  try {
    await conn.recvBytes();
    throw new Error("mpconn child: unexpected message after the last phase");
  } catch (error) {
    if (!(error instanceof EOFError)) throw error;
  }
  emitChild(meter.read(), received);
  conn.close();
}
