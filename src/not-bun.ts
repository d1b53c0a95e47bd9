// What Node.js loads instead of mpconn (the "node" export condition): one clear error in place of
// Node's "Only URLs with a scheme in: file, data, and node are supported", since mpconn is built on
// bun:ffi and Bun's sockets.
throw new Error("mpconn runs on Bun, not Node.js: start this program with `bun` (Bun 1.4 or newer)");

// index.ts's names, so that `import { Pipe } from "mpconn"` links and reaches the error above
// (a missing name would fail first, with Node's SyntaxError).
const notBun = undefined;
export {
  notBun as AuthenticationError,
  notBun as BufferTooShort,
  notBun as Client,
  notBun as Connection,
  notBun as EOFError,
  notBun as Listener,
  notBun as OSError,
  notBun as PicklingError,
  notBun as Pipe,
  notBun as Pool,
  notBun as ProcessError,
  notBun as RemoteError,
  notBun as UnpicklingError,
  notBun as WorkerExitedError,
  notBun as json,
  notBun as parentConnection,
  notBun as pickle,
  notBun as spawn,
  notBun as structured,
  notBun as wait,
};
