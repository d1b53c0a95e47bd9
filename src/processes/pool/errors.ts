// The pool's own errors: a task that threw in its worker, and a worker that died under a task.
import { ProcessError } from "../../errors.ts";

/**
 * A task threw (or rejected) in its worker. `name` and `message` are the worker's error's;
 * `remoteStack` is the worker's stack text. The local `stack` says where the call was made.
 */
export class RemoteError extends ProcessError {
  /** The stack of the error in the worker process ("" when the thrown value had none). */
  readonly remoteStack: string;
  /** The worker error's own `code`, when it had a string one (e.g. "ENOENT"). */
  readonly code: string | undefined;
  constructor(name: string, message: string, remoteStack = "", code?: string) {
    super(message);
    this.name = name;
    this.remoteStack = remoteStack;
    this.code = code;
  }
}

/** The worker process running a task died (crash, `process.exit`, a signal) before the task finished. */
export class WorkerExitedError extends ProcessError {
  /** The worker's exit code, or null when a signal ended it. */
  readonly exitCode: number | null;
  /** The signal that ended the worker ("SIGKILL", …), or null. */
  readonly signalCode: string | null;
  /** The worker's process id. */
  readonly pid: number;
  constructor(pid: number, exitCode: number | null, signalCode: string | null) {
    const how = signalCode !== null ? `was killed by ${signalCode}` : `exited with code ${exitCode}`;
    super(`worker process ${pid} ${how} while running the task`);
    this.exitCode = exitCode;
    this.signalCode = signalCode;
    this.pid = pid;
  }
}
