// The two exception types of the pickle codec, named and worded as in Python's `pickle` module.

/**
 * `loads` failed: malformed, truncated or forbidden input, or a limit was hit.
 * Every failure of `loads` is this type (a stray `RangeError` from a DataView or a string
 * too long for the engine is wrapped, with the original as `cause`), so callers catch one type.
 */
export class UnpicklingError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UnpicklingError";
  }
}

/**
 * `dumps` met a value outside the type table (function, symbol, class instance, Date, …).
 * A `TypeError`, because the `Serializer` contract says an unencodable value throws `TypeError`.
 */
export class PicklingError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = "PicklingError";
  }
}
