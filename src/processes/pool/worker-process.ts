// The pool's side of one worker process: starts it with spawn(), sends it chunks, reads its
// hello and outcomes, and reports its exit once whatever it wrote before dying has been read.
import { EOFError, OSError } from "../../errors.ts";
import type { Connection } from "../../connection/connection.ts";
import { spawn, type SpawnOptions, type Spawned } from "../spawn.ts";
import type { Chunk } from "./chunk.ts";
import { decodeHello, remoteError, type Outcome, type Task } from "./protocol.ts";

/** How to start a worker: the command line and spawn()'s options. */
export interface Launch {
  cmd: string[];
  options: SpawnOptions;
}

/** What a worker tells the pool. */
export interface WorkerEvents {
  /** The module loaded; the worker serves. */
  ready(worker: WorkerProcess): void;
  /** The module did not load: the worker's chunk (if any) fails with `error`; the worker exits. */
  loadFailed(worker: WorkerProcess, error: Error): void;
  /** The worker answered its chunk. */
  answered(worker: WorkerProcess, chunk: Chunk, outcome: Outcome): void;
  /** The chunk's arguments could not be encoded: nothing was sent, the worker is free again. */
  unsendable(worker: WorkerProcess, chunk: Chunk, error: Error): void;
  /** The process ended. */
  exited(worker: WorkerProcess, exitCode: number | null, signalCode: string | null): void;
}

const noop = (): void => {};

export class WorkerProcess {
  readonly pid: number;
  /** The chunk it runs, if any. */
  chunk: Chunk | null = null;
  /** It said hello: its module loaded. */
  ready = false;
  /** The pool ended it on purpose (retired, aborted, terminated): not a crash. */
  ending = false;
  /** Items it has run (for maxTasksPerChild). */
  tasksDone = 0;
  /** Why its chunk fails if it dies now, when that is not its exit (a module error, garbage on the wire). */
  failure: Error | null = null;
  private readonly conn: Connection<Task | Outcome>;
  private readonly child: Spawned<unknown>["process"];
  private readonly reading: Promise<void>;

  constructor(launch: Launch, private readonly events: WorkerEvents) {
    const { process: child, conn } = spawn<Task | Outcome>(launch.cmd, launch.options as SpawnOptions<Task | Outcome>);
    this.child = child;
    this.conn = conn;
    this.pid = child.pid;
    this.reading = this.read();
    void this.watchExit();
  }

  /** Hand it a chunk; it answers through `answered`. */
  run(chunk: Chunk): void {
    this.chunk = chunk;
    chunk.state = "running";
    chunk.sentAt = performance.now();
    this.conn.send([chunk.name, chunk.star ? 1 : 0, chunk.items]).catch((error: unknown) => {
      // A connection error means the worker is gone: its exit reports that.
      if (error instanceof OSError || this.chunk !== chunk) return;
      this.chunk = null;
      this.events.unsendable(this, chunk, error as Error);
    });
  }

  /** Let it finish: closing its connection makes it exit. */
  retire(): void {
    this.ending = true;
    this.conn.close();
  }

  /** End it now (SIGKILL). */
  kill(): void {
    this.ending = true;
    this.child.kill("SIGKILL");
  }

  private async read(): Promise<void> {
    try {
      const hello = decodeHello(await this.conn.recvBytes());
      if ("error" in hello) {
        this.failure = remoteError(hello.error);
        this.events.loadFailed(this, this.failure);
        return;
      }
      this.ready = true;
      this.events.ready(this);
      for (;;) {
        const outcome = (await this.conn.recv()) as Outcome;
        const chunk = this.chunk;
        if (!chunk) throw new Error("mpconn pool: a worker answered a chunk it was not given");
        this.chunk = null;
        this.events.answered(this, chunk, outcome);
      }
    } catch (error) {
      // The connection ended or broke (EOF, ECONNRESET, a truncated message): the worker is
      // gone or going, and its exit says how.
      if (error instanceof EOFError || error instanceof OSError || this.conn.closed) return;
      // Anything else is a worker we cannot understand: its chunk fails with why, and it goes.
      this.failure = error as Error;
      this.kill();
    }
  }

  private async watchExit(): Promise<void> {
    await this.child.exited;
    // Read what the worker wrote before it died (an answer may be on its way), then stop reading.
    await Promise.race([this.reading, this.conn.poll(0).then(noop, noop)]);
    this.conn.close();
    await this.reading;
    this.events.exited(this, this.child.exitCode, this.child.signalCode === null ? null : String(this.child.signalCode));
  }
}
