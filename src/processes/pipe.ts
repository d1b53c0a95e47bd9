// Pipe(): two connected ends, synchronously, like Python's. Both ends are an OS socketpair,
// so either can be handed to a child process before it is used here.
import { Connection, type ConnectionOptions } from "../connection/connection.ts";
import { socketpair } from "../os/libc.ts";

/** `duplex = false`: the first end only receives, the second only sends. */
export function Pipe<T = unknown>(duplex = true, options: ConnectionOptions<T> = {}): [Connection<T>, Connection<T>] {
  const [a, b] = socketpair();
  if (duplex) return [new Connection<T>(a, options), new Connection<T>(b, options)];
  return [
    new Connection<T>(a, { ...options, readable: true, writable: false }),
    new Connection<T>(b, { ...options, readable: false, writable: true }),
  ];
}
