// src/connection/reduction.ts: objects that travel inside messages as stand-ins, through
// reducers registered once (as CPython's multiprocessing.reduction.register). Passing
// connections is one such reducer (test/processes/fdpass.test.ts); this file drives the
// mechanism with a reducer of its own.
import { expect, test, setDefaultTimeout } from "bun:test";
import { structured } from "../../src/serializers/structured.ts";
import { ObjectCodec, register, type Carrier, type Decoding, type Encoding } from "../../src/connection/reduction.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

/** An object that travels as { token: id }. */
class Token {
  constructor(readonly id: number) {}
}

const log: string[] = [];
register({
  encoding(): Encoding {
    const taken: number[] = [];
    return {
      replace(obj) {
        if (!(obj instanceof Token)) return undefined;
        taken.push(obj.id);
        return { token: obj.id };
      },
      commit: () => log.push(`commit ${taken.join(",")}`),
      abort: () => log.push(`abort ${taken.join(",")}`),
    };
  },
  decoding(): Decoding {
    let later = false;
    return {
      revive(value) {
        const id = (value as { token?: unknown }).token;
        if (typeof id !== "number") return undefined;
        if (id < 0) later = true;
        return new Token(id);
      },
      finish: <T>(value: T) => (later ? new Promise<T>((resolve) => setTimeout(() => resolve(value), 1)) : value),
      abort: () => log.push("abort decoding"),
    };
  },
});

// A carrier with no connections in its messages: other reducers registered in this process
// (passing connections, when another test file loaded it) find nothing to do.
const carrier: Carrier = {
  connection: null as never,
  leaving: () => undefined,
  arriving: () => {
    throw new Error("no connections here");
  },
};
const codec = new ObjectCodec(structured, carrier);

test("a registered reducer's objects round-trip as stand-ins; commit runs once the message encoded", () => {
  log.length = 0;
  const body = codec.dumps({ a: new Token(1), list: [new Token(2)], plain: "x" });
  expect(log).toEqual(["commit 1,2"]);
  const value = codec.loads(body) as { a: Token; list: Token[]; plain: string };
  expect(value.a).toEqual(new Token(1));
  expect(value.list[0]).toBeInstanceOf(Token);
  expect(value.plain).toBe("x");
});

test("a message that fails to encode aborts what replace() took, and commits nothing", () => {
  log.length = 0;
  expect(() => codec.dumps([new Token(3), () => 0])).toThrow(TypeError);
  expect(log).toEqual(["abort 3"]);
  // Messages without such objects never start an encoding.
  codec.dumps({ nothing: "special" });
  expect(log).toEqual(["abort 3"]);
});

test("a decoding that needs time makes loads() a promise", async () => {
  const loaded = codec.loads(codec.dumps([new Token(-1)]));
  expect(loaded).toBeInstanceOf(Promise);
  expect(await loaded).toEqual([new Token(-1)]);
});

test("a message sent from inside another one's encoding has hooks of its own", () => {
  log.length = 0;
  const inner = { get nested() {
    codec.dumps(new Token(5));
    return new Token(6);
  } };
  codec.dumps(inner);
  expect(log).toEqual(["commit 5", "commit 6"]);
});

test("a stand-in that no reducer revives is a TypeError; the reducers' decodings abort", () => {
  log.length = 0;
  const body = structured.dumps([new Token(7)], { replace: (obj) => (obj instanceof Token ? { stranger: 1 } : undefined) });
  expect(() => codec.loads(body)).toThrow("the message holds a stand-in for an object that nothing in this process can rebuild");
  expect(log).toEqual(["abort decoding"]);
});
