// mpconn: Python's multiprocessing.connection for Bun.
export { Connection, type ConnectionOptions, type FdConnectionOptions, type BytesLike } from "./connection.ts";
export { Pipe } from "./pipe.ts";
export { spawn, parentConnection, type SpawnOptions, type Spawned } from "./spawn.ts";
export { ProcessError, BufferTooShort, AuthenticationError, EOFError, OSError } from "./errors.ts";
export { structured } from "./serializers/structured.ts";
export { json } from "./serializers/json.ts";
export type { SerializerName } from "./serializers/index.ts";
export type { Serializer } from "./serializer.ts";
export { Listener, type ListenerOptions } from "./listener.ts";
export { Client, type ClientOptions } from "./client.ts";
export { wait, type Waitable, type WaitableProcess } from "./wait.ts";
export type { Address, Family, PeerAddress } from "./address.ts";
export type { Authkey } from "./handshake.ts";
export { pickle, PicklingError, UnpicklingError, type PickleOptions, type PickleLimits } from "./serializers/pickle/index.ts";
