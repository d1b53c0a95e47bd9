// Serializer names → serializers.
import type { Serializer } from "./serializer.ts";
import { structured } from "./structured.ts";
import { json } from "./json.ts";
import { pickle } from "./pickle/index.ts";

export type SerializerName = "structured" | "json" | "pickle";

const named: Readonly<Record<SerializerName, Serializer>> = { structured, json, pickle };

export function resolveSerializer<T>(choice: SerializerName | Serializer<T> | undefined): Serializer<T> {
  if (choice === undefined) return structured as Serializer<T>;
  if (typeof choice === "string") {
    const found = Object.hasOwn(named, choice) ? named[choice] : undefined;
    if (!found) throw new TypeError(`unknown serializer '${choice}' (expected "structured", "json", "pickle" or an object with dumps/loads)`);
    return found as Serializer<T>;
  }
  if (typeof choice !== "object" || typeof choice.dumps !== "function" || typeof choice.loads !== "function") {
    throw new TypeError("serializer must be a name or an object with dumps(value) and loads(bytes)");
  }
  return choice;
}
