// The default serializer: WebKit's structured clone (bun:jsc), which keeps Map, Set, Date,
// RegExp, BigInt, typed arrays, undefined, -0, and shared or cyclic references exactly.
import { deserialize, serialize } from "bun:jsc";
import type { Serializer } from "../serializer.ts";

export const structured: Serializer = {
  dumps(value: unknown): Uint8Array {
    try {
      return new Uint8Array(serialize(value));
    } catch (cause) {
      throw new TypeError(`cannot serialize ${describe(value)}: ${(cause as Error).message}`, { cause });
    }
  },
  loads(bytes: Uint8Array): unknown {
    return deserialize(bytes);
  },
};

export function describe(value: unknown): string {
  if (typeof value === "function") return `function ${value.name || "(anonymous)"}`;
  if (typeof value === "symbol") return "a symbol";
  if (value && typeof value === "object") return `object of type '${value.constructor?.name ?? "Object"}' (or something inside it)`;
  return typeof value;
}
