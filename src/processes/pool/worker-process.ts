// The pool's side of one worker process: starts it with spawn(), sends it chunks, reads its
// hello and outcomes, and reports its exit once whatever it wrote before dying has been read.
import { EOFError, OSError } from "../../errors.ts";
import { keepAlive, type Connection } from "../../connection/connection.ts";
import { spawn, type SpawnOptions, type Spawned } from "../spawn.ts";
import type { Chunk } from "./chunk.ts";
import { receiveParts, sendParts } from "./large-arrays.ts";
import { decodeHello, outcomeHoles, remoteError, type Outcome } from "./protocol.ts";
import type { TaskCodec } from "./task-codec.ts";

/** How to start a worker: the command line, spawn()'s options, and the messages' codec. */
export interface Launch {
  cmd: string[];
  options: SpawnOptions;
  codec: TaskCodec;
}

/** What a worker tells the pool. */
export interface WorkerEvents {
  /** The module loaded; the worker serves. */
  ready(worker: WorkerProcess): void;
  /** The module did not load: the worker's chunk (if any) fails with `error`; the worker exits. */
  loadFailed(worker: WorkerProcess, error: Error): void;
  /** The worker answered `chunk` and is free: give it the next one (its answer is decoded meanwhile). */
  freed(worker: WorkerProcess, chunk: Chunk): void;
  /** The outcome of `chunk`. */
  answered(worker: WorkerProcess, chunk: Chunk, outcome: Outcome): void;
  /** The process ended. */
  exited(worker: WorkerProcess, exitCode: number | null, signalCode: string | null): void;
}

const noop = (): void => {};

export class WorkerProcess {
  readonly pid: number;
  /** The chunk it runs, if any. */
  chunk: Chunk | null = null;
  /** The chunk whose answer is being decoded (the worker may already run the next). */
  answering: Chunk | null = null;
  /** It said hello: its module loaded. */
  ready = false;
  /** The pool ended it on purpose (retired, aborted, terminated): not a crash. */
  ending = false;
  /** Items it was given (for maxTasksPerChild). */
  tasksDone = 0;
  /** Why its chunk fails if it dies now, when that is not its exit (a module error, garbage on the wire). */
  failure: Error | null = null;
  private readonly conn: Connection<unknown>;
  private readonly child: Spawned<unknown>["process"];
  private readonly codec: TaskCodec;
  private readonly reading: Promise<void>;
  private closeAfterAnswer = false;

  constructor(launch: Launch, private readonly events: WorkerEvents) {
    this.codec = launch.codec;
    const { process: child, conn } = spawn(launch.cmd, launch.options);
    this.child = child;
    this.conn = conn;
    this.pid = child.pid;
    this.reading = this.read();
    void this.watchExit();
  }

  /** The chunks it holds: the one it runs and the one whose answer is being read. */
  held(): Chunk[] {
    const held: Chunk[] = [];
    if (this.chunk) held.push(this.chunk);
    if (this.answering) held.push(this.answering);
    return held;
  }

  /** Hand it a chunk (encoded when it was queued); it answers through `freed` and `answered`. */
  run(chunk: Chunk): void {
    this.chunk = chunk;
    chunk.state = "running";
    chunk.sentAt = performance.now();
    const { message, parts } = chunk.encoded!;
    // A failed send means the worker is gone: its exit reports that, and fails the chunk.
    this.conn.sendBytes(message).catch(noop);
    if (parts) sendParts(this.conn, parts).catch(noop);
  }

  /** Whether its process and connection keep this process alive (not while the pool is idle). */
  keepAlive(on: boolean): void {
    if (on) this.child.ref();
    else this.child.unref();
    this.conn[keepAlive](on);
  }

  /** Let it finish: closing its connection makes it exit (after the answer being read, if any). */
  retire(): void {
    this.ending = true;
    if (this.answering) this.closeAfterAnswer = true;
    else this.conn.close();
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
        const body = await this.conn.recvBytes();
        const chunk = this.chunk;
        if (!chunk) throw new Error("mpconn pool: a worker answered a chunk it was not given");
        this.chunk = null;
        this.answering = chunk;
        this.events.freed(this, chunk);
        const outcome = this.codec.decode(body);
        const holes = outcomeHoles(outcome);
        if (holes) await receiveParts(this.conn, outcome[1], holes);
        this.answering = null;
        if (this.closeAfterAnswer) this.conn.close();
        this.events.answered(this, chunk, outcome);
      }
    } catch (error) {
      // The connection ended or broke (EOF, ECONNRESET, a truncated message): the worker is
      // gone or going, and its exit says how.
      if (error instanceof EOFError || error instanceof OSError || this.conn.closed) return;
      // Anything else is a worker we cannot understand: its chunks fail with why, and it goes.
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
