// The parent's side of the messages: a chunk becomes its task message (and the large arrays
// sent after it) when it is queued, so that a free worker gets its next chunk without waiting
// for it to be encoded; an answer becomes an outcome after the worker got its next chunk.
import { Connection } from "../../connection/connection.ts";
import { structured } from "../../serializers/structured.ts";
import type { Serializer } from "../../serializers/serializer.ts";
import type { Chunk } from "./chunk.ts";
import { takeLarge } from "./large-arrays.ts";
import type { Outcome, Task } from "./protocol.ts";

export interface Encoded {
  message: Uint8Array;
  /** Large typed arrays to send after the message, or null. */
  parts: ArrayBufferView[] | null;
}

/** A connection cannot be handed to a pool task: the pool's messages are encoded before any worker is chosen. */
const noConnections = {
  replace(obj: object): undefined {
    if (obj instanceof Connection) throw new TypeError("a Connection cannot be an argument of a pool task");
    return undefined;
  },
};

export class TaskCodec {
  private readonly largeArrays: boolean;

  constructor(private readonly serializer: Serializer) {
    this.largeArrays = serializer === structured;
  }

  /** The chunk's task message. Throws what the serializer throws (TypeError for what it cannot encode). */
  encode(chunk: Chunk): Encoded {
    const star = chunk.star ? 1 : 0;
    const large = this.largeArrays ? takeLarge(chunk.items, chunk.star) : null;
    const task: Task = large ? [chunk.name, star, large.items, large.holes] : [chunk.name, star, chunk.items];
    const message = this.largeArrays ? structured.dumps(task, noConnections) : this.serializer.dumps(task);
    return { message, parts: large?.parts ?? null };
  }

  decode(bytes: Uint8Array): Outcome {
    return this.serializer.loads(bytes) as Outcome;
  }
}
