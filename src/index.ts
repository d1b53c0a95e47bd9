// mpconn: Python's multiprocessing.connection for Bun.
export { Connection, type ConnectionOptions, type FdConnectionOptions, type BytesLike } from "./connection.ts";
export { Pipe } from "./pipe.ts";
export { spawn, parentConnection, type SpawnOptions, type Spawned } from "./spawn.ts";
export { ProcessError, BufferTooShort, AuthenticationError, EOFError, OSError } from "./errors.ts";
export { structured } from "./serializers/structured.ts";
export { json } from "./serializers/json.ts";
export type { SerializerName } from "./serializers/index.ts";
export type { Serializer } from "./serializer.ts";
