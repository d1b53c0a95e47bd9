// A Bun client of a Python server:   python3 examples/python/server.py   then   bun examples/python/client.ts
// (or both at once: python3 examples/python/server.py --once & bun examples/python/client.ts)
//
// Connects to server.py's multiprocessing.connection.Listener (default 127.0.0.1:6000; pass
// host:port or a socket path to change it) with the same authkey (env MPCONN_AUTHKEY, default
// "mpconn-example"), sends a few requests with the pickle serializer and prints the replies.
import { Client, OSError, type Address, type Connection } from "mpconn";

function parseAddress(text: string): Address {
  const match = /^(.*):(\d+)$/.exec(text);
  return match && !text.includes("/") ? [match[1]!, Number(match[2])] : text;
}

const address = parseAddress(process.argv[2] ?? "127.0.0.1:6000");
const authkey = process.env.MPCONN_AUTHKEY ?? "mpconn-example";

/** Connect, waiting up to 10 s for a server that is still starting (nobody listens yet). */
async function connect(): Promise<Connection<Record<string, unknown>>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await Client<Record<string, unknown>>(address, { authkey, serializer: "pickle" });
    } catch (error) {
      const starting = error instanceof OSError && (error.code === "ECONNREFUSED" || error.code === "ENOENT");
      if (!starting || attempt === 100) throw error;
      await Bun.sleep(100);
    }
  }
}

await using conn = await connect();

async function ask(request: Record<string, unknown>): Promise<Record<string, unknown>> {
  await conn.send(request);
  return await conn.recv();
}

const requests: Array<Record<string, unknown>> = [
  { op: "stats", values: [2, 4, 4, 4, 5, 5, 7, 9] }, // an Array goes as a list; the tuple reply is an Array
  { op: "power", base: 2n, exp: 100 }, // a bigint goes as an int; the big int reply is a bigint
  { op: "split", text: "é\nü" }, // the dict with int keys is a Map; bytes are a Uint8Array
  { op: "common", a: new Set(["x", "y", "z"]), b: ["y", "z", "w"] }, // a Set goes as a set, and comes back as one
  { op: "divide" }, // the server reports its error as data
];
for (const request of requests) {
  console.log(`${String(request.op).padEnd(6)} →`, Bun.inspect(await ask(request), { compact: true }).replace(/\s*\n\s*/g, " "));
}

const { value } = await ask({ op: "power", base: 2, exp: 100 });
console.log(`value === 2n ** 100n: ${value === 2n ** 100n}`);
