// The pool's engine: its worker processes, the queue of chunks waiting for one, and the pool's
// life (running → closed → workers gone; or terminated). A free worker takes the next chunk; a
// worker that dies fails its own chunk and is replaced; workers that keep failing to start are
// not (the module cannot load: the pool stops and fails what waits with the module's error).
import { OSError, type MpconnErrorCode } from "../../errors.ts";
import { ChunkQueue, type Chunk, type ChunkOwner, type Feeder, type Scheduler } from "./chunk.ts";
import { WorkerExitedError } from "./errors.ts";
import { DONE, remoteError, type Outcome } from "./protocol.ts";
import { WorkerProcess, type Launch, type WorkerEvents } from "./worker-process.ts";

/** Workers in a row that fail to start (module error, exit before hello) before the pool stops replacing them. */
export const START_FAILURE_LIMIT = 3;

export interface PoolStats {
  /** Worker processes alive. */
  processes: number;
  /** Workers running a task (or chunk). */
  busy: number;
  /** Tasks waiting for a worker. */
  queued: number;
  /** Tasks that resolved. */
  completed: number;
  /**
   * Tasks that rejected, for any reason (their error, abort, a worker's death, terminate, a failed
   * call's dropped items). Items an imap read ahead and dropped when its consumer closed it count nowhere.
   */
  failed: number;
  /** Workers started to replace others. */
  restarts: number;
}

export class Dispatcher implements Scheduler, WorkerEvents {
  state: "running" | "closed" | "terminated" = "running";
  /** Set when no worker can start: why (the module's error). */
  broken: Error | null = null;
  private readonly workers = new Set<WorkerProcess>();
  private idle: WorkerProcess[] = [];
  private readonly queue = new ChunkQueue();
  private readonly feeders = new Set<Feeder>();
  private completed = 0;
  private failed = 0;
  private restarts = 0;
  private startFailures = 0;
  private lastStartError: Error | null = null;
  private readonly joined: Promise<void>;
  private resolveJoined!: () => void;
  /** The workers keep this process alive: not while the pool is open and has nothing to do. */
  private alive = true;

  constructor(
    private readonly launch: Launch,
    readonly processes: number,
    private readonly maxTasksPerChild: number,
  ) {
    this.joined = new Promise((resolve) => (this.resolveJoined = resolve));
    try {
      for (let i = 0; i < processes; i++) this.startWorker();
    } catch (error) {
      // The constructor throws: leave no process behind.
      this.terminate();
      throw error;
    }
  }

  // ---- calls' side (Scheduler) ------------------------------------------------------------

  /** Why a new call is refused now, or null. */
  refusal(): Error | null {
    if (this.state !== "running") return poolError("pool is closed", "POOL_CLOSED");
    return this.broken;
  }

  submit(chunk: Chunk): Error | null {
    if (this.state === "terminated") return poolError("pool is terminated", "POOL_TERMINATED");
    if (this.broken) return this.broken;
    try {
      chunk.encoded = this.launch.codec.encode(chunk);
    } catch (error) {
      return error as Error;
    }
    this.queue.push(chunk);
    this.dispatch();
    return null;
  }

  cancel(owner: ChunkOwner, kill: boolean): void {
    for (const chunk of this.queue.remove((c) => c.owner === owner)) this.failed += chunk.size;
    for (const worker of this.workers) {
      for (const chunk of worker.held()) {
        if (chunk.owner !== owner || chunk.state !== "running") continue;
        chunk.state = "settled";
        this.failed += chunk.size;
        // A chunk whose answer is being read is done running: its worker may run another call's.
        if (kill && chunk === worker.chunk) this.stopWorker(worker);
      }
    }
    if (this.state === "closed") this.retireIfDrained();
    this.updateAlive();
  }

  drop(owner: ChunkOwner): void {
    this.queue.remove((c) => c.owner === owner);
    if (this.state === "closed") this.retireIfDrained();
    this.updateAlive();
  }

  addFeeder(feeder: Feeder): void {
    this.feeders.add(feeder);
    this.updateAlive();
  }

  removeFeeder(feeder: Feeder): void {
    this.feeders.delete(feeder);
    if (this.state === "closed") this.retireIfDrained();
    this.updateAlive();
  }

  // ---- the pool's life --------------------------------------------------------------------

  close(): void {
    if (this.state !== "running") return;
    this.state = "closed";
    this.retireIfDrained();
    this.updateAlive();
    this.checkJoined();
  }

  terminate(): void {
    if (this.state === "terminated") return;
    this.state = "terminated";
    const terminated = (): OSError => poolError("pool is terminated", "POOL_TERMINATED");
    for (const chunk of this.queue.remove(() => true)) this.fail(chunk, [], terminated());
    for (const worker of this.workers) {
      for (const chunk of worker.held()) if (chunk.state === "running") this.fail(chunk, [], terminated());
      worker.kill();
    }
    this.idle = [];
    for (const feeder of [...this.feeders]) feeder.stop(terminated());
    this.updateAlive();
    this.checkJoined();
  }

  join(): Promise<void> {
    if (this.state === "running") return Promise.reject(poolError("pool is still running", "POOL_RUNNING"));
    return this.joined;
  }

  stats(): PoolStats {
    let busy = 0;
    for (const worker of this.workers) if (worker.chunk) busy++;
    return {
      processes: this.workers.size,
      busy,
      queued: this.queue.items,
      completed: this.completed,
      failed: this.failed,
      restarts: this.restarts,
    };
  }

  // ---- workers' side (WorkerEvents) -------------------------------------------------------

  ready(): void {
    this.startFailures = 0;
  }

  loadFailed(worker: WorkerProcess): void {
    // It exits now; its chunk fails with the module's error then (worker.failure).
    this.idle = this.idle.filter((w) => w !== worker);
  }

