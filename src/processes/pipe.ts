// Pipe(): two connected ends, synchronously, like Python's. Both ends are an OS socketpair,
// so either can be handed to a child process before it is used here.
import { Connection, useLane, type ConnectionOptions } from "../connection/connection.ts";
import { sharedMemoryOption } from "../connection/lane-link.ts";

export interface PipeOptions<T = unknown> extends ConnectionOptions<T> {
  /** The shared-memory lane for large messages between the two ends (default false; docs/large-messages.md). */
  sharedMemory?: boolean;
}
import { socketpair } from "../os/libc.ts";

/** `duplex = false`: the first end only receives, the second only sends. */
export function Pipe<T = unknown>(duplex = true, options: PipeOptions<T> = {}): [Connection<T>, Connection<T>] {
  const { sharedMemory: option, ...rest } = options;
  const sharedMemory = sharedMemoryOption(option, false);
  const [a, b] = socketpair();
  if (duplex) {
    const ends: [Connection<T>, Connection<T>] = [new Connection<T>(a, rest), new Connection<T>(b, rest)];
    // Both ends are made here with the option, so each knows the other speaks the lane.
    if (sharedMemory) for (const end of ends) useLane(end as Connection<unknown>, "known");
    return ends;
  }
  return [
    new Connection<T>(a, { ...rest, readable: true, writable: false }),
    new Connection<T>(b, { ...rest, readable: false, writable: true }),
  ];
}
