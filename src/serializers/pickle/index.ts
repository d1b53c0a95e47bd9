// Python pickle for mpconn: a codec that reads what CPython's pickler writes for the
// Python side of the type table in docs/pickle.md (protocols 0–5) and writes the same bytes
// CPython would (protocols 2–5), without ever running code named by the input.

import type { Serializer } from "../serializer.ts";
import { dumps, type PickleOptions } from "./encode.ts";
import { loads, type PickleLimits } from "./decode.ts";

export { PicklingError, UnpicklingError } from "./errors.ts";
export { ALLOWED_GLOBALS } from "./globals.ts";
export { DEFAULT_MAX_DEPTH } from "./decode.ts";
export { DEFAULT_PROTOCOL } from "./encode.ts";
export type { PickleLimits, PickleOptions };

/** The pickle serializer: `serializer: "pickle"` on a connection, or use it directly. */
export const pickle: Serializer & {
  dumps(value: unknown, options?: PickleOptions): Uint8Array;
  loads(bytes: Uint8Array, options?: PickleLimits): unknown;
} = { dumps, loads };

export { dumps, loads };
