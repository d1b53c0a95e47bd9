// The default serializer: structured clone, as Bun's bun:jsc does it (Map, Set, Date, RegExp,
// BigInt, typed arrays, undefined, -0, shared and cyclic references kept exactly), through
// our own codec (./structured/), which is several times faster on everyday messages and
// hands what it does not copy itself to bun:jsc.
import type { Serializer } from "../serializer.ts";
import { dumps, dumpsInto, loads, type StructuredHooks } from "./structured/index.ts";

export { describe } from "./structured/hooks.ts";
export type { StructuredHooks } from "./structured/hooks.ts";

export interface StructuredSerializer extends Serializer {
  /** The message bytes for `value`, in a buffer of their own. */
  dumps(value: unknown, hooks?: StructuredHooks): Uint8Array;
  /** The value of a message from dumps, dumpsInto or bun:jsc's serialize. */
  loads(bytes: Uint8Array, hooks?: StructuredHooks): unknown;
  /** Encodes straight into `target` at `offset`; the bytes written, or -1 if they do not fit. */
  dumpsInto(value: unknown, target: Uint8Array, offset: number, hooks?: StructuredHooks): number;
}

export const structured: StructuredSerializer = { dumps, loads, dumpsInto };
