// spawn() / parentConnection(): a child process with a connected socket to its parent, on
// the child's descriptor 3 (Bun's "socket-fd" stdio slot).
import type { Subprocess, SpawnOptions as BunSpawnOptions } from "bun";
import { Connection, useLane, type ConnectionOptions } from "../connection/connection.ts";
import { sharedMemoryOption } from "../connection/lane-link.ts";

/** Descriptor of the parent's connection in the child, and the variable that says it is there. */
const CHILD_FD = 3;
const ENV = "MPCONN_PARENT_FD";
/** Set by a parent whose connection has the shared-memory lane on (docs/large-messages.md, "Negotiation"). */
const LANE_ENV = "MPCONN_LANE";

export interface LaneOption {
  /** The shared-memory lane for large messages (default true here; docs/large-messages.md). */
  sharedMemory?: boolean;
}

function laneOption(options: LaneOption): boolean {
  return sharedMemoryOption(options.sharedMemory, true);
}

type BunOptions = BunSpawnOptions.OptionsObject<BunSpawnOptions.Writable, BunSpawnOptions.Readable, BunSpawnOptions.Readable>;

/** Bun.spawn's options (stdio slot 3 and IPC are mpconn's), plus the connection's. */
export type SpawnOptions<T = unknown> = ConnectionOptions<T> & LaneOption & Omit<BunOptions, "stdio" | "ipc" | "serialization">;

export interface Spawned<T> {
  process: Subprocess<BunSpawnOptions.Writable, BunSpawnOptions.Readable, BunSpawnOptions.Readable>;
  conn: Connection<T>;
}

/** Start `cmd` with a connection to it. The child's stdin/stdout/stderr are inherited unless the options say otherwise. */
export function spawn<T = unknown>(cmd: string[], options: SpawnOptions<T> = {}): Spawned<T> {
  if (!Array.isArray(cmd) || cmd.length === 0) throw new TypeError("cmd must be a non-empty array of strings");
  const lane = laneOption(options);
  const { serializer, stdin = "inherit", stdout = "inherit", stderr = "inherit", env, sharedMemory: _, ...rest } = options;
  const childEnv: Record<string, string | undefined> = { ...(env ?? process.env), [ENV]: String(CHILD_FD) };
  if (lane) childEnv[LANE_ENV] = "1";
  else delete childEnv[LANE_ENV];
  const child = Bun.spawn(cmd, {
    ...rest,
    env: childEnv,
    stdio: [stdin, stdout, stderr, "socket-fd"],
  } as BunOptions & { cmd?: string[] });
  const fd = child.stdio[CHILD_FD];
  if (typeof fd !== "number") {
    child.kill();
    throw new Error("mpconn: Bun did not create the socket-fd slot for the child");
  }
  const conn = new Connection<T>(fd, { serializer });
  // The child says first whether it speaks the lane (a HELLO notice); a child that does not
  // (Python, or the option off) never writes one, and then the lane stays unused.
  if (lane) useLane(conn as Connection<unknown>, "listen");
  return { process: child, conn };
}

let parent: Connection<unknown> | null = null;

/**
 * In a child started by spawn(): the connection to the parent. Later calls return the same
 * connection (the options of the first call apply).
 */
export function parentConnection<T = unknown>(options: ConnectionOptions<T> & LaneOption = {}): Connection<T> {
  if (parent) return parent as Connection<T>;
  const lane = laneOption(options) && process.env[LANE_ENV] === "1";
  const fd = Number(process.env[ENV]);
  if (!process.env[ENV] || !Number.isInteger(fd)) {
    throw new Error("parentConnection(): this process was not started by mpconn's spawn() (no inherited connection)");
  }
  const conn = Connection.fromFd<T>(fd, { serializer: options.serializer });
  // The parent listens for our HELLO: it is the first thing written on the connection.
  if (lane) useLane(conn as Connection<unknown>, "hello");
  // Grandchildren inherit the environment, not the descriptor.
  delete process.env[ENV];
  delete process.env[LANE_ENV];
  parent = conn as Connection<unknown>;
  return conn;
}