  freed(worker: WorkerProcess, chunk: Chunk): void {
    worker.tasksDone += chunk.size;
    this.free(worker);
  }

  answered(_worker: WorkerProcess, chunk: Chunk, outcome: Outcome): void {
    if (chunk.state !== "running") return;
    if (outcome[0] === DONE) {
      chunk.state = "settled";
      this.completed += chunk.size;
      chunk.owner.done(chunk, outcome[1]);
    } else {
      this.fail(chunk, outcome[1], remoteError(outcome[2]));
    }
    this.updateAlive();
  }

  exited(worker: WorkerProcess, exitCode: number | null, signalCode: string | null): void {
    this.workers.delete(worker);
    this.idle = this.idle.filter((w) => w !== worker);
    const error = worker.failure ?? new WorkerExitedError(worker.pid, exitCode, signalCode);
    const startFailed = !worker.ready && !worker.ending;
    if (startFailed) {
      this.startFailures++;
      this.lastStartError = error;
    }
    for (const chunk of worker.held()) if (chunk.state === "running") this.fail(chunk, [], error);
    worker.chunk = null;
    worker.answering = null;

    const giveUp = startFailed && this.startFailures >= START_FAILURE_LIMIT;
    if (this.needsWorkers() && !giveUp && this.workers.size < this.processes) {
      try {
        this.startWorker();
        this.restarts++;
      } catch (spawnError) {
        // Could not even start a process (out of processes, memory): as a worker that failed to start.
        this.startFailures++;
        this.lastStartError = spawnError as Error;
      }
    }
    if (this.workers.size === 0 && this.needsWorkers()) this.breakDown(this.lastStartError ?? error);
    this.dispatch();
    this.checkJoined();
  }

  // ---- helpers ----------------------------------------------------------------------------

  private startWorker(): void {
    const worker = new WorkerProcess(this.launch, this);
    if (!this.alive) worker.keepAlive(false);
    this.workers.add(worker);
    // It may take a chunk before it said hello: the chunk waits in its connection meanwhile.
    this.idle.push(worker);
    this.dispatch();
  }

  /** Hand waiting chunks to free workers, first come first served. */
  private dispatch(): void {
    while (this.idle.length > 0) {
      let chunk = this.queue.shift();
      if (!chunk) break;
      const worker = this.idle.shift()!;
      const budget = this.maxTasksPerChild - worker.tasksDone;
      if (chunk.size > budget) {
        const rest = chunk;
        chunk = rest.splitOff(budget);
        // Both halves encoded fine as one, so they do as two.
        chunk.encoded = this.launch.codec.encode(chunk);
        rest.encoded = this.launch.codec.encode(rest);
        this.queue.unshift(rest);
      }
      worker.run(chunk);
    }
    if (this.state === "closed") this.retireIfDrained();
    this.updateAlive();
  }

  /** A worker finished its chunk: retire it (maxTasksPerChild) or give it the next. */
  private free(worker: WorkerProcess): void {
    if (this.state === "terminated" || worker.ending) return;
    if (worker.tasksDone >= this.maxTasksPerChild) worker.retire();
    else this.idle.push(worker);
    this.dispatch();
  }

  private fail(chunk: Chunk, values: unknown[], error: Error): void {
    chunk.state = "settled";
    this.completed += values.length;
    this.failed += chunk.size - values.length;
    chunk.owner.failed(chunk, values, error);
  }

  /** Abort of a running chunk: kill its worker (replaced once it has exited, as any other). */
  private stopWorker(worker: WorkerProcess): void {
    this.idle = this.idle.filter((w) => w !== worker);
    worker.kill();
  }

  /**
   * An open pool with nothing queued, running or still to come does not keep the process alive,
   * as in Python, where a script that forgets close() still ends (its workers then see their
   * connection close and exit). A closed or terminated pool does, until its workers are gone:
   * join() must be able to wait for them.
   */
  private updateAlive(): void {
    if (this.busy()) {
      if (!this.alive) this.setAlive(true);
    } else if (this.alive && !this.idleCheck) {
      // Let go a turn later, not at once: an awaited loop of apply() calls would otherwise flip
      // every worker's process and socket between ref and unref at each call.
      this.idleCheck = setImmediate(() => {
        this.idleCheck = null;
        if (!this.busy()) this.setAlive(false);
      });
    }
  }

  private idleCheck: ReturnType<typeof setImmediate> | null = null;

  private busy(): boolean {
    if (this.state !== "running" || !this.queue.empty || this.feeders.size > 0) return true;
    for (const worker of this.workers) if (worker.chunk !== null || worker.answering !== null) return true;
    return false;
  }

  private setAlive(on: boolean): void {
    this.alive = on;
    for (const worker of this.workers) worker.keepAlive(on);
  }

  /** Queued, running, or still to come from an input being read. */
  private needsWorkers(): boolean {
    if (this.state === "terminated") return false;
    return this.state === "running" || !this.queue.empty || this.feeders.size > 0;
  }

  private retireIfDrained(): void {
    if (!this.queue.empty || this.feeders.size > 0) return;
    for (const worker of this.idle) worker.retire();
    this.idle = [];
  }

  /** No worker can start: fail what waits, and every later call, with why. */
  private breakDown(error: Error): void {
    this.broken = error;
    for (const chunk of this.queue.remove(() => true)) this.fail(chunk, [], error);
    for (const feeder of [...this.feeders]) feeder.stop(error);
  }

  private checkJoined(): void {
    if (this.state !== "running" && this.workers.size === 0) this.resolveJoined();
  }
}

/** The pool's own OSErrors, with their stable codes. */
function poolError(message: string, code: MpconnErrorCode): OSError {
  return new OSError(message, code);
}
