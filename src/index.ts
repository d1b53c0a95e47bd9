// mpconn: Python's multiprocessing.connection for Bun.
// Node.js gets src/not-bun.ts instead: a new runtime export needs its name there too.
export { Connection, type ConnectionOptions, type FdConnectionOptions, type BytesLike } from "./connection/connection.ts";
export { Pipe } from "./processes/pipe.ts";
export { spawn, parentConnection, type SpawnOptions, type Spawned } from "./processes/spawn.ts";
export { ProcessError, BufferTooShort, AuthenticationError, EOFError, OSError } from "./errors.ts";
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
