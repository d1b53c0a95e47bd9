// Bun's built-in IPC: Bun.spawn({ ipc, serialization }) in the parent, process.send /
// process.on("message") in the child. variant: "advanced" (structured clone; bytes travel as
// Uint8Array) or "json" (bytes workloads send a string of `size` ASCII characters instead).
// Sends are not awaited (Bun's IPC has no backpressure signal: oven-sh/bun#30569).
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
const serialization = spec.variant === "json" ? "json" : "advanced";
const meter = new MemoryMeter();

/** The bytes of a bytes workload, in a form this serialization carries. */
function message(size: number): unknown {
  return serialization === "json" ? "x".repeat(size) : payload(size);
}
function sizeOf(value: unknown): number {
  return typeof value === "string" ? value.length : (value as Uint8Array).byteLength;
}

if (role === "parent") await parent(spec);
else child(spec);

async function parent(spec: Spec): Promise<void> {
  const inbox: unknown[] = [];
  let waiter: ((value: unknown) => void) | null = null;
  const proc = Bun.spawn([process.execPath, import.meta.path, "child", JSON.stringify(spec)], {
    stdio: ["inherit", "inherit", "inherit"],
    serialization,
    ipc(value) {
      if (waiter) {
        const w = waiter;
        waiter = null;
        w(value);
      } else inbox.push(value);
    },
  });
  const recv = (): Promise<unknown> =>
    inbox.length > 0 ? Promise.resolve(inbox.shift()) : new Promise((resolve) => (waiter = resolve));

  const objects = spec.workload === "objstream" || spec.workload === "objpingpong";
  const msg = objects ? null : message(spec.size);
  const obj = item(0);
  let reps: Rep[];
  if (spec.workload === "pingpong" || spec.workload === "objpingpong") {
    reps = await timeRoundTrips(spec, meter, async (i) => {
      if (objects) {
        obj.id = i;
        proc.send(obj);
        checkItem(await recv());
      } else {
        proc.send(msg);
        await recv();
      }
    });
  } else {
    reps = await timeStream(spec, meter, async (n) => {
      for (let i = 0; i < n; i++) {
        if (objects) {
          obj.id = i;
          proc.send(obj);
        } else proc.send(msg);
      }
      await recv();
    });
  }
  proc.disconnect();
  const code = await proc.exited;
  if (code !== 0) throw new Error(`bun-ipc child exited with ${code}`);
  emitResult(reps, meter.read());
}

function child(spec: Spec): void {
  let received = 0;
  const objects = spec.workload === "objstream" || spec.workload === "objpingpong";
  if (spec.workload === "pingpong" || spec.workload === "objpingpong") {
    const total = roundTrips(spec);
    process.on("message", (value) => {
      if (objects) checkItem(value);
      process.send!(value);
      if (++received > total) throw new Error("bun-ipc child: too many messages");
    });
  } else {
    const counts = phases(spec);
    let phase = 0;
    let i = 0;
    process.on("message", (value) => {
      if (objects) checkItem(value);
      else if (sizeOf(value) !== spec.size) throw new Error(`bun-ipc child: got ${sizeOf(value)} B, expected ${spec.size}`);
      received++;
      if (++i < counts[phase]!) return;
      if (phase === 0) meter.mark();
      process.send!(received);
      i = 0;
      phase++;
    });
  }
  process.on("disconnect", () => {
    emitChild(meter.read(), received);
    process.exit(0);
  });
}
