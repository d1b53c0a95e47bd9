// Objects ↔ message bodies for one connection: its serializer, plus the reducers registered
// for objects that travel as something else. CPython registers a reducer per type
// (multiprocessing.reduction.register); passing connections registers itself here
// (src/processes/fdpass) and this layer knows nothing about it.
//
// A serializer gets the hooks as its second argument. `structured` honours them; a serializer
// that wraps it passes them on to keep the feature; one that drops them meets a Connection as a
// plain value, which every serializer of mpconn refuses with a clear TypeError.
import type { Connection } from "./connection.ts";
import type { Serializer, SerializerHooks } from "../serializers/serializer.ts";

/** The connection a message travels over, as a reducer sees it. */
export interface Carrier {
  readonly connection: Connection<unknown>;
  /** `obj` as a connection that may leave this process; undefined when it is no Connection. */
  leaving(obj: object): Leaving | undefined;
  /** A new connection that arrives from another process; usable once attach() gave it its descriptor. */
  arriving(readable: boolean, writable: boolean): Arriving;
}

/** A connection inside a message being sent. */
export interface Leaving {
  readonly connection: Connection<unknown>;
  /**
   * What moving it takes along, without taking it: its descriptor (-1 once the stream ended and
   * Bun closed it), the queued messages, and the raw bytes of a frame that had partly arrived.
   */
  unread(): { fd: number; messages: Uint8Array[]; partial: Uint8Array[] };
  /** It moved: read nothing more, close. Resolves once what was written on it has gone out. */
  leave(): Promise<void>;
}

/** A connection inside a message being received. */
export interface Arriving {
  readonly connection: Connection<unknown>;
  /** Its descriptor, and the bytes that came with it (read first). */
  attach(fd: number, unread: Uint8Array): void;
}

/** A reducer's part in one message being sent: `replace` each object, then `commit` or `abort`. */
export interface Encoding {
  /** A stand-in for `obj`, or undefined when this reducer does not handle it. */
  replace(obj: object): unknown;
  /** The whole message encoded: carry out what replace() promised. */
  commit(): void;
  /** The message failed to encode: undo what replace() prepared. */
  abort(): void;
}

/** A reducer's part in one message being received: `revive` each stand-in, then `finish` or `abort`. */
export interface Decoding {
  /** The object for a stand-in, or undefined when it is not this reducer's. */
  revive(value: unknown): unknown;
  /** The message decoded to `value`: a promise when it can be used only later. */
  finish<T>(value: T): T | Promise<T>;
  /** The message failed to decode: let go of what revive() made. */
  abort(): void;
}

export interface Reducer {
  encoding(carrier: Carrier): Encoding;
  decoding(carrier: Carrier): Decoding;
}

const reducers: Reducer[] = [];

/** Let objects travel as stand-ins in the messages of every connection (CPython: reduction.register). */
export function register(reducer: Reducer): void {
  if (!reducers.includes(reducer)) reducers.push(reducer);
}

/** One connection's objects ↔ message bodies. */
export class ObjectCodec<T> {
  private readonly dumping: Dumping;
  private readonly loading: Loading;

  constructor(
    private readonly serializer: Serializer<T>,
    private readonly carrier: Carrier,
  ) {
    this.dumping = new Dumping(carrier);
    this.loading = new Loading(carrier);
  }

  dumps(value: T): Uint8Array {
    if (reducers.length === 0) return this.serializer.dumps(value);
    // A getter that sends on this same connection while its message is encoded gets hooks of its own.
    const hooks = this.dumping.busy ? new Dumping(this.carrier) : this.dumping;
    hooks.busy = true;
    try {
      const body = this.serializer.dumps(value, hooks);
      hooks.commit();
      return body;
    } catch (error) {
      hooks.abort();
      throw error;
    } finally {
      hooks.busy = false;
    }
  }

  /** The message's value; a promise when a reducer needs time (connections being fetched). */
  loads(body: Uint8Array): T | Promise<T> {
    if (reducers.length === 0) return this.serializer.loads(body);
    const hooks = this.loading.busy ? new Loading(this.carrier) : this.loading;
    hooks.busy = true;
    try {
      return hooks.finish(this.serializer.loads(body, hooks));
    } catch (error) {
      hooks.abort();
      throw error;
    } finally {
      hooks.busy = false;
    }
  }
}

/** The hooks of one message being encoded; each reducer's Encoding starts when it is first needed. */
class Dumping implements SerializerHooks {
  busy = false;
  private encodings: Encoding[] | null = null;
  constructor(private readonly carrier: Carrier) {}

  replace(obj: object): unknown {
    const encodings = (this.encodings ??= reducers.map((r) => r.encoding(this.carrier)));
    for (const encoding of encodings) {
      const stand = encoding.replace(obj);
      if (stand !== undefined) return stand;
    }
    return undefined;
  }

  commit(): void {
    const encodings = this.encodings;
    this.encodings = null;
    if (encodings) for (const e of encodings) e.commit();
  }

  abort(): void {
    const encodings = this.encodings;
    this.encodings = null;
    if (encodings) for (const e of encodings) e.abort();
  }
}

/** The hooks of one message being decoded; each reducer's Decoding starts when it is first needed. */
class Loading implements SerializerHooks {
  busy = false;
  private decodings: Decoding[] | null = null;
  constructor(private readonly carrier: Carrier) {}

  revive(value: unknown): unknown {
    const decodings = (this.decodings ??= reducers.map((r) => r.decoding(this.carrier)));
    for (const decoding of decodings) {
      const revived = decoding.revive(value);
      if (revived !== undefined) return revived;
    }
    throw new TypeError("the message holds a stand-in for an object that nothing in this process can rebuild");
  }

  finish<T>(value: T): T | Promise<T> {
    const decodings = this.decodings;
    this.decodings = null;
    if (!decodings) return value;
    let result: T | Promise<T> = value;
    for (const d of decodings) result = result instanceof Promise ? result.then((v) => d.finish(v)) : d.finish(result);
    return result;
  }

  abort(): void {
    const decodings = this.decodings;
    this.decodings = null;
    if (decodings) for (const d of decodings) d.abort();
  }
}
