// Extension hooks: how objects the codec does not copy (live connections, say) travel
// as stand-in values and come back to life on the other side.

export interface StructuredHooks {
  /**
   * Offered each object that is not plain data (not a plain object, array, Map, Set, Date,
   * RegExp, ArrayBuffer, typed array, DataView or boxed primitive): class instances, Errors,
   * Blobs, … Return a stand-in value (encoded in its place, as an EXTERNAL) or `undefined` to
   * leave the object to bun:jsc. Called at most once per object per message; a second
   * reference to the same object decodes as the same revived object.
   */
  replace?(obj: object): unknown;
  /** Turns a stand-in back into an object when a message is decoded. */
  revive?(value: unknown): unknown;
}

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (typeof value === "function") return `function ${value.name || "(anonymous)"}`;
  if (typeof value === "symbol") return "a symbol";
  if (value && typeof value === "object") return `object of type '${value.constructor?.name ?? "Object"}' (or something inside it)`;
  return typeof value;
}
