// JSON as UTF-8: the fastest codec for small plain objects, and readable by anything.
import type { Serializer } from "./serializer.ts";
import { describe } from "./structured.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export const json: Serializer = {
  dumps(value: unknown): Uint8Array {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (cause) {
      throw new TypeError(`cannot serialize ${describe(value)} as JSON: ${(cause as Error).message}`, { cause });
    }
    if (text === undefined) throw new TypeError(`cannot serialize ${describe(value)} as JSON`);
    return encoder.encode(text);
  },
  loads(bytes: Uint8Array): unknown {
    return JSON.parse(decoder.decode(bytes));
  },
};
