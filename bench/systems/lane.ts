// The shared-memory lane on its own (src/lane), between two processes, without Connection:
// what the lane can do before it is wired in, so its ceiling shows next to the other systems.
// Notices travel on a socketpair (the child's descriptor 3) framed by test/fixtures/lane-end.ts,
// region descriptors by SCM_RIGHTS on a second one (descriptor 4). Default lane options; the
// variant "lane" or "socket" sends every message through the lane or the socket (threshold
// measurement, bench/lane-threshold.ts).
//   stream — awaited sendBytes, recvBytes;  into — awaited sendBytes, recvBytesInto one reused
//   buffer;  burst — every sendBytes of a phase fired without await, then one await.
import { EOFError } from "../../src/errors.ts";
import { closeFd, socketpair } from "../../src/os/libc.ts";
import { LaneEnd, scmDescriptors, socketWire } from "../../test/fixtures/lane-end.ts";
import { MemoryMeter, emitChild, emitResult, payload, phases, readArgs, timeStream, type Spec } from "./common.ts";

const { role, spec } = readArgs();
const meter = new MemoryMeter();
const ACK = new Uint8Array([1]);
const threshold = spec.variant === "lane" ? 1 : spec.variant === "socket" ? Number.MAX_SAFE_INTEGER : undefined;

if (role === "parent") await parent(spec);
else await child(spec);

async function open(data: number, fds: number): Promise<LaneEnd> {
  const end = new LaneEnd(scmDescriptors(fds), { threshold });
  end.attach(await socketWire(data, end));
  return end;
}

async function parent(spec: Spec): Promise<void> {
  if (!["stream", "into", "burst"].includes(spec.workload)) throw new Error(`lane: no ${spec.workload} workload`);
  const [data, theirData] = socketpair();
  const [fds, theirFds] = socketpair();
  const proc = Bun.spawn([process.execPath, import.meta.path, "child", JSON.stringify(spec)], {
    stdio: ["inherit", "inherit", "inherit", theirData, theirFds],
  });
  closeFd(theirData);
  closeFd(theirFds);
  const end = await open(data, fds);
  const msg = payload(spec.size);
  const reps = await timeStream(spec, meter, async (n) => {
    if (spec.workload === "burst") {
      const sent: Promise<void>[] = [];
      for (let i = 0; i < n; i++) sent.push(end.sendBytes(msg));
      await Promise.all(sent);
    } else for (let i = 0; i < n; i++) await end.sendBytes(msg);
    await end.recvBytes();
  });
  end.close();
  const code = await proc.exited;
  closeFd(fds);
  if (code !== 0) throw new Error(`lane child exited with ${code}`);
  emitResult(reps, meter.read());
}

async function child(spec: Spec): Promise<void> {
  const end = await open(3, 4);
  const into = spec.workload === "into" ? new Uint8Array(spec.size) : null;
  let received = 0;
  for (const [p, n] of phases(spec).entries()) {
    for (let i = 0; i < n; i++) {
      const size = into ? await end.recvBytesInto(into) : (await end.recvBytes()).byteLength;
      if (size !== spec.size) throw new Error(`lane child: got ${size} B, expected ${spec.size}`);
      received++;
    }
    if (p === 0) meter.mark();
    await end.sendBytes(ACK);
  }
  try {
    await end.recvBytes();
    throw new Error("lane child: unexpected message after the last phase");
  } catch (error) {
    if (!(error instanceof EOFError)) throw error;
  }
  emitChild(meter.read(), received);
  end.close();
}
