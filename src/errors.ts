// The exception classes of Python's multiprocessing, with Python's message texts.

/** Base class of mpconn's process errors, as `multiprocessing.ProcessError`. */
export class ProcessError extends Error {
  /** Python-style positional arguments of the error. */
  readonly args: unknown[];
  constructor(message?: string, ...args: unknown[]) {
    super(message ?? "");
    this.name = new.target.name;
    this.args = message === undefined ? args : [message, ...args];
  }
}

/** `recvBytesInto` got a message longer than the buffer; `data` is the whole message (consumed). */
export class BufferTooShort extends ProcessError {
  readonly data: Uint8Array;
  constructor(data: Uint8Array) {
    super(`buffer too short: message is ${data.byteLength} bytes`);
    this.data = data;
    (this.args as unknown[]).splice(0, this.args.length, data);
  }
}

/** The authkey handshake failed. */
export class AuthenticationError extends ProcessError {}

/** The peer closed the connection and nothing is left to read. */
export class EOFError extends Error {
  /** Python's arguments: empty for a plain end of file (the default message is ours, not an argument). */
  readonly args: unknown[];
  constructor(message?: string) {
    super(message ?? "the peer closed the connection");
    this.name = "EOFError";
    this.args = message === undefined ? [] : [message];
  }
}

/**
 * mpconn's own `code`s, for the OSErrors that no errno describes (docs/errors.md):
 * - `HANDLE_CLOSED`: "handle is closed", the connection was closed in this process;
 * - `READ_ONLY` / `WRITE_ONLY`: "connection is read-only" / "connection is write-only";
 * - `BAD_MESSAGE_LENGTH`: "bad message length", longer than recvBytes' maxlength, or a length no
 *   CPython sender writes;
 * - `MESSAGE_TRUNCATED`: "got end of file during message", the peer left mid-message;
 * - `LISTENER_CLOSED`: "listener is closed";
 * - `POOL_CLOSED` / `POOL_TERMINATED` / `POOL_RUNNING`: "pool is closed" (a call after close() or
 *   terminate()) / "pool is terminated" (pending when terminate() came) / "pool is still running"
 *   (join() before close()).
 */
export type MpconnErrorCode =
  | "HANDLE_CLOSED"
  | "READ_ONLY"
  | "WRITE_ONLY"
  | "BAD_MESSAGE_LENGTH"
  | "MESSAGE_TRUNCATED"
  | "LISTENER_CLOSED"
  | "POOL_CLOSED"
  | "POOL_TERMINATED"
  | "POOL_RUNNING";

/** An operating-system level failure, or Python's OSError messages ("handle is closed", …). */
export class OSError extends Error {
  /**
   * What failed, for programs to match: the errno name when the OS reported one ("EPIPE",
   * "ECONNRESET", "ENOENT", "EADDRINUSE", …), else one of mpconn's own (MpconnErrorCode).
   */
  readonly code: string | undefined;
  constructor(message: string, code?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "OSError";
    this.code = code;
  }
}
