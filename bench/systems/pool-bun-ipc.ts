// A minimal pool on Bun's own IPC (Bun.spawn({ ipc }), process.send), for the pool benchmark:
// the same chunking and one-chunk-per-worker rule as mpconn's Pool, nothing else.
//   bun bench/systems/pool-bun-ipc.ts '<spec json>'
import type { Subprocess } from "bun";
import * as tasks from "./pool-tasks.ts";
import { bigInput, checkTiny, emitPool, readSpec, timeReps, tinyInput } from "./pool-common.ts";

type Task = [id: number, name: keyof typeof tasks, items: unknown[]];
type Answer = [id: number, values: unknown[]];

if (process.argv[2] === "child") {
  process.on("message", (message) => {
    const [id, name, items] = message as Task;
    const fn = tasks[name] as (arg: unknown) => unknown;
    process.send!([id, items.map((item) => fn(item))] satisfies Answer);
  });
  process.on("disconnect", () => process.exit(0));
} else {
  await main();
}

class IpcPool {
  private readonly workers: Subprocess[] = [];
  private readonly idle: Subprocess[] = [];
  private readonly queue: Task[] = [];
  private readonly waiting = new Map<number, (values: unknown[]) => void>();
  private nextId = 0;

  constructor(processes: number) {
    for (let i = 0; i < processes; i++) {
      const worker: Subprocess = Bun.spawn([process.execPath, import.meta.path, "child", "{}"], {
        stdio: ["ignore", "inherit", "inherit"],
        serialization: "advanced",
        ipc: (message) => this.answered(worker, message as Answer),
      });
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  /** Results of `name(item)` for each item, in order, chunk by chunk. */
  async map(name: Task[1], items: unknown[], chunksize: number): Promise<unknown[]> {
    const chunks: Promise<unknown[]>[] = [];
    for (let start = 0; start < items.length; start += chunksize) {
      const id = this.nextId++;
      chunks.push(new Promise((resolve) => this.waiting.set(id, resolve)));
      this.queue.push([id, name, items.slice(start, start + chunksize)]);
    }
    this.dispatch();
    return (await Promise.all(chunks)).flat();
  }

  close(): Promise<unknown> {
    for (const worker of this.workers) worker.disconnect();
    return Promise.all(this.workers.map((w) => w.exited));
  }

  private answered(worker: Subprocess, [id, values]: Answer): void {
    this.waiting.get(id)!(values);
    this.waiting.delete(id);
    this.idle.push(worker);
    this.dispatch();
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) this.idle.shift()!.send(this.queue.shift()!);
  }
}

async function main(): Promise<void> {
  const spec = readSpec();
  const pool = new IpcPool(spec.processes);
  const items = tinyInput(spec);
  const tinyMs = await timeReps(spec.tiny, async () => checkTiny(await pool.map("square", items, spec.tiny.chunksize), items.length));
  const spins = Array.from({ length: spec.cpu.count }, () => spec.cpu.ms);
  const cpuWorkMs: number[] = [];
  const cpuMs = await timeReps(spec.cpu, () => pool.map("spin", spins, spec.cpu.chunksize), cpuWorkMs);
  const big = bigInput(spec);
  const bigMs = await timeReps(spec.big, async () => {
    const [n] = await pool.map("length", [big], 1);
    if (n !== big.length) throw new Error("pool bench: wrong length");
  });
  await pool.close();
  emitPool({ tinyMs, cpuMs, cpuWorkMs, bigMs });
}
