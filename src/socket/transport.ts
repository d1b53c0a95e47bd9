// Bun sockets → the connection. One handler table serves every socket mpconn owns (from a
// descriptor, a Listener or a Client); `socket.data` is the link of the connection it feeds.
// Facts this relies on (docs/internals.md, "Bun's sockets"): every data() chunk is a fresh
// ArrayBuffer; write() returns what the kernel took and drops the rest; drain can fire
// spuriously; end() is a full close; a throw in a callback goes to the error handler.
import type { Socket, SocketHandler } from "bun";

/** What a socket reports to the connection it belongs to. */
export interface SocketLink {
  onData(chunk: Uint8Array): void;
  onDrain(): void;
  /** The peer closed (EOF), or the socket failed: `error` set. */
  onClose(error?: Error): void;
  /** One of the calls above threw (a bug): fail with `error`; false when nobody is left to hear it. */
  onFault(error: unknown): boolean;
}

export type LinkedSocket = Socket<SocketLink>;

export const socketHandlers: SocketHandler<SocketLink, "uint8array"> = {
  binaryType: "uint8array",
  data(socket, chunk) {
    try {
      socket.data.onData(chunk);
    } catch (error) {
      fault(socket, error);
    }
  },
  drain(socket) {
    try {
      socket.data.onDrain();
    } catch (error) {
      fault(socket, error);
    }
  },
  end(socket) {
    try {
      socket.data.onClose();
    } catch (error) {
      fault(socket, error);
    }
  },
  close(socket, error) {
    try {
      socket.data?.onClose(error);
    } catch (thrown) {
      fault(socket, thrown);
    }
  },
  error(socket, error) {
    // Only the socket's own failures get here: the handlers above keep our exceptions out.
    try {
      socket.data?.onClose(error);
    } catch (thrown) {
      fault(socket, thrown);
    }
  },
};

/**
 * Bun hands an exception thrown in a socket callback to the `error` handler, where it would
 * pass for a socket failure, or vanish once the connection is closed. An exception of ours is a
 * bug: the connection fails with it (its reads reject with the error itself), and when nobody is
 * left to tell, it is raised outside the callback so that it reaches the process.
 */
function fault(socket: LinkedSocket, error: unknown): void {
  if (socket.data?.onFault(error)) return;
  queueMicrotask(() => {
    throw error;
  });
}

/**
 * Start reading and writing an inherited or raw stream-socket descriptor. Bun takes the
 * descriptor over (and makes it non-blocking); `open` runs before Bun.connect returns, so
 * the socket is usable synchronously.
 */
export function openDescriptor(fd: number, link: SocketLink): LinkedSocket {
  let socket: LinkedSocket | undefined;
  const pending = Bun.connect<SocketLink>({
    fd,
    data: link,
    socket: {
      ...socketHandlers,
      open(s: LinkedSocket) {
        socket = s;
      },
      connectError(_s: LinkedSocket, error: Error) {
        link.onClose(error);
      },
    },
  } as unknown as Parameters<typeof Bun.connect<SocketLink>>[0]);
  pending.catch((error: unknown) => link.onClose(error instanceof Error ? error : new Error(String(error))));
  if (!socket) throw new Error(`mpconn: descriptor ${fd} did not open synchronously`);
  return socket;
}
