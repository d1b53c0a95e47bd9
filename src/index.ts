// mpconn: Python's multiprocessing.connection for Bun.
// Node.js gets src/not-bun.ts instead: a new runtime export needs its name there too.
export { Connection, type ConnectionOptions, type FdConnectionOptions, type BytesLike } from "./connection/connection.ts";
export { Pipe } from "./processes/pipe.ts";
// Passing connections inside messages plugs itself into every connection (a reducer).
import "./processes/fdpass/index.ts";
export { spawn, parentConnection, type SpawnOptions, type Spawned } from "./processes/spawn.ts";
export { ProcessError, BufferTooShort, AuthenticationError, EOFError, OSError, type MpconnErrorCode } from "./errors.ts";
export { structured } from "./serializers/structured.ts";
export { json } from "./serializers/json.ts";
export type { SerializerName } from "./serializers/index.ts";
export type { Serializer } from "./serializers/serializer.ts";
export { Listener, type ListenerOptions } from "./endpoints/listener.ts";
export { Client, type ClientOptions } from "./endpoints/client.ts";
export { wait, type Waitable, type WaitableProcess } from "./connection/wait.ts";
export type { Address, Family, PeerAddress } from "./endpoints/address.ts";
export type { Authkey } from "./endpoints/handshake.ts";
export { pickle, PicklingError, UnpicklingError, type PickleOptions, type PickleLimits } from "./serializers/pickle/index.ts";
export { Pool, type PoolOptions, type PoolStats, type MapOptions, type IMapOptions, type TaskName, type TaskArgs, type TaskResult, type AnyTasks } from "./processes/pool/pool.ts";
export { RemoteError, WorkerExitedError } from "./processes/pool/errors.ts";
