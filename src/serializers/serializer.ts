// A serializer turns one object into the bytes of one message, and back.
import type { StructuredHooks } from "./structured/hooks.ts";

/**
 * What a connection hands its serializer with every message, so that objects that cannot be
 * copied (connections) travel as stand-ins: `structured` honours them, and a serializer that
 * wraps `structured` passes them on (docs/passing-connections.md).
 */
export type SerializerHooks = StructuredHooks;

/** The contract of a pluggable serializer: `dumps` must throw `TypeError` for a value it cannot encode. */
export interface Serializer<T = unknown> {
  dumps(value: T, hooks?: SerializerHooks): Uint8Array;
  loads(bytes: Uint8Array, hooks?: SerializerHooks): T;
}

/**
 * An object that holds something alive in this process (a Connection) names itself under this
 * key, with a sentence saying how it can travel. A serializer meets one only when no hook took
 * it, and refuses it with that sentence.
 */
export const unsendable: unique symbol = Symbol.for("mpconn.unsendable");
