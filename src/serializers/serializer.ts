// A serializer turns one object into the bytes of one message, and back.

/** The contract of a pluggable serializer: `dumps` must throw `TypeError` for a value it cannot encode. */
export interface Serializer<T = unknown> {
  dumps(value: T): Uint8Array;
  loads(bytes: Uint8Array): T;
}
